/**
 * Salvage of a damaged outbox: every row that can still be read is copied into a fresh outbox,
 * and the damaged file is kept, moved aside to `<dataDir>/damaged/<name>-<timestamp>.db`.
 *
 * node:sqlite has no `.recover`, so each table is walked by rowid ranges on the damaged copy,
 * opened read-only. When a range cannot be read (a lost or broken page), the walk searches for the
 * next rowid from which SQLite reads again — doubling steps, then halving back — and goes on from
 * there, so one bad page costs its own rows and nothing after it. Rows in the skipped range are
 * counted lost: exact where rowids are dense (an outbox nothing was acked from), an upper bound
 * where acked rows left gaps. Every salvaged record is opened with the seal key before it is
 * kept; one that does not open (its bytes were damaged) is kept as a GW_RECORD_UNREADABLE dead
 * letter, so a person can see which record ids to have resent.
 *
 * Crash safety: the damaged file is hard-linked into `damaged/` first (the original stays in
 * place), the fresh outbox is built under a temporary name and fsynced, and only then renamed over
 * the original (after its old WAL is moved aside, so SQLite can never replay it onto the new
 * file). A crash or a full disk before the rename leaves the damaged original in place, found and
 * salvaged again at the next start; nothing is ever left looking like an empty, healthy outbox.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { copyFileSync, existsSync, linkSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createRecordSealer, type RecordSealer } from '../crypto/record-sealer.ts';
import { fsyncDir } from '../crypto/key-file.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import { BUNDLE_SEPARATOR } from './outbox.ts';
import { describeDamage, type DamageReason } from './outbox-integrity.ts';

/** The tables salvaged, in the order they are walked. */
export const SALVAGED_TABLES = ['outbox', 'dead_letters', 'pending_commands', 'source_cursors', 'source_rows', 'intake_log'] as const;
export type SalvagedTable = (typeof SALVAGED_TABLES)[number];

export interface TableSalvage {
  /** Rows copied into the fresh outbox (unreadable records kept as dead letters included). */
  salvaged: number;
  /** Rows that could not be read (rowids in unreadable ranges; an upper bound where rowids have gaps). */
  lost: number;
  /** More rows may have been lost than `lost` says (the table or its end could not be read, or it has no rowids to count by). */
  lostUnknown: boolean;
  /** Read, but their seal did not open: kept as GW_RECORD_UNREADABLE dead letters (outbox) or counted here (others). */
  unreadable: number;
}

export interface SalvageReport {
  /** The outbox file that was damaged. */
  file: string;
  /** Where the damaged file (and its WAL) now lies; absent when there was no file to keep. */
  movedTo?: string;
  reason: DamageReason;
  tables: Record<SalvagedTable, TableSalvage>;
}

/**
 * Queued records were lost or cannot be opened: then the sources' positions (cursors, row hashes,
 * resend log) are left behind on purpose, so polled sources read again from the start and resends
 * are taken as new.
 */
export function sourcesRewound(tables: Record<SalvagedTable, TableSalvage>): boolean {
  const ob = tables.outbox;
  return ob.lost > 0 || ob.lostUnknown || ob.unreadable > 0;
}

/** Bounds of one walk: it ends, whatever the damage (a table's bad regions, the probes per region). */
const MAX_BAD_REGIONS = 100_000;
const MAX_ROWID = 2 ** 53;
const BATCH = 1000;

/** A name in `damaged/` that no earlier salvage used: `<name>-<UTC timestamp>.db`. */
function damagedName(dir: string, file: string, now: number): string {
  const stem = basename(file).replace(/\.db$/, '');
  const ts = new Date(now).toISOString().replace(/[-:]/g, '').replace('.', '-');
  for (let n = 0; ; n++) {
    const p = join(dir, `${stem}-${ts}${n ? `-${n}` : ''}.db`);
    if (!existsSync(p) && !existsSync(`${p}-wal`)) return p;
  }
}

