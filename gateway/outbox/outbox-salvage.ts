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
 * SQLite cannot descend past a lost interior b-tree page (a truncation often takes them: they sit
 * near the end of the file), so every row below one is out of the walk's reach although its leaf
 * page is still in the file. With the seal key, the damaged file's leaf pages are then read
 * directly (leaf-scan.ts) and queued rows and dead letters found there are added, but only rows of
 * the table's shape, whose rowid lies in a range the walk could not read, not copied already (seq
 * and id; a dead letter's id), and whose seal opens with their id: nothing is found twice and
 * nothing unopenable is delivered. A row found so is salvaged and, where the walk had counted its
 * seq lost, no longer lost. The other tables are left to the walk.
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
import { scanTableLeaves, type LeafRow, type LeafValue } from './leaf-scan.ts';

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
  /** What the leaf-page scan of the damaged file read and added (absent: it did not run — no seal key, no file, or an empty one). */
  leafScan?: LeafScanReport;
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

/**
 * A rowid range the walk could not read: rowids lo..hi (hi may be Infinity: to the table's end).
 * Rowids up to `countedHi` are in the walk's lost count; those above were not counted (the end of
 * a table whose top rowid is unknown).
 */
export interface Gap {
  lo: number;
  hi: number;
  countedHi: number;
}

interface Walk {
  lost: number;
  lostUnknown: boolean;
  /** The ranges the walk could not read, in rowid order: the only place the leaf scan may add rows. */
  gaps: Gap[];
}

/**
 * Visits every readable row of a rowid table in rowid order. `top` is the highest rowid known to
 * have existed (the outbox's AUTOINCREMENT counter), to count an unreadable end; without it an
 * unreadable end is `lostUnknown`.
 */
function walkRowids(d: DatabaseSync, table: string, columns: string, onRow: (r: Record<string, unknown>) => void, top?: number): Walk {
  const walk: Walk = { lost: 0, lostUnknown: false, gaps: [] };
  let scan: StatementSync;
  let probe: StatementSync;
  try {
    // `>=`, not `>`: a seek for "> k" descends towards k itself, into k's (maybe broken) page
    scan = d.prepare(`SELECT rowid AS _rowid, ${columns} FROM ${table} WHERE rowid >= ? ORDER BY rowid LIMIT ${BATCH}`);
    probe = d.prepare(`SELECT rowid AS r FROM ${table} WHERE rowid >= ? ORDER BY rowid LIMIT 1`);
  } catch {
    return { lost: top ?? 0, lostUnknown: top === undefined, gaps: [{ lo: 1, hi: Infinity, countedHi: top ?? 0 }] };
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
    walk.gaps.push({ lo: last + 1, hi: Infinity, countedHi: Math.max(last, top ?? last) });
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
    if (found - 1 > last) walk.gaps.push({ lo: last + 1, hi: found - 1, countedHi: found - 1 });
    last = found - 1;
  }
  walk.lostUnknown = true;
  walk.gaps.push({ lo: last + 1, hi: Infinity, countedHi: last });
  return walk;
}

