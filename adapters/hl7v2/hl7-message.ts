/**
 * HL7 v2 message model and parser (HL7 v2.x chapter 2, "Message construction rules").
 *
 * Delimiters come from MSH-1 and MSH-2, so unusual encoding characters work. Segments end in CR,
 * LF or CRLF. Fields are kept raw (still escaped) and split into repetitions, components and
 * subcomponents only when read; reads decode escape sequences. For MSH, `fields[n]` is MSH-n
 * (MSH-1 is the field separator itself).
 */
import { CodecError } from '../contracts.ts';

export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** v2.7+: the truncation character, when MSH-2 has a fifth one. */
  truncation?: string;
}

export interface Hl7Segment {
  name: string;
  /** Raw (escaped) fields; index n is field n (for MSH, MSH-n). Index 0 is the segment name. */
  fields: string[];
}

export interface Hl7Header {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  dateTime: string;
  messageCode: string;
  triggerEvent: string;
  messageStructure: string;
  controlId: string;
  processingId: string;
  version: string;
  sequenceNumber?: string;
  acceptAckType?: string;
  applicationAckType?: string;
  charset?: string;
}

export interface Hl7Message {
  delimiters: Delimiters;
  segments: Hl7Segment[];
  header: Hl7Header;
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/** Strip a UTF-8 BOM and leading blank lines or whitespace a sender may put before MSH. */
function stripLead(text: string): string {
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0xfeff || c === 0x0d || c === 0x0a || c === 0x20 || c === 0x09 || c === 0x0b) i++;
    else break;
  }
  return i ? text.slice(i) : text;
}

/** Splits on CR, LF or CRLF and drops empty lines. */
export function splitSegments(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 || c === 10) {
      if (i > start) out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out.filter((s) => s.trim().length > 0);
}

export function readDelimiters(msh: string): Delimiters {
  if (!msh.startsWith('MSH') && !msh.startsWith('FHS') && !msh.startsWith('BHS')) {
    throw new CodecError('message does not start with an MSH segment', { location: { segment: 'MSH', sequence: 1 }, hl7ErrorCode: '100' });
  }
  const field = msh.charAt(3);
  if (!field || /[A-Za-z0-9\r\n ]/.test(field))
    throw new CodecError('MSH-1 field separator is missing or invalid', {
      location: { segment: 'MSH', sequence: 1, field: 1 },
      hl7ErrorCode: '102',
    });
  const end = msh.indexOf(field, 4);
  let enc = end === -1 ? msh.slice(4) : msh.slice(4, end);
  // `^~\\&`: a doubled escape character, left by an export that escaped backslashes (seen in
  // public sample files); the message means `^~\&`
  if (enc.length === 5 && enc[2] === enc[3] && enc[2] === '\\') enc = enc.slice(0, 3) + enc.slice(4);
  if (enc.length < 4 || enc.length > 5)
    throw new CodecError('MSH-2 encoding characters must be 4 or 5 characters', {
      location: { segment: 'MSH', sequence: 1, field: 2 },
      hl7ErrorCode: '102',
    });
  const chars = [field, ...enc];
  if (new Set(chars).size !== chars.length || chars.some((c) => /[A-Za-z0-9\r\n]/.test(c))) {
    throw new CodecError('MSH-2 encoding characters must be distinct punctuation', {
      location: { segment: 'MSH', sequence: 1, field: 2 },
      hl7ErrorCode: '102',
    });
  }
  const d: Delimiters = { field, component: enc[0], repetition: enc[1], escape: enc[2], subcomponent: enc[3] };
  if (enc.length === 5) d.truncation = enc[4];
  return d;
}

/** Parses one message. Throws CodecError (with an HL7 table 0357 code) when it is not well-formed. */
export function parseHl7(input: string): Hl7Message {
  const text = stripLead(input);
  const lines = splitSegments(text);
  if (lines.length === 0) throw new CodecError('empty message', { location: { segment: 'MSH', sequence: 1 }, hl7ErrorCode: '100' });
  const delimiters = readDelimiters(lines[0]);
  if (!lines[0].startsWith('MSH'))
    throw new CodecError('message does not start with an MSH segment', { location: { segment: 'MSH', sequence: 1 }, hl7ErrorCode: '100' });
  const segments: Hl7Segment[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const parts = line.split(delimiters.field);
    const name = parts[0];
    if (!SEGMENT_NAME.test(name)) {
      throw new CodecError(`segment ${i + 1} has an invalid name`, { location: { sequence: i + 1 }, hl7ErrorCode: '100' });
    }
    if (name === 'MSH') {
      if (i !== 0)
        throw new CodecError('MSH segment appears after the first segment', {
          location: { segment: 'MSH', sequence: 2 },
          hl7ErrorCode: '100',
        });
      parts.splice(1, 0, delimiters.field);
    }
    segments.push({ name, fields: parts });
  }
  const header = readHeader(segments[0], delimiters);
  return { delimiters, segments, header };
}

