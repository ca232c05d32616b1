/**
 * Reading export files as rows, streaming where the format allows (CSV and NDJSON never hold the
 * whole file; JSON, XML and FHIR bundles are read whole, up to `maxWholeFileBytes`).
 *
 * A row is `{ n, data }`: its 1-based position among the file's rows, and its fields (CSV: by
 * header or position; JSON/XML: the object at the configured path, flattened to dotted keys;
 * FHIR: the resource).
 */
import { openRead } from './staged-file.ts';
import { TextDecoder } from 'node:util';
import { stat } from 'node:fs/promises';
import { detectXmlDocument } from '../cda/xml-root.ts';

/** `cda` and `hl7v3`: a whole CDA document or HL7 v3 message per file, mapped by adapters/cda/'s codecs. */
export type FileFormat = 'csv' | 'json' | 'ndjson' | 'xml' | 'hl7v2' | 'fhir' | 'cda' | 'hl7v3';
export const FILE_FORMATS: readonly FileFormat[] = ['csv', 'json', 'ndjson', 'xml', 'hl7v2', 'fhir', 'cda', 'hl7v3'];

export interface CsvOptions {
  /** Field separator; `auto` picks the most frequent of , ; | and tab in the first line. */
  delimiter: string;
  quote: string;
  /** `true`: the first line names the columns; a list: positional files, these names in order. */
  header: boolean | string[];
  /** Any WHATWG encoding label: utf-8, windows-1252, iso-8859-1, utf-16le … */
  encoding: string;
}

export interface FileRow {
  n: number;
  data: Record<string, unknown>;
}

export class FileFormatError extends Error {
  readonly row: number | undefined;
  constructor(message: string, row?: number) {
    super(row !== undefined ? `row ${row}: ${message}` : message);
    this.name = 'FileFormatError';
    this.row = row;
  }
}

/** Decoded text of a file, chunk by chunk (a BOM dropped; bytes split between chunks joined right). */
async function* textChunks(path: string, encoding: string): AsyncGenerator<string> {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(encoding, { fatal: false, ignoreBOM: false });
  } catch {
    throw new FileFormatError(`unknown text encoding "${encoding}"`);
  }
  for await (const chunk of openRead(path, { highWaterMark: 256 * 1024 })) {
    const s = decoder.decode(chunk as Buffer, { stream: true });
    if (s) yield s;
  }
  const tail = decoder.decode();
  if (tail) yield tail;
}

const DELIMS = [',', ';', '|', '\t'];

/** CSV records as arrays of fields: RFC 4180 quoting (doubled quotes, line breaks inside quotes), CRLF/LF/CR. */
export async function* csvRecords(chunks: AsyncIterable<string>, o: { delimiter: string; quote: string }): AsyncGenerator<string[]> {
  let delim = o.delimiter === 'auto' ? '' : o.delimiter;
  const q = o.quote;
  let field = '';
  let row: string[] = [];
  let inQuotes = false;
  let quoteSeen = false; // the previous char closed a quote (or is the first of a doubled one)
  let pendingCR = false;
  let line = 1;
  let quoteLine = 1;
  let any = false;
  for await (const chunk of chunks) {
    if (!delim) {
      const first = chunk.split(/\r\n|\n|\r/, 1)[0];
      delim = DELIMS.map((d) => [d, first.split(d).length] as const).sort((a, b) => b[1] - a[1])[0][0];
    }
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (pendingCR) {
        pendingCR = false;
        if (c === '\n') {
          start = i + 1;
          continue;
        }
      }
      if (inQuotes) {
        if (c === q) {
          field += chunk.slice(start, i);
          start = i + 1;
          if (chunk[i + 1] === q) {
            field += q;
            i++;
            start = i + 1;
            continue;
          }
          if (i + 1 === chunk.length) {
            quoteSeen = true;
            inQuotes = false;
            continue;
          }
          inQuotes = false;
        } else if (c === '\n') line++;
        continue;
      }
      if (quoteSeen) {
        quoteSeen = false;
        if (c === q) {
          field += q;
          inQuotes = true;
          start = i + 1;
          continue;
        }
      }
      if (c === delim) {
        row.push(field + chunk.slice(start, i));
        field = '';
        start = i + 1;
        any = true;
        continue;
      }
      if (c === '\n' || c === '\r') {
        row.push(field + chunk.slice(start, i));
        field = '';
        start = i + 1;
        if (c === '\r') pendingCR = true;
        if (row.length > 1 || row[0] !== '') yield row;
        row = [];
        any = false;
        line++;
        continue;
      }
      if (c === q && field === '' && start === i) {
        inQuotes = true;
        quoteLine = line;
        start = i + 1;
        any = true;
        continue;
      }
      any = true;
    }
    field += chunk.slice(start);
  }
  if (inQuotes) throw new FileFormatError(`a quoted field opened on line ${quoteLine} is never closed`);
  if (any || field !== '' || row.length) {
    row.push(field);
    if (row.length > 1 || row[0] !== '') yield row;
  }
}

export async function* readCsv(path: string, o: CsvOptions): AsyncGenerator<FileRow> {
  let names: string[] | undefined = Array.isArray(o.header) ? o.header : undefined;
  let n = 0;
  for await (const rec of csvRecords(textChunks(path, o.encoding), o)) {
    if (!names) {
      names = rec.map((h, i) => h.trim() || `c${i + 1}`);
      continue;
    }
    n++;
    const data: Record<string, unknown> = {};
    for (let i = 0; i < rec.length; i++) data[names[i] ?? `c${i + 1}`] = rec[i];
    yield { n, data };
  }
}