/** source_rows has no rowid (WITHOUT ROWID): walked by its key; a bad page skips to the next stream. */
function walkSourceRows(d: DatabaseSync, onRow: (r: Record<string, unknown>) => void): Walk {
  const walk: Walk = { lost: 0, lostUnknown: false, gaps: [] };
  let scan: StatementSync;
  let nextStream: StatementSync;
  try {
    scan = d.prepare(
      `SELECT stream, pk, hash FROM source_rows WHERE stream > ? OR (stream = ? AND pk > ?) ORDER BY stream, pk LIMIT ${BATCH}`,
    );
    nextStream = d.prepare('SELECT stream, pk, hash FROM source_rows WHERE stream > ? ORDER BY stream, pk LIMIT 1');
  } catch {
    return { lost: 0, lostUnknown: true, gaps: [] };
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
 * all) into the migrated, empty outbox `target`, in one transaction. Then, with a seal key, the
 * damaged file itself (`scanFile`) is read leaf page by leaf page (leaf-scan.ts) for queued rows
 * and dead letters the walk could not reach (below a lost interior page): see `addLeafRows`.
 */
function copyRows(
  source: DatabaseSync | undefined,
  target: DatabaseSync,
  sealer: RecordSealer | undefined,
  now: number,
  scanFile: string | undefined,
): { tables: Record<SalvagedTable, TableSalvage>; leafScan?: LeafScanReport } {
  const out = Object.fromEntries(SALVAGED_TABLES.map((t) => [t, empty()])) as Record<SalvagedTable, TableSalvage>;
  const have = tables(source);
  const readable = source !== undefined && have.has('outbox');
  let top: number | undefined;
  if (readable) {
    try {
      const s = source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
      top = s ? Number(s.seq) : 0;
    } catch {
      top = undefined;
    }
  }
  const hasRecordIds = (t: string) => {
    try {
      return (source!.prepare(`SELECT name FROM pragma_table_info('${t}')`).all() as Array<{ name: string }>).some(
        (c) => c.name === 'record_ids',
      );
    } catch {
      return false;
    }
  };
  const outboxIds = readable && hasRecordIds('outbox') ? 'record_ids' : 'NULL AS record_ids';
  const deadIds = readable && hasRecordIds('dead_letters') ? 'record_ids' : 'NULL AS record_ids';
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
  const sink: RowSink = { st, sealer, maxSeq: 0 };
  const whole = (t: number | undefined): Gap[] => [{ lo: 1, hi: Infinity, countedHi: t ?? 0 }];
  let outboxGaps = whole(top);
  let deadGaps = whole(undefined);
  let leafScan: LeafScanReport | undefined;
  target.exec('BEGIN IMMEDIATE');
  try {
    const ob = out.outbox;
    if (readable) {
      const w = walkRowids(
        source,
        'outbox',
        `seq, id, type, partition_key, created_at, attempts, next_attempt_at, last_error, bytes, payload, ${outboxIds}`,
        (r) => {
          const row = queuedRow(r);
          sink.maxSeq = Math.max(sink.maxSeq, row.seq);
          if (putQueued(sink, row)) {
            ob.salvaged++;
            return;
          }
          // kept, so a person sees which record ids to have resent; it cannot be delivered
          const stored = st.dead.run(
            row.id,
            'record',
            now,
            'salvage',
            'canonical',
            'GW_RECORD_UNREADABLE',
            'salvaged from a damaged outbox: its sealed bytes no longer open (damaged); have the source resend it',
            null,
            row.type,
            row.partition_key,
            row.bytes,
            row.payload,
            validRecordIds(row.record_ids),
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
      outboxGaps = w.gaps;
    } else ob.lostUnknown = true;
    if (readable && have.has('dead_letters')) {
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
      deadGaps = wd.gaps;
    } else out.dead_letters.lostUnknown = true;
    // rows below a lost interior page: read from the leaves themselves. Only with the seal key:
    // without it a row that merely looks like one could not be told from a real one.
    if (scanFile && sealer && (outboxGaps.length > 0 || deadGaps.length > 0)) {
      leafScan = addLeafRows(scanFile, sink, out, outboxGaps, deadGaps, target);
    }
    // later seqs stay above every seq the damaged outbox handed out
    target.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'").run(Math.max(sink.maxSeq, top ?? 0));
    if (readable && have.has('pending_commands')) {
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
    } else if (!readable) out.pending_commands.lostUnknown = true;
    // Queued records were lost or cannot be opened: the sources' positions (cursors, row hashes, the
    // HL7 resend log) are not carried over, so polled sources read again from the start and a resent
    // HL7 message is taken as new instead of answered "duplicate" for a record that is gone. The
    // cloud drops the copies by record id; a gap would be silent.
    if (!readable) {
      for (const t of ['source_cursors', 'source_rows', 'intake_log'] as const) out[t].lostUnknown = true;
    } else if (!sourcesRewound(out)) {
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
  return { tables: out, ...(leafScan ? { leafScan } : {}) };
}

/** A queued row as the outbox stores it (record_ids NULL: one record). */
interface QueuedRow {
  seq: number;
  id: string;
  type: string;
  partition_key: string;
  created_at: number;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  bytes: number;
  payload: Uint8Array;
  record_ids: string | null;
}

function queuedRow(r: Record<string, unknown>): QueuedRow {
  return {
    seq: Number(r.seq),
    id: r.id as string,
    type: r.type as string,
    partition_key: r.partition_key as string,
    created_at: r.created_at as number,
    attempts: r.attempts as number,
    next_attempt_at: r.next_attempt_at as number,
    last_error: (r.last_error as string | null) ?? null,
    bytes: r.bytes as number,
    payload: r.payload as Uint8Array,
    record_ids: typeof r.record_ids === 'string' ? r.record_ids : null,
  };
}

interface RowSink {
  st: { outbox: StatementSync; dead: StatementSync };
  sealer: RecordSealer | undefined;
  maxSeq: number;
}

/** Copies a queued row whose seal opens (a bundle: into as many records as its id list names); false when it does not open. */
function putQueued(sink: RowSink, row: QueuedRow): boolean {
  let parts: number | undefined;
  try {
    parts = row.record_ids ? (JSON.parse(row.record_ids) as unknown[]).length : undefined;
  } catch {
    parts = -1;
  }
  if (!opensAs(sink.sealer, row.id, row.payload, parts)) return false;
  sink.st.outbox.run(
    row.seq,
    row.id,
    row.type,
    row.partition_key,
    row.created_at,
    row.attempts,
    row.next_attempt_at,
    row.last_error,
    row.bytes,
    row.payload,
    row.record_ids,
  );
  return true;
}

/** What the leaf scan read and did, per table it adds rows to. */
export interface LeafScanTable {
  /** Cells whose values have this table's shape. */
  candidates: number;
  /** Copied: in a range the walk could not read, not copied before, and its seal opened with its id. */
  added: number;
  /** In a range the walk read (SQLite's own b-tree is right there: a leftover copy), not copied. */
  outsideGaps: number;
  /** Its seq or id (dead letters: id) was copied already, not copied again. */
  duplicates: number;
  /** Its seal did not open with its id (damaged, or not a row of ours), not copied. */
  unopenable: number;
}

export interface LeafScanReport {
  pageSize: number;
  pageSizeFromHeader: boolean;
  leafPages: number;
  /** Cells that decoded, of any table. */
  rows: number;
  /** Cells that did not decode (skipped). */
  skippedCells: number;
  outbox: LeafScanTable;
  dead_letters: LeafScanTable;
}

const isInt = (v: LeafValue | undefined): v is number => typeof v === 'number' && Number.isInteger(v);
const isText = (v: LeafValue | undefined): v is string => typeof v === 'string';
const textOrNull = (v: LeafValue | undefined): v is string | null => v === null || typeof v === 'string';

/**
 * A leaf cell with the outbox table's shape (migrations.ts: seq INTEGER PRIMARY KEY — stored as
 * NULL, the rowid is the seq — id, type, partition_key TEXT, created_at, attempts, next_attempt_at
 * INTEGER, last_error TEXT?, bytes INTEGER, payload BLOB; record_ids TEXT? since migration 5, so
 * older rows have 10 values; lane INTEGER since migration 8, 12 values — a salvaged row is queued
 * `live`, which keeps its partition's order).
 */
function outboxShape(r: LeafRow): QueuedRow | undefined {
  const v = r.values;
  if (v.length < 10 || v.length > 12 || v[0] !== null || r.rowid < 1) return undefined;
  const [, id, type, pk, createdAt, attempts, nextAt, lastError, bytes, payload, recordIds = null, lane = 1] = v;
  if (!isText(id) || !isText(type) || !isText(pk) || !isInt(createdAt) || !isInt(attempts) || !isInt(nextAt) || !isInt(bytes))
    return undefined;
  if (!isInt(lane)) return undefined;
  if (!textOrNull(lastError) || !textOrNull(recordIds) || !(payload instanceof Uint8Array)) return undefined;
  return {
    seq: r.rowid,
    id,
    type,
    partition_key: pk,
    created_at: createdAt,
    attempts,
    next_attempt_at: nextAt,
    last_error: lastError,
    bytes,
    payload,
    record_ids: recordIds,
  };
}

/**
 * A leaf cell with the dead_letters table's shape: id, kind TEXT, created_at INTEGER, adapter,
 * format, code, reason TEXT, location, record_type, partition_key TEXT?, bytes INTEGER, payload
 * BLOB; record_ids TEXT? since migration 5 (12 or 13 values; the outbox's first value is NULL).
 */
function deadShape(r: LeafRow): LeafValue[] | undefined {
  const v = r.values;
  if (v.length !== 12 && v.length !== 13) return undefined;
  const [id, kind, createdAt, adapter, format, code, reason, location, recordType, pk, bytes, payload, recordIds = null] = v;
  if (!isText(id) || !isText(kind) || !isInt(createdAt) || !isText(adapter) || !isText(format) || !isText(code) || !isText(reason))
    return undefined;
  if (!textOrNull(location) || !textOrNull(recordType) || !textOrNull(pk) || !isInt(bytes) || !(payload instanceof Uint8Array))
    return undefined;
  if (!textOrNull(recordIds)) return undefined;
  return [id, kind, createdAt, adapter, format, code, reason, location, recordType, pk, bytes, payload, validRecordIds(recordIds)];
}

/** The gap holding `rowid`, if any (gaps are in rowid order and do not overlap). */
function gapOf(gaps: Gap[], rowid: number): Gap | undefined {
  let lo = 0;
  let hi = gaps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const g = gaps[mid];
    if (rowid < g.lo) hi = mid - 1;
    else if (rowid > g.hi) lo = mid + 1;
    else return g;
  }
  return undefined;
}

function scanTable(): LeafScanTable {
  return { candidates: 0, added: 0, outsideGaps: 0, duplicates: 0, unopenable: 0 };
}

/**
 * Adds the rows the leaf scan finds that the walk could not: rows of the shape of a queued row or
 * a dead letter, whose rowid lies in a range the walk could not read, that were not copied
 * already (by seq or id; a dead letter by id), and whose seal opens with their id. Two passes:
 * dead letters first, so a queued copy of a record that is a dead letter is not queued again.
 * A row found counts as salvaged and, where it lay in a range the walk counted lost, no longer
 * lost. Rows of the other tables are left to the walk.
 */
function addLeafRows(
  file: string,
  sink: RowSink,
  out: Record<SalvagedTable, TableSalvage>,
  outboxGaps: Gap[],
  deadGaps: Gap[],
  target: DatabaseSync,
): LeafScanReport | undefined {
  const report: LeafScanReport = {
    pageSize: 0,
    pageSizeFromHeader: false,
    leafPages: 0,
    rows: 0,
    skippedCells: 0,
    outbox: scanTable(),
    dead_letters: scanTable(),
  };
  const deadExists = target.prepare('SELECT 1 AS x FROM dead_letters WHERE id = ?');
  const dl = out.dead_letters;
  const ob = out.outbox;
  const pass = (onRow: (r: LeafRow) => void) => {
    try {
      return scanTableLeaves(file, onRow);
    } catch (e) {
      // the damaged file cannot be opened or read at all: nothing more to find there
      if ((e as NodeJS.ErrnoException).code !== undefined && !isGatewayError(e) && (e as { errcode?: unknown }).errcode === undefined)
        return undefined;
      throw e;
    }
  };
  const first = pass((r) => {
    const v = deadShape(r);
    if (!v) return;
    const t = report.dead_letters;
    t.candidates++;
    const gap = gapOf(deadGaps, r.rowid);
    if (!gap) {
      t.outsideGaps++;
      return;
    }
    if (deadExists.get(v[0] as string)) {
      t.duplicates++;
      return;
    }
    if (!opensAs(sink.sealer, v[0] as string, v[11] as Uint8Array)) {
      t.unopenable++;
      return;
    }
    sink.st.dead.run(...(v as Array<string | number | null | Uint8Array>));
    t.added++;
    dl.salvaged++;
    if (r.rowid <= gap.countedHi && dl.lost > 0) dl.lost--;
  });
  if (!first) return undefined;
  // copied already (by the walk, as a queued row or as an unreadable dead letter, or earlier in this
  // pass): looked up in the fresh outbox, by an index made for the pass and dropped after it, so a
  // large outbox's ids are not held in memory
  target.exec('CREATE INDEX salvage_outbox_id ON outbox(id)');
  const queuedSeq = target.prepare('SELECT 1 AS x FROM outbox WHERE seq = ?');
  const queuedId = target.prepare('SELECT 1 AS x FROM outbox WHERE id = ?');
  pass((r) => {
    const row = outboxShape(r);
    if (!row) return;
    const t = report.outbox;
    t.candidates++;
    const gap = gapOf(outboxGaps, row.seq);
    if (!gap) {
      t.outsideGaps++;
      return;
    }
    if (queuedSeq.get(row.seq) || queuedId.get(row.id) || deadExists.get(row.id)) {
      t.duplicates++;
      return;
    }
    if (!putQueued(sink, row)) {
      t.unopenable++;
      return;
    }
    sink.maxSeq = Math.max(sink.maxSeq, row.seq);
    t.added++;
    ob.salvaged++;
    if (row.seq <= gap.countedHi && ob.lost > 0) ob.lost--;
  });
  target.exec('DROP INDEX salvage_outbox_id');
  report.pageSize = first.pageSize;
  report.pageSizeFromHeader = first.pageSizeFromHeader;
  report.leafPages = first.leafPages;
  report.rows = first.rows;
  report.skippedCells = first.skippedCells;
  return report;
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
  beforeReplace?: (tables: Record<SalvagedTable, TableSalvage>, leafScan?: LeafScanReport) => void;
  /** false: the rowid walk only, no leaf-page scan (to measure what the scan adds). Default true. */
  leafScan?: boolean;
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
  let leafScan: LeafScanReport | undefined;
  try {
    if (movedTo && o.reason !== 'empty' && o.reason !== 'header') {
      source = openDamaged(movedTo);
    }
    const target = o.createFresh(tmp);
    try {
      // a file without its header is still scanned: its leaves may be whole (the page size is then taken as 4096)
      const scanFile = movedTo && o.reason !== 'empty' && o.leafScan !== false ? movedTo : undefined;
      ({ tables, leafScan } = copyRows(source, target, o.sealKey ? createRecordSealer(o.sealKey) : undefined, o.now, scanFile));
    } finally {
      target.close();
    }
    o.beforeReplace?.(tables, leafScan);
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
  return { file, ...(movedTo ? { movedTo } : {}), reason: o.reason, tables, ...(leafScan ? { leafScan } : {}) };
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
