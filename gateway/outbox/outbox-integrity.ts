/**
 * Is the outbox file sound? Checked at every open, before the writer or a source touches it, so
 * damage is found while the gateway can still do something about it (move the file aside and
 * salvage it: outbox-salvage.ts) instead of surfacing as a crash loop with SQLite's raw text.
 *
 * Damage is: a missing or zero-length file where data is expected (a key already existed, so the
 * outbox was made before: this is not a fresh install), a header without SQLite's 16-byte magic,
 * a file shorter than its header's page count, `PRAGMA quick_check` failing, or SQLite answering
 * SQLITE_CORRUPT / SQLITE_NOTADB to the open or a migration. Any other failure (a full disk, a
 * permission) is not damage: it is GW_OUTBOX_IO, and nothing is moved.
 */
import { DatabaseSync } from 'node:sqlite';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { GatewayError } from '../errors.ts';

/** The first 16 bytes of every SQLite 3 database (https://www.sqlite.org/fileformat.html §1.3). */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

export const DamageReason = {
  missing: 'missing',
  empty: 'empty',
  header: 'header',
  truncated: 'truncated',
  quickCheck: 'quick_check',
  corrupt: 'corrupt',
} as const;
export type DamageReason = (typeof DamageReason)[keyof typeof DamageReason];

export type Inspection = { state: 'fresh' } | { state: 'sound' } | { state: 'damaged'; reason: DamageReason };

/** Words for the log and the alert (no SQLite text: it can quote content). */
export function describeDamage(reason: DamageReason): string {
  switch (reason) {
    case 'missing':
      return 'the outbox file was missing although a seal key existed (not a first run)';
    case 'empty':
      return 'the outbox file was empty (0 bytes) although a seal key existed (not a first run)';
    case 'header':
      return 'the outbox file does not start with the SQLite header';
    case 'truncated':
      return 'the outbox file is shorter than its header says (truncated)';
    case 'quick_check':
      return "the outbox file failed SQLite's integrity check (quick_check)";
    case 'corrupt':
      return 'SQLite reported the outbox file as malformed (SQLITE_CORRUPT / SQLITE_NOTADB)';
    default:
      return reason satisfies never;
  }
}

/** SQLite's own verdict that a file is damaged (primary result code CORRUPT or NOTADB, any extended code). */
export function isCorruption(e: unknown): boolean {
  const code = (e as { errcode?: unknown })?.errcode;
  if (typeof code !== 'number') return false;
  const primary = code & 0xff;
  return primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB;
}

function readHead(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(bytes);
    const n = readSync(fd, b, 0, bytes, 0);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Looks at the file without changing it. `expectData`: a key existed before this start, so the
 * outbox was created before; a missing or empty file is then damage, not a first run.
 */
export function inspectOutboxFile(file: string, o: { expectData: boolean }): Inspection {
  if (!existsSync(file)) return o.expectData ? { state: 'damaged', reason: 'missing' } : { state: 'fresh' };
  const size = statSync(file).size;
  if (size === 0) return o.expectData ? { state: 'damaged', reason: 'empty' } : { state: 'fresh' };
  const head = readHead(file, 100);
  if (head.length < 100 || !head.subarray(0, 16).equals(SQLITE_MAGIC)) return { state: 'damaged', reason: 'header' };
  // the page count in the header is kept only when it is valid (change counter = version-valid-for);
  // with frames in a WAL the main file may lag its header until the next checkpoint, so skip then
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const pages = head.readUInt32BE(28);
  const valid = head.readUInt32BE(24) === head.readUInt32BE(92);
  const walBytes = existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0;
  if (walBytes === 0 && valid && pages > 0 && size < pages * pageSize) return { state: 'damaged', reason: 'truncated' };
  let d: DatabaseSync | undefined;
  try {
    d = new DatabaseSync(file);
    d.exec('PRAGMA busy_timeout = 5000');
    const rows = d.prepare('PRAGMA quick_check(1)').all() as Array<{ quick_check: string }>;
    if (rows.length !== 1 || rows[0].quick_check !== 'ok') return { state: 'damaged', reason: 'quick_check' };
    return { state: 'sound' };
  } catch (e) {
    if (isCorruption(e)) return { state: 'damaged', reason: 'corrupt' };
    throw new GatewayError('GW_OUTBOX_IO', `outbox ${file} could not be opened to check it`, { cause: e });
  } finally {
    d?.close();
  }
}

/** Tables whose rows are sealed under the record key. */
export const SEALED_TABLES = ['outbox', 'dead_letters', 'pending_commands'] as const;

function tableExists(d: DatabaseSync, name: string): boolean {
  return d.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

/** Rows sealed under the key (queued records, dead letters, pending commands). */
export function sealedRowCount(d: DatabaseSync): number {
  let n = 0;
  for (const t of SEALED_TABLES) if (tableExists(d, t)) n += Number((d.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n);
  return n;
}

/** The key check value stored in the outbox (migration 6), if any. */
export function storedKeyCheck(d: DatabaseSync): string | undefined {
  if (!tableExists(d, 'seal_key_check')) return undefined;
  return (d.prepare('SELECT kcv FROM seal_key_check WHERE id = 1').get() as { kcv: string } | undefined)?.kcv;
}

/** One sealed row to try a key on when no check value is stored yet (an outbox from before migration 6). */
export function sampleSealedRow(d: DatabaseSync): { aad: string; sealed: Uint8Array } | undefined {
  if (tableExists(d, 'outbox')) {
    const r = d.prepare('SELECT id, payload FROM outbox ORDER BY seq LIMIT 1').get() as { id: string; payload: Uint8Array } | undefined;
    if (r) return { aad: r.id, sealed: r.payload };
  }
  if (tableExists(d, 'dead_letters')) {
    const r = d.prepare('SELECT id, payload FROM dead_letters LIMIT 1').get() as { id: string; payload: Uint8Array } | undefined;
    if (r) return { aad: r.id, sealed: r.payload };
  }
  if (tableExists(d, 'pending_commands')) {
    const r = d.prepare('SELECT id, payload FROM pending_commands LIMIT 1').get() as { id: string; payload: Uint8Array } | undefined;
    if (r) return { aad: `command:${r.id}`, sealed: r.payload };
  }
  return undefined;
}

/** What a key decision needs to know of an outbox file, read-only: nothing there, sealed rows (with the stored check value), or unreadable. */
export type SealedData =
  | { state: 'none' }
  | { state: 'rows'; rows: number; keyCheck?: string; sample?: { aad: string; sealed: Uint8Array } }
  | { state: 'unreadable' };

export function sealedDataIn(file: string): SealedData {
  if (!existsSync(file) || statSync(file).size === 0) return { state: 'none' };
  let d: DatabaseSync | undefined;
  try {
    d = new DatabaseSync(file, { readOnly: true });
    const rows = sealedRowCount(d);
    if (rows === 0) return { state: 'none' };
    return { state: 'rows', rows, keyCheck: storedKeyCheck(d), sample: sampleSealedRow(d) };
  } catch {
    return { state: 'unreadable' };
  } finally {
    d?.close();
  }
}
