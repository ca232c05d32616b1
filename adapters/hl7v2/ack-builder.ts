/**
 * Builds acknowledgements (HL7 v2 chapter 2, "Acknowledgment messages"): MSH-3/4 and MSH-5/6
 * swapped from the inbound message, the inbound version and encoding characters, our own unique
 * MSH-10, MSA-2 echoing the inbound MSH-10, and an ERR segment (table 0357 code, the location at
 * fault) for AE/AR/CE/CR.
 */
import { escapeHl7, type Delimiters, type Hl7Segment } from './hl7-message.ts';
import { hl7Now } from './hl7-datetime.ts';
import type { SourceLocation } from '../contracts.ts';

export const AckCode = { AA: 'AA', AE: 'AE', AR: 'AR', CA: 'CA', CE: 'CE', CR: 'CR' } as const;
export type AckCode = (typeof AckCode)[keyof typeof AckCode];

/** What we could read of the inbound MSH (all of it for a good message, what survives for a bad one). */
export interface InboundHeaderFields {
  delimiters: Delimiters;
  /** Raw MSH fields, index n = MSH-n (may be short or empty for garbage). */
  msh: string[];
}

export interface AckError {
  /** HL7 table 0357: 100 segment sequence, 101 required field missing, 102 data type, 103 table value, 200 unsupported message type, 201 unsupported event, 204 unknown key, 205 duplicate key, 206 application record locked, 207 application internal error. */
  code: string;
  text: string;
  location?: SourceLocation;
}

export const DEFAULT_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

const ERR_TEXT: Record<string, string> = {
  '0': 'Message accepted',
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

export interface AckIdSource {
  next(): string;
}

/** Unique control ids: a per-process prefix from the start time and a counter, ≤ 20 characters (MSH-10 in v2.3 is ST 20). */
export function createAckIdSource(prefix = 'GW', nowMs = Date.now()): AckIdSource {
  const base = prefix + nowMs.toString(36).toUpperCase();
  let n = 0;
  return {
    next: () =>
      base +
      (n++)
        .toString(36)
        .toUpperCase()
        .padStart(20 - base.length, '0')
        .slice(-(20 - base.length)),
  };
}

function versionAtLeast(v: string, major: number, minor: number, patch = 0): boolean {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  if (!m) return true;
  const a = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  return a[0] !== major ? a[0] > major : a[1] !== minor ? a[1] > minor : a[2] >= patch;
}

export interface BuildAckOptions {
  inbound: InboundHeaderFields;
  code: AckCode;
  controlId: string;
  nowMs: number;
  error?: AckError;
  /** Text for MSA-3 (deprecated after 2.4 but widely read). */
  text?: string;
  /** MSA-4: the next sequence number the receiver expects (sequence number protocol, MSH-13). */
  expectedSequence?: string;
}

/** The ACK as text with CR segment ends (MLLP framing is the transport's job). */
export function buildAck(o: BuildAckOptions): string {
  const d = o.inbound.delimiters;
  // echo at most a field's standard length (HD 227, ST 199): a hostile header must not make a huge ACK
  const m = (n: number) => (o.inbound.msh[n] ?? '').slice(0, 227);
  const enc = d.component + d.repetition + d.escape + d.subcomponent + (d.truncation ?? '');
  const version = m(12) || '2.5';
  const comp = m(9).split(d.component);
  const trigger = comp[1] ?? '';
  const msgType = versionAtLeast(version, 2, 3, 1)
    ? ['ACK', trigger, 'ACK'].join(d.component)
    : trigger
      ? `ACK${d.component}${trigger}`
      : 'ACK';
  const f = d.field;
  const msh = ['MSH', enc, m(5), m(6), m(3), m(4), hl7Now(o.nowMs), '', msgType, o.controlId, m(11) || 'P', version];
  if (m(18)) {
    while (msh.length < 18) msh.push('');
    msh[17] = m(18);
  }
  const segs = [msh.join(f)];
  const msa = ['MSA', o.code, m(10)];
  const text = o.text ?? o.error?.text;
  msa.push(text ? escapeHl7(text.slice(0, 80), d) : '');
  if (o.expectedSequence !== undefined) msa.push(o.expectedSequence);
  while (msa.length > 3 && msa[msa.length - 1] === '') msa.pop();
  segs.push(msa.join(f));
  if (o.error) segs.push(buildErr(o.error, d, version));
  return segs.join('\r') + '\r';
}

function buildErr(e: AckError, d: Delimiters, version: string): string {
  const loc = e.location ?? {};
  const c = d.component;
  const text = escapeHl7(e.text.slice(0, 200), d);
  const codeText = ERR_TEXT[e.code] ?? 'Error';
  if (versionAtLeast(version, 2, 5)) {
    // ERR-2 (ERL: segment^sequence^field^field rep^component), ERR-3 (CWE, table 0357), ERR-4 severity, ERR-8 user message
    const erl = [loc.segment ?? '', loc.sequence ?? '', loc.field ?? '', loc.field ? 1 : '', loc.component ?? '']
      .join(c)
      .replace(new RegExp(`\\${c}+$`), '');
    return ['ERR', '', erl, [e.code, codeText, 'HL70357'].join(c), 'E', '', '', '', text].join(d.field);
  }
  // v2.1–2.4: ERR-1 (ELD: segment^sequence^field^code&text&table)
  const s = d.subcomponent;
  return ['ERR', [loc.segment ?? '', loc.sequence ?? '', loc.field ?? '', [e.code, codeText, 'HL70357'].join(s)].join(c)].join(d.field);
}

/** Best-effort read of MSH fields from input that may not parse, so even an AR echoes MSH-10. */
export function salvageHeader(text: string): InboundHeaderFields {
  let t = text;
  if (t.charCodeAt(0) === 0xfeff) t = t.slice(1);
  t = t.replace(/^[\s\u000b]+/, '');
  if (!t.startsWith('MSH') || t.length < 8) return { delimiters: DEFAULT_DELIMITERS, msh: [] };
  const field = t.charAt(3);
  const end = t.search(/[\r\n]/);
  const line = end === -1 ? t.slice(0, 65536) : t.slice(0, Math.min(end, 65536));
  const enc = line.slice(4).split(field)[0] ?? '';
  let delimiters = DEFAULT_DELIMITERS;
  const chars = [field, ...enc.slice(0, 4)];
  if (enc.length >= 4 && new Set(chars).size === 5 && !chars.some((ch) => /[A-Za-z0-9]/.test(ch))) {
    delimiters = { field, component: enc[0], repetition: enc[1], escape: enc[2], subcomponent: enc[3] };
    if (enc.length >= 5 && enc[4] !== field) delimiters.truncation = enc[4];
  }
  const parts = line.split(field);
  parts.splice(1, 0, field);
  // keep only what is safe to echo: a control id or version full of delimiters would corrupt the ACK
  const unsafe = new Set([delimiters.field, '\r', '\n', '\u001c', '\u000b']);
  const clean = (p: string) => [...p.slice(0, 199)].filter((ch) => !unsafe.has(ch)).join('');
  return { delimiters, msh: parts.map((p, i) => (i === 1 ? p : clean(p))) };
}

export function headerFromSegment(msh: Hl7Segment, delimiters: Delimiters): InboundHeaderFields {
  return { delimiters, msh: msh.fields };
}