export async function* readNdjson(path: string, encoding = 'utf-8'): AsyncGenerator<FileRow> {
  let buf = '';
  let n = 0;
  let lineNo = 0;
  const emit = (line: string): FileRow | undefined => {
    lineNo++;
    if (line.trim() === '') return undefined;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new FileFormatError('not a JSON value', lineNo);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new FileFormatError('each line must be a JSON object', lineNo);
    return { n: ++n, data: v as Record<string, unknown> };
  };
  for await (const chunk of textChunks(path, encoding)) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const r = emit(buf.slice(0, nl).replace(/\r$/, ''));
      buf = buf.slice(nl + 1);
      if (r) yield r;
    }
  }
  const r = emit(buf);
  if (r) yield r;
}

async function wholeText(path: string, max: number, encoding = 'utf-8'): Promise<string> {
  const st = await stat(path);
  if (st.size > max)
    throw new FileFormatError(
      `the file is ${st.size} bytes; JSON, XML and FHIR bundles are read whole up to ${max} bytes (files.maxWholeFileBytes) — export NDJSON or CSV for larger ones`,
    );
  let s = '';
  for await (const c of textChunks(path, encoding)) s += c;
  return s;
}

/** The value at a dotted path (`a.b.c`); arrays along the way are flattened. */
export function atPath(v: unknown, path: string): unknown[] {
  let cur: unknown[] = [v];
  for (const p of path.split('.').filter(Boolean)) {
    const next: unknown[] = [];
    for (const x of cur) {
      const y = x && typeof x === 'object' ? (x as Record<string, unknown>)[p] : undefined;
      if (Array.isArray(y)) next.push(...y);
      else if (y !== undefined) next.push(y);
    }
    cur = next;
  }
  return cur.flatMap((x) => (Array.isArray(x) ? x : [x]));
}

/** Nested objects as dotted keys (`Patient.Name.Last`), so field mappings name them as columns. */
export function flatten(v: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out));
    if (v.length && prefix) flatten(v[0], prefix, out); // the first element also answers to the plain path
  } else if (prefix) {
    if (!(prefix in out)) out[prefix] = v;
  }
  return out;
}

export async function* readJson(path: string, rowPath: string, max: number, encoding = 'utf-8'): AsyncGenerator<FileRow> {
  let doc: unknown;
  try {
    doc = JSON.parse(await wholeText(path, max, encoding));
  } catch (e) {
    if (e instanceof FileFormatError) throw e;
    throw new FileFormatError(`not JSON: ${(e as Error).message}`);
  }
  const items = rowPath ? atPath(doc, rowPath) : Array.isArray(doc) ? doc : [doc];
  let n = 0;
  for (const it of items) yield { n: ++n, data: flatten(it) };
}

export async function* readXml(path: string, rowPath: string, max: number, encoding = 'utf-8'): AsyncGenerator<FileRow> {
  const text = await wholeText(path, max, encoding);
  // imported for the first XML file, not at the top: most gateways never read one
  const { XMLParser } = await import('fast-xml-parser');
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: true,
    isArray: () => false,
  });
  let doc: unknown;
  try {
    doc = parser.parse(text, true);
  } catch (e) {
    throw new FileFormatError(`not well-formed XML: ${(e as Error).message}`);
  }
  if (!rowPath) throw new FileFormatError('an XML file needs `rowPath`: the element path of one row (e.g. Export.EWSpecRx)');
  let n = 0;
  for (const it of atPath(doc, rowPath)) yield { n: ++n, data: flatten(it) };
}

/** FHIR R4: a Bundle (its entries' resources), a single resource, or NDJSON of resources. */
export async function* readFhir(path: string, max: number): AsyncGenerator<FileRow> {
  const head = (await wholeHead(path)).trimStart();
  if (head.startsWith('{') && !/\}\s*\r?\n\s*\{/.test(head)) {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(await wholeText(path, max)) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof FileFormatError) throw e;
      throw new FileFormatError('not a FHIR JSON resource or bundle');
    }
    const resources =
      doc.resourceType === 'Bundle'
        ? ((doc.entry as Array<{ resource?: unknown }> | undefined) ?? []).map((e) => e.resource).filter(Boolean)
        : [doc];
    let n = 0;
    for (const r of resources) yield { n: ++n, data: r as Record<string, unknown> };
    return;
  }
  yield* readNdjson(path);
}

async function wholeHead(path: string): Promise<string> {
  for await (const c of textChunks(path, 'utf-8')) return c.slice(0, 65536);
  return '';
}

/** The format of a file by its name, else by its first bytes. */
export async function detectFileFormat(path: string): Promise<FileFormat | undefined> {
  const lower = path.toLowerCase();
  if (/\.(hl7|hl7v2)$/.test(lower)) return 'hl7v2';
  if (/\.(ndjson|jsonl)$/.test(lower)) {
    const head = await wholeHead(path);
    return /"resourceType"\s*:/.test(head) ? 'fhir' : 'ndjson';
  }
  if (lower.endsWith('.xml')) return detectXmlDocument(await wholeHead(path)) ?? 'xml';
  if (/\.(csv|txt|tsv|psv)$/.test(lower) && !/^\s*(MSH|FHS|BHS)\|/.test(await wholeHead(path))) return 'csv';
  const head = (await wholeHead(path)).replace(/^\uFEFF/, '').trimStart();
  if (/^(MSH|FHS|BHS)/.test(head)) return 'hl7v2';
  if (head.startsWith('<')) return detectXmlDocument(head) ?? 'xml';
  if (head.startsWith('{') || head.startsWith('['))
    return /"resourceType"\s*:/.test(head) ? 'fhir' : head.startsWith('{') && /\}\s*\r?\n\s*\{/.test(head) ? 'ndjson' : 'json';
  if (lower.endsWith('.json')) return 'json';
  return head.includes(',') || head.includes(';') || head.includes('|') || head.includes('\t') ? 'csv' : undefined;
}
