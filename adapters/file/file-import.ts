/**
 * Importing one export file, exactly once per file and per row.
 *
 * The ledger is the outbox's cursor table (same SQLite file): under `file:<source>:<sha256>` it
 * keeps the file's name, size, mtime, hash and how many rows are committed, written in the same
 * transaction as those rows' records (pages of `pageSize` rows, or fewer when the rows are wide:
 * `PAGE_MAX_CHARS`). So:
 *  - the same content seen again (a re-export, a copy, a file put back) is not imported twice;
 *  - a crash in the middle of a file resumes after the last committed row: no gap, no duplicate;
 *  - record ids are deterministic from each row's content, so even a repeated row (or a daily
 *    full export) is the same record to the cloud.
 * HL7 v2 files go message by message through the HL7 intake (its resend check is the per-message
 * ledger); the file's entry records progress and completion.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { recordsFromRow } from '../canonical/map-row.ts';
import { hashRowJson, rowHash, rowJson } from '../canonical/row-hash.ts';
import type { IntakeContext, MapResult, RawRow } from '../contracts.ts';
import { decodeXmlBytes } from '../cda/xml-root.ts';
import { mapFhirResource } from '../fhir/map-fhir.ts';
import { splitHl7Messages } from '../hl7v2/hl7-batch.ts';
import { decodeHl7Bytes } from '../hl7v2/hl7-charset.ts';
import {
  detectFileFormat,
  FileFormatError,
  readCsv,
  readFhir,
  readJson,
  readNdjson,
  readXml,
  type CsvOptions,
  type FileFormat,
  type FileRow,
} from './file-formats.ts';
import type { FileKind, FileProfile } from './file-profiles.ts';
import { openRead, readWhole } from './staged-file.ts';

export interface FileImportOptions {
  adapterId: string;
  /** A profile of kinds; or `fhir-r4` / `hl7v2` for files mapped by those mappers. */
  profile: FileProfile | 'fhir-r4' | 'hl7v2';
  /** `auto`: by the kind, else the file's name and first bytes. */
  format: FileFormat | 'auto';
  csv: CsvOptions;
  maxWholeFileBytes: number;
  pageSize: number;
  timezone: string;
  now: () => number;
}