function readHeader(msh: Hl7Segment, d: Delimiters): Hl7Header {
  const f = (n: number, c = 1) => component(msh.fields[n] ?? '', d, c);
  const header: Hl7Header = {
    sendingApplication: f(3),
    sendingFacility: f(4),
    receivingApplication: f(5),
    receivingFacility: f(6),
    dateTime: f(7),
    messageCode: f(9, 1),
    triggerEvent: f(9, 2),
    messageStructure: f(9, 3),
    controlId: f(10),
    processingId: f(11),
    version: f(12),
  };
  if (!header.messageCode)
    throw new CodecError('MSH-9 message type is missing', { location: { segment: 'MSH', sequence: 1, field: 9 }, hl7ErrorCode: '101' });
  if (!header.controlId)
    throw new CodecError('MSH-10 message control id is missing', {
      location: { segment: 'MSH', sequence: 1, field: 10 },
      hl7ErrorCode: '101',
    });
  if (!header.version)
    throw new CodecError('MSH-12 version id is missing', { location: { segment: 'MSH', sequence: 1, field: 12 }, hl7ErrorCode: '101' });
  const seq = f(13);
  if (seq) header.sequenceNumber = seq;
  const acc = f(15);
  if (acc) header.acceptAckType = acc;
  const app = f(16);
  if (app) header.applicationAckType = app;
  const cs = f(18);
  if (cs) header.charset = cs;
  return header;
}

/** Decodes HL7 escape sequences (chapter 2.7). Formatting escapes become plain text. */
export function unescapeHl7(value: string, d: Delimiters): string {
  if (value.indexOf(d.escape) === -1) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (ch !== d.escape) {
      out += ch;
      i++;
      continue;
    }
    const end = value.indexOf(d.escape, i + 1);
    if (end === -1) {
      out += value.slice(i);
      break;
    }
    const seq = value.slice(i + 1, end);
    switch (seq[0]) {
      case 'F':
        out += d.field;
        break;
      case 'S':
        out += d.component;
        break;
      case 'T':
        out += d.subcomponent;
        break;
      case 'R':
        out += d.repetition;
        break;
      case 'E':
        out += d.escape;
        break;
      case 'P':
        out += d.truncation ?? '';
        break;
      case 'X':
        out += hexToText(seq.slice(1));
        break;
      case '.':
        if (seq === '.br') out += '\n';
        break;
      case 'H':
      case 'N':
        break; // highlight on/off: no meaning in canonical text
      default:
        out += d.escape + seq + d.escape; // \Cxxyy\, \Mxxyyzz\, \Zxx\: keep as sent
    }
    i = end + 1;
  }
  return out;
}

function hexToText(hex: string): string {
  if (!/^(?:[0-9A-Fa-f]{2})+$/.test(hex)) return '';
  return Buffer.from(hex, 'hex').toString('utf8');
}

/** Escapes text for a field of a message with these delimiters. */
export function escapeHl7(value: string, d: Delimiters): string {
  let out = '';
  for (const ch of value) {
    if (ch === d.escape) out += `${d.escape}E${d.escape}`;
    else if (ch === d.field) out += `${d.escape}F${d.escape}`;
    else if (ch === d.component) out += `${d.escape}S${d.escape}`;
    else if (ch === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (ch === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (ch === '\r' || ch === '\n') out += `${d.escape}.br${d.escape}`;
    else out += ch;
  }
  return out;
}

/** Repetitions of a raw field. */
export function repetitions(raw: string, d: Delimiters): string[] {
  return raw === '' ? [] : raw.split(d.repetition);
}

/** Component c (1-based) of the first repetition, subcomponent s (1-based), decoded. */
export function component(raw: string, d: Delimiters, c = 1, s = 1): string {
  if (raw === '') return '';
  let v = raw;
  const rep = v.indexOf(d.repetition);
  if (rep !== -1) v = v.slice(0, rep);
  const comps = v.split(d.component);
  let comp = comps[c - 1] ?? '';
  if (comp.indexOf(d.subcomponent) !== -1 || s > 1) comp = comp.split(d.subcomponent)[s - 1] ?? '';
  return unescapeHl7(comp, d);
}

/** All components of one repetition, decoded (subcomponents left joined). */
export function components(rep: string, d: Delimiters): string[] {
  return rep.split(d.component).map((x) => unescapeHl7(x, d));
}

/** Convenience reader bound to one message. */
export interface SegmentReader {
  readonly seg: Hl7Segment;
  /** Sequence of this segment among segments of the same name (1-based). */
  readonly sequence: number;
  raw(field: number): string;
  get(field: number, comp?: number, sub?: number): string;
  reps(field: number): string[][];
}

export function reader(msg: Hl7Message, seg: Hl7Segment, sequence: number): SegmentReader {
  const d = msg.delimiters;
  return {
    seg,
    sequence,
    raw: (f) => seg.fields[f] ?? '',
    get: (f, c = 1, s = 1) => component(seg.fields[f] ?? '', d, c, s),
    reps: (f) => repetitions(seg.fields[f] ?? '', d).map((r) => components(r, d)),
  };
}

/** Readers for every segment with this name, in order. */
export function segmentsNamed(msg: Hl7Message, name: string): SegmentReader[] {
  const out: SegmentReader[] = [];
  for (const s of msg.segments) if (s.name === name) out.push(reader(msg, s, out.length + 1));
  return out;
}

export function firstSegment(msg: Hl7Message, name: string): SegmentReader | undefined {
  for (const s of msg.segments) if (s.name === name) return reader(msg, s, 1);
  return undefined;
}