/** Keeps `from` at `to` without moving it yet: a hard link (no space needed), or a copy where links are not allowed. */
function keep(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

interface Walk {
  lost: number;
  lostUnknown: boolean;
}

/**
 * Visits every readable row of a rowid table in rowid order. `top` is the highest rowid known to
 * have existed (the outbox's AUTOINCREMENT counter), to count an unreadable end; without it an
 * unreadable end is `lostUnknown`.
 */
function walkRowids(d: DatabaseSync, table: string, columns: string, onRow: (r: Record<string, unknown>) => void, top?: number): Walk {
  const walk: Walk = { lost: 0, lostUnknown: false };
  let scan: StatementSync;
  let probe: StatementSync;
  try {
    // `>=`, not `>`: a seek for "> k" descends towards k itself, into k's (maybe broken) page
    scan = d.prepare(`SELECT rowid AS _rowid, ${columns} FROM ${table} WHERE rowid >= ? ORDER BY rowid LIMIT ${BATCH}`);
    probe = d.prepare(`SELECT rowid AS r FROM ${table} WHERE rowid >= ? ORDER BY rowid LIMIT 1`);
  } catch {
    return { lost: top ?? 0, lostUnknown: top === undefined };
  }
  /** The first rowid at or after x, when a seek there reads: undefined when it fails, null when nothing follows. */
  const next = (x: number): number | null | undefined => {
    try {
      const r = probe.get(x) as { r: number } | undefined;
      return r ? Number(r.r) : null;
    } catch {
      return undefined;
    }
  };
  const lostToEnd = (last: number) => {
    if (top === undefined) walk.lostUnknown = true;
    else walk.lost += Math.max(0, top - last);
  };
  /** The last rowid read (0: none yet; our tables' rowids start at 1). */
  let last = 0;
  for (let regions = 0; regions < MAX_BAD_REGIONS; ) {
    let n = 0;
    try {
      for (const r of scan.iterate(last + 1) as Iterable<Record<string, unknown>>) {
        last = Number(r._rowid);
        n++;
        onRow(r);
      }
      if (n < BATCH) return walk;
      continue;
    } catch {
      /* a bad page after `last`: find where reading resumes */
    }
    regions++;
    // doubling steps until a seek reads again, then halving back to the first point that reads
    let fail = last;
    let at = last + 1;
    let hit: number | null | undefined;
    for (let step = 1; (hit = next(at)) === undefined; step *= 2) {
      fail = at;
      at = last + 1 + step;
      if (at > MAX_ROWID) break;
    }
    if (hit === undefined) {
      lostToEnd(last);
      return walk;
    }
    let lo = fail;
    let hi = at;
    let found = hit;
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const m = next(mid);
      if (m === undefined) lo = mid;
      else {
        hi = mid;
        found = m;
      }
    }
    if (found === null) {
      lostToEnd(last);
      return walk;
    }
    walk.lost += found - last - 1;
    last = found - 1;
  }
  walk.lostUnknown = true;
  return walk;
}

/** source_rows has no rowid (WITHOUT ROWID): walked by its key; a bad page skips to the next stream. */
function walkSourceRows(d: DatabaseSync, onRow: (r: Record<string, unknown>) => void): Walk {
  const walk: Walk = { lost: 0, lostUnknown: false };
  let scan: StatementSync;
  let nextStream: StatementSync;
  try {
    scan = d.prepare(
      `SELECT stream, pk, hash FROM source_rows WHERE stream > ? OR (stream = ? AND pk > ?) ORDER BY stream, pk LIMIT ${BATCH}`,
    );
    nextStream = d.prepare('SELECT stream, pk, hash FROM source_rows WHERE stream > ? ORDER BY stream, pk LIMIT 1');
  } catch {
    return { lost: 0, lostUnknown: true };
  }
  let stream = '';
  let pk = '';
  let first = true;
  for (let regions = 0; regions < MAX_BAD_REGIONS; regions++) {
    let n = 0;
    try {
      for (const r of (first ? scan.iterate('', '', '') : scan.iterate(stream, stream, pk)) as Iterable<Record<string, unknown>>) {
        first = false;
        stream = String(r.stream);
        pk = String(r.pk);
        n++;
        onRow(r);
      }
      if (n < BATCH) return walk;
      regions--;
      continue;
    } catch {
      /* skip the rest of this stream */
    }
    walk.lostUnknown = true;
    let r: Record<string, unknown> | undefined;
    try {
      r = nextStream.get(stream) as Record<string, unknown> | undefined;
    } catch {
      return walk;
    }
    if (!r) return walk;
    first = false;
    stream = String(r.stream);
    pk = String(r.pk);
    onRow(r);
  }
  return walk;
}

/**
 * Opens a damaged copy read-only for reading what is left. A file shorter than its header's page
 * count is refused by SQLite as corrupt unless `writable_schema` is on (btree.c, lockBtree), which
 * node:sqlite's defensive mode forbids; the connection is read-only, so neither can change the file.
 */