export interface FileRef {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export type ImportOutcome =
  | { status: 'imported'; rows: number; deadLettered: number; resumedAfter: number }
  | { status: 'already' }
  | { status: 'retry'; reason: string }
  | { status: 'failed'; code: string; reason: string };

interface Ledger {
  name: string;
  size: number;
  mtimeMs: number;
  sha256: string;
  rows: number;
  done: boolean;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of openRead(path, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

export const ledgerKey = (adapterId: string, sha: string) => `file:${adapterId}:${sha}`;

/** The kinds of the profile that read this file (by name), or why none does. */
export function kindsFor(profile: FileProfile, name: string): FileKind[] {
  return profile.kinds.filter((k) => new RegExp(k.match, 'i').test(name));
}

/** The rows one kind reads from a file. */
export function rowsOf(
  path: string,
  format: FileFormat,
  kind: FileKind | undefined,
  o: Pick<FileImportOptions, 'csv' | 'maxWholeFileBytes'>,
): AsyncGenerator<FileRow> {
  const csv = { ...o.csv, ...(kind?.csv ?? {}) };
  switch (format) {
    case 'csv':
      return readCsv(path, csv);
    case 'ndjson':
      return readNdjson(path, csv.encoding);
    case 'json':
      return readJson(path, kind?.rowPath ?? '', o.maxWholeFileBytes, csv.encoding);
    case 'xml':
      return readXml(path, kind?.rowPath ?? '', o.maxWholeFileBytes, csv.encoding);
    case 'fhir':
      return readFhir(path, o.maxWholeFileBytes);
    default:
      throw new FileFormatError(`${format} files are not read as rows`);
  }
}

/** The records of one file row of a kind (or a FHIR resource). */
export function mapFileRow(
  o: { adapterId: string; system: string; timezone: string; now: () => number },
  kind: FileKind | 'fhir',
  row: RawRow,
): MapResult {
  const hash = row.hash ?? rowHash(row.data);
  if (kind === 'fhir') return mapFhirResource(row.data, { system: o.system, adapter: 'file', now: o.now }, hash);
  const key = kind.key ? String(recordKey(row.data, kind.key) ?? '') : '';
  return recordsFromRow(row.data, kind.records, {
    idParts: ['file', o.adapterId, kind.name],
    rowHash: hash,
    system: o.system,
    adapter: 'file',
    sourceId: `${kind.name}/${key || row.pk}`,
    partition: `${o.adapterId}:${kind.name}:${key || row.pk}`,
    where: kind.name,
    timezone: o.timezone,
    now: o.now,
  });
}

function recordKey(data: Record<string, unknown>, key: string): unknown {
  if (key.includes('{')) return key.replace(/\{([^}]+)\}/g, (_, c: string) => String(data[c] ?? ''));
  return data[key];
}

export async function importFile(ctx: IntakeContext, o: FileImportOptions, file: FileRef): Promise<ImportOutcome> {
  const sha = await sha256File(file.path);
  const key = ledgerKey(o.adapterId, sha);
  const priorText = ctx.cursor(key);
  const prior = priorText ? (JSON.parse(priorText) as Ledger) : undefined;
  if (prior?.done) return { status: 'already' };
  const resumeAfter = prior?.rows ?? 0;
  const ledger = (rows: number, done: boolean) => ({
    key,
    value: JSON.stringify({ name: file.name, size: file.size, mtimeMs: file.mtimeMs, sha256: sha, rows, done } satisfies Ledger),
  });
  const system = typeof o.profile === 'string' ? (o.profile === 'fhir-r4' ? 'FHIR' : 'HL7') : o.profile.system;
  const stream = `file:${o.adapterId}`;

  // which reader: an HL7 file, FHIR, or the profile's kinds that match the name
  let format: FileFormat | undefined = o.format === 'auto' ? undefined : o.format;
  let kinds: Array<FileKind | 'fhir'>;
  if (o.profile === 'hl7v2' || o.profile === 'fhir-r4') {
    // these profiles read one format: a file that is not it fails (error/ with the reason)
    format = o.profile === 'hl7v2' ? 'hl7v2' : 'fhir';
    kinds = ['fhir'];
  } else {
    const ks = kindsFor(o.profile, file.name);
    format ??= ks[0]?.format ?? (await detectFileFormat(file.path));
    // a CDA document or an HL7 v3 message is mapped whole by its codec: no kind needs to name it
    if (ks.length === 0 && format !== 'cda' && format !== 'hl7v3')
      return {
        status: 'failed',
        code: 'GW_UNSUPPORTED_MESSAGE',
        reason: `no kind of profile ${o.profile.name} reads a file named ${file.name} (kinds: ${o.profile.kinds.map((k) => `${k.name} /${k.match}/`).join(', ')})`,
      };
    kinds = ks;
  }
  if (!format)
    return { status: 'failed', code: 'GW_PARSE_FAILED', reason: "the file's format could not be recognised (set files[].format)" };

  if (format === 'hl7v2' || format === 'cda' || format === 'hl7v3') return importMessages(ctx, o, file, format, resumeAfter, ledger);

  let g = 0;
  let page: RawRow[] = [];
  /** The page's rows measured as their JSON text (what they are hashed by), in characters. */
  let pageChars = 0;
  let deadLettered = 0;
  const kindOf = new Map<string, FileKind | 'fhir'>();
  const mapOpts = { ...o, system };
  const flush = async (done: boolean): Promise<ImportOutcome | undefined> => {
    // the page's rows are let go before the commit is awaited (the pipeline maps them first; the
    // outbox keeps what it commits): a page does not live through the commit into the old generation.
    // Whatever the outcome the next page starts empty, as before; the ledger moves only with the commit.
    const rows = page;
    page = [];
    pageChars = 0;
    const r = await ctx.intakePage({
      adapter: o.adapterId,
      format: stream,
      stream,
      rows,
      cursor: ledger(g, done),
      trackRows: false,
      map: (row) => mapFileRow(mapOpts, kindOf.get(row.pk.slice(0, row.pk.lastIndexOf('#')))!, row),
    });
    if (r.status !== 'accepted') return { status: 'retry', reason: `${r.code}: ${r.reason}` };
    deadLettered += r.deadLettered;
    return undefined;
  };
  try {
    for (const kind of kinds) {
      const kindName = kind === 'fhir' ? 'fhir' : kind.name;
      kindOf.set(kindName, kind);
      for await (const row of rowsOf(file.path, format, kind === 'fhir' ? undefined : kind, o)) {
        g++;
        if (g <= resumeAfter) continue;
        const json = rowJson(row.data);
        pageChars += json.length;
        page.push({ pk: `${kindName}#${g}`, data: row.data, hash: hashRowJson(json) });
        if (page.length >= o.pageSize || pageChars >= PAGE_MAX_CHARS) {
          const stop = await flush(false);
          if (stop) return stop;
        }
      }
    }
  } catch (e) {
    if (e instanceof FileFormatError) {
      // rows before the fault stay committed (the ledger says how many); the file goes to error/
      if (page.length) {
        const stop = await flush(false);
        if (stop) return stop;
      }
      return { status: 'failed', code: 'GW_PARSE_FAILED', reason: e.message };
    }
    throw e;
  }
  const stop = await flush(true);
  if (stop) return stop;
  return { status: 'imported', rows: g, deadLettered, resumedAfter: resumeAfter };
}

/**
 * A page also ends once its rows' text reaches this (characters of their JSON), whatever
 * `pageSize` says: a page is held whole until it is mapped, so 1,000 rows of 64 KB would be 64 MB
 * at once. Narrow rows never reach it (1,000 CSV rows of ~100 bytes are ~0.15 M characters). The
 * peak it saves and the commits it adds: BENCHMARKS.md (footprint).
 */
export const PAGE_MAX_CHARS = 1 << 20;

/** A file of messages for a codec: HL7 v2 (one or more, or a batch), or one whole CDA document or HL7 v3 message. */
async function importMessages(
  ctx: IntakeContext,
  o: FileImportOptions,
  file: FileRef,
  format: 'hl7v2' | 'cda' | 'hl7v3',
  resumeAfter: number,
  ledger: (rows: number, done: boolean) => { key: string; value: string },
): Promise<ImportOutcome> {
  let messages: string[];
  if (format === 'hl7v2') {
    messages = splitHl7Messages(decodeHl7Bytes(await readWhole(file.path)));
    if (messages.length === 0 || !messages[0].startsWith('MSH'))
      return { status: 'failed', code: 'GW_PARSE_FAILED', reason: 'the file holds no HL7 v2 message (no MSH segment)' };
  } else {
    if (file.size > o.maxWholeFileBytes)
      return {
        status: 'failed',
        code: 'GW_PARSE_FAILED',
        reason: `the file is ${file.size} bytes; a CDA document or HL7 v3 message is read whole up to ${o.maxWholeFileBytes} bytes (files.maxWholeFileBytes)`,
      };
    const bytes = await readWhole(file.path);
    try {
      messages = [decodeXmlBytes(bytes)];
    } catch (e) {
      return { status: 'failed', code: 'GW_PARSE_FAILED', reason: (e as Error).message };
    }
  }
  let rejected = 0;
  const mark = async (n: number, done: boolean) => {
    const r = await ctx.intakePage({
      adapter: o.adapterId,
      format: 'hl7v2',
      stream: `file:${o.adapterId}`,
      rows: [],
      map: () => ({ records: [], issues: [] }),
      cursor: ledger(n, done),
      trackRows: false,
    });
    return r.status === 'accepted';
  };
  for (let i = resumeAfter; i < messages.length; i++) {
    const r = await ctx.intake({ adapter: o.adapterId, format, text: messages[i] });
    if (r.status === 'rejected' && r.retry !== 'permanent') {
      await mark(i, false);
      return { status: 'retry', reason: `${r.code}: ${r.reason}` };
    }
    if (r.status === 'rejected') rejected++;
    if ((i + 1) % 100 === 0 && !(await mark(i + 1, false))) return { status: 'retry', reason: 'outbox full' };
  }
  if (!(await mark(messages.length, true))) return { status: 'retry', reason: 'outbox full' };
  ctx.logger.info({ file: basename(file.path), format, messages: messages.length, rejected }, 'HL7 file imported');
  return { status: 'imported', rows: messages.length, deadLettered: rejected, resumedAfter: resumeAfter };
}