export function openDamaged(file: string): DatabaseSync | undefined {
  try {
    const d = new DatabaseSync(file, { readOnly: true });
    try {
      d.enableDefensive(false);
      d.exec('PRAGMA writable_schema = ON');
    } catch {
      /* read what can be read without it */
    }
    return d;
  } catch {
    return undefined;
  }
}

function empty(): TableSalvage {
  return { salvaged: 0, lost: 0, lostUnknown: false, unreadable: 0 };
}

function tables(d: DatabaseSync | undefined): Set<string> {
  if (!d) return new Set();
  try {
    return new Set((d.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name));
  } catch {
    return new Set();
  }
}

function opensAs(sealer: RecordSealer | undefined, aad: string, sealed: Uint8Array, parts?: number): boolean {
  if (!sealer) return true;
  try {
    const text = sealer.open(aad, sealed);
    return parts === undefined || text.toString('utf8').split(BUNDLE_SEPARATOR).length === parts;
  } catch {
    return false;
  }
}

/**
 * Copies the readable rows of `source` (opened read-only, or undefined when it cannot be opened at
 * all) into the migrated, empty outbox `target`, in one transaction.
 */
function copyRows(
  source: DatabaseSync | undefined,
  target: DatabaseSync,
  sealer: RecordSealer | undefined,
  now: number,
): Record<SalvagedTable, TableSalvage> {
  const out = Object.fromEntries(SALVAGED_TABLES.map((t) => [t, empty()])) as Record<SalvagedTable, TableSalvage>;
  const have = tables(source);
  if (!source || !have.has('outbox')) {
    for (const t of SALVAGED_TABLES) out[t].lostUnknown = true;
    return out;
  }
  let top: number | undefined;
  try {
    const s = source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
    top = s ? Number(s.seq) : 0;
  } catch {
    top = undefined;
  }
  const hasRecordIds = (t: string) => {
    try {
      return (source.prepare(`SELECT name FROM pragma_table_info('${t}')`).all() as Array<{ name: string }>).some(
        (c) => c.name === 'record_ids',
      );
    } catch {
      return false;
    }
  };
  const outboxIds = hasRecordIds('outbox') ? 'record_ids' : 'NULL AS record_ids';
  const deadIds = hasRecordIds('dead_letters') ? 'record_ids' : 'NULL AS record_ids';
  const st = {
    outbox: target.prepare(
      'INSERT INTO outbox (seq, id, type, partition_key, created_at, attempts, next_attempt_at, last_error, bytes, payload, record_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    dead: target.prepare(
      'INSERT OR IGNORE INTO dead_letters (id, kind, created_at, adapter, format, code, reason, location, record_type, partition_key, bytes, payload, record_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    command: target.prepare('INSERT OR IGNORE INTO pending_commands (id, taken_at, payload) VALUES (?, ?, ?)'),
    cursor: target.prepare('INSERT OR REPLACE INTO source_cursors (key, value, updated_at) VALUES (?, ?, ?)'),
    row: target.prepare('INSERT OR REPLACE INTO source_rows (stream, pk, hash) VALUES (?, ?, ?)'),
    log: target.prepare('INSERT OR IGNORE INTO intake_log (key, hash, seen_at) VALUES (?, ?, ?)'),
  };
  let maxSeq = 0;
  target.exec('BEGIN IMMEDIATE');
  try {
    const ob = out.outbox;
    const w = walkRowids(
      source,
      'outbox',
      `seq, id, type, partition_key, created_at, attempts, next_attempt_at, last_error, bytes, payload, ${outboxIds}`,
      (r) => {
        const seq = Number(r.seq);
        maxSeq = Math.max(maxSeq, seq);
        const recordIds = typeof r.record_ids === 'string' ? r.record_ids : null;
        let parts: number | undefined;
        try {
          parts = recordIds ? (JSON.parse(recordIds) as unknown[]).length : undefined;
        } catch {
          parts = -1;
        }
        const payload = r.payload as Uint8Array;
        if (opensAs(sealer, String(r.id), payload, parts)) {
          st.outbox.run(
            seq,
            r.id as string,
            r.type as string,
            r.partition_key as string,
            r.created_at as number,
            r.attempts as number,
            r.next_attempt_at as number,
            (r.last_error as string | null) ?? null,
            r.bytes as number,
            payload,
            recordIds,
          );
          ob.salvaged++;
          return;
        }
        // kept, so a person sees which record ids to have resent; it cannot be delivered
        const stored = st.dead.run(
          r.id as string,
          'record',
          now,
          'salvage',
          'canonical',
          'GW_RECORD_UNREADABLE',
          'salvaged from a damaged outbox: its sealed bytes no longer open (damaged); have the source resend it',
          null,
          r.type as string,
          r.partition_key as string,
          r.bytes as number,
          payload,
          validRecordIds(recordIds),
        );
        if (Number(stored.changes) > 0) {
          ob.salvaged++;
          ob.unreadable++;
        } else ob.lost++;
      },
      top,
    );
    ob.lost += w.lost;
    ob.lostUnknown = w.lostUnknown;
    // later seqs stay above every seq the damaged outbox handed out
    target.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'").run(Math.max(maxSeq, top ?? 0));
    if (have.has('dead_letters')) {
      const dl = out.dead_letters;
      const wd = walkRowids(
        source,
        'dead_letters',
        `id, kind, created_at, adapter, format, code, reason, location, record_type, partition_key, bytes, payload, ${deadIds}`,
        (r) => {
          const payload = r.payload as Uint8Array;
          const readable = opensAs(sealer, String(r.id), payload);
          if (!readable) dl.unreadable++;
          const code = readable ? (r.code as string) : 'GW_RECORD_UNREADABLE';
          const reason = readable
            ? (r.reason as string)
            : `salvaged from a damaged outbox: its sealed bytes no longer open (first dead-lettered as ${String(r.code)})`;
          const res = st.dead.run(
            r.id as string,
            r.kind as string,
            r.created_at as number,
            r.adapter as string,
            r.format as string,
            code,
            reason,
            (r.location as string | null) ?? null,
            (r.record_type as string | null) ?? null,
            (r.partition_key as string | null) ?? null,
            r.bytes as number,
            payload,
            validRecordIds(r.record_ids),
          );
          if (Number(res.changes) > 0) dl.salvaged++;
          else dl.lost++;
        },
      );
      dl.lost += wd.lost;
      dl.lostUnknown = wd.lostUnknown;
    } else out.dead_letters.lostUnknown = true;
    if (have.has('pending_commands')) {
      const pc = out.pending_commands;
      const wp = walkRowids(source, 'pending_commands', 'id, taken_at, payload', (r) => {
        // a command that cannot be read cannot be carried out: counted, not kept
        if (!opensAs(sealer, `command:${String(r.id)}`, r.payload as Uint8Array)) {
          pc.unreadable++;
          pc.lost++;
          return;
        }
        st.command.run(r.id as string, r.taken_at as number, r.payload as Uint8Array);
        pc.salvaged++;
      });
      pc.lost += wp.lost;
      pc.lostUnknown = wp.lostUnknown;
    }
    // Queued records were lost or cannot be opened: the sources' positions (cursors, row hashes, the
    // HL7 resend log) are not carried over, so polled sources read again from the start and a resent
    // HL7 message is taken as new instead of answered "duplicate" for a record that is gone. The
    // cloud drops the copies by record id; a gap would be silent.
    if (!sourcesRewound(out)) {
      if (have.has('source_cursors')) {
        const sc = out.source_cursors;
        const wc = walkRowids(source, 'source_cursors', 'key, value, updated_at', (r) => {
          st.cursor.run(r.key as string, r.value as string, r.updated_at as number);
          sc.salvaged++;
        });
        sc.lost += wc.lost;
        sc.lostUnknown = wc.lostUnknown;
      }
      if (have.has('source_rows')) {
        const sr = out.source_rows;
        const wr = walkSourceRows(source, (r) => {
          st.row.run(r.stream as string, r.pk as string, r.hash as string);
          sr.salvaged++;
        });
        sr.lostUnknown = wr.lostUnknown;
      }
      if (have.has('intake_log')) {
        const il = out.intake_log;
        const wl = walkRowids(source, 'intake_log', 'key, hash, seen_at', (r) => {
          st.log.run(r.key as string, r.hash as string, r.seen_at as number);
          il.salvaged++;
        });
        il.lost += wl.lost;
        il.lostUnknown = wl.lostUnknown;
      }
    }
    target.exec('COMMIT');
  } catch (e) {
    target.exec('ROLLBACK');
    throw e;
  }
  return out;
}

export interface SalvageOptions {
  file: string;
  reason: DamageReason;
  /** Where damaged files are kept (`<dataDir>/damaged`). */
  damagedDir: string;
  /** Opens every salvaged record; without it rows are copied unchecked. */
  sealKey?: Uint8Array;
  now: number;
  /** Creates, migrates and returns a fresh outbox at the given path. */
  createFresh: (file: string) => DatabaseSync;
  /** Sees the counts before the fresh outbox replaces the damaged one; throwing leaves the damaged file in place. */
  beforeReplace?: (tables: Record<SalvagedTable, TableSalvage>) => void;
}

/** Moves the damaged outbox aside and puts a fresh one holding every readable row in its place. */
export function salvageOutbox(o: SalvageOptions): SalvageReport {
  const { file } = o;
  let movedTo: string | undefined;
  if (existsSync(file)) {
    mkdirSync(o.damagedDir, { recursive: true, mode: 0o700 });
    movedTo = damagedName(o.damagedDir, file, o.now);
    keep(file, movedTo);
    if (existsSync(`${file}-wal`)) keep(`${file}-wal`, `${movedTo}-wal`);
    fsyncDir(o.damagedDir);
  }
  const tmp = `${file}.salvage`;
  for (const s of ['', '-wal', '-shm']) rmSync(tmp + s, { force: true });
  let source: DatabaseSync | undefined;
  let tables: Record<SalvagedTable, TableSalvage>;
  try {
    if (movedTo && o.reason !== 'empty' && o.reason !== 'header') {
      source = openDamaged(movedTo);
    }
    const target = o.createFresh(tmp);
    try {
      tables = copyRows(source, target, o.sealKey ? createRecordSealer(o.sealKey) : undefined, o.now);
    } finally {
      target.close();
    }
    o.beforeReplace?.(tables);
  } catch (e) {
    for (const s of ['', '-wal', '-shm']) rmSync(tmp + s, { force: true });
    if (isGatewayError(e)) throw e;
    // a full disk or an I/O error: the damaged file is still in place and is salvaged at the next start
    throw new GatewayError(
      'GW_OUTBOX_IO',
      `the damaged outbox ${file} could not be salvaged (${(e as NodeJS.ErrnoException).code ?? 'write failed'}); it was left in place: free disk space and start again`,
      { cause: e },
    );
  } finally {
    source?.close();
  }
  // the old WAL and index must not meet the new file; the WAL is kept beside the damaged copy
  for (const s of ['-wal', '-shm']) rmSync(file + s, { force: true });
  renameSync(tmp, file);
  for (const s of ['-wal', '-shm']) rmSync(tmp + s, { force: true });
  fsyncDir(dirname(file));
  return { file, ...(movedTo ? { movedTo } : {}), reason: o.reason, tables };
}

/** Totals over the tables that hold records (queued rows and dead letters). */
export function salvageTotals(r: SalvageReport): { salvaged: number; lost: number; unreadable: number; lostUnknown: boolean } {
  const t = [r.tables.outbox, r.tables.dead_letters];
  return {
    salvaged: t[0].salvaged + t[1].salvaged,
    lost: t[0].lost + t[1].lost,
    unreadable: t[0].unreadable + t[1].unreadable,
    lostUnknown: t[0].lostUnknown || t[1].lostUnknown,
  };
}

/** The alert's and the log's words: what happened, the counts, where the damaged file is, what to do. Ids and counts only. */
export function describeSalvage(r: SalvageReport, alertKey: string): string {
  const per = SALVAGED_TABLES.map((t) => {
    const x = r.tables[t];
    return `${t} ${x.salvaged} salvaged/${x.lost}${x.lostUnknown ? '+' : ''} lost${x.unreadable ? `/${x.unreadable} unreadable` : ''}`;
  }).join(', ');
  const where = r.movedTo ? `the damaged file was kept at ${r.movedTo}` : 'there was no file to keep';
  return `${describeDamage(r.reason)}: a fresh outbox was made from every readable row (${per}; "+": more may have been lost than counted). ${where}. Queued records that could not be opened are dead letters with GW_RECORD_UNREADABLE. ${sourcesRewound(r.tables) ? "Because queued records were lost, the sources' positions were not kept: database and file sources read again from the start and resent HL7 messages are taken as new (the cloud drops copies). " : ''}Input is accepted. Keep the damaged file for support, check the disk, have the sources resend what was lost, then acknowledge: POST /alerts/${alertKey}/clear`;
}

/**
 * A bundle's record-id list as stored, when it is one (a JSON array of strings); otherwise null. The
 * column is not sealed, so on a damaged page it can hold anything; a dead letter keeps only a list
 * that parses, so one damaged row cannot break the dead-letter listing.
 */
function validRecordIds(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  try {
    const ids = JSON.parse(v) as unknown;
    return Array.isArray(ids) && ids.length > 0 && ids.every((x) => typeof x === 'string') ? v : null;
  } catch {
    return null;
  }
}
