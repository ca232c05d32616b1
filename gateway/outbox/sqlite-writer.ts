/**
 * Every write to the outbox database, on one connection: group-committed intakes
 * (synchronous FULL), relay-side bookkeeping (synchronous NORMAL), dead letters. It runs in the
 * outbox writer thread (sqlite-writer-worker.ts) so that fsyncs never block the event loop that
 * reads sockets, and it is the one authority on the byte and row counts.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { createRecordSealer } from '../crypto/record-sealer.ts';
import { createStoredKeys } from './stored-keys.ts';
import { GatewayError } from '../errors.ts';
import { admitDeadLetters, admitEntry, admitPage, type AdmissionTotals, type Growth, type ResendLog } from './admission.ts';
import {
  ENTRY_OVERHEAD,
  entryBytes,
  laneRank,
  sealRecords,
  type DeadLetterEntry,
  type EnqueueEntry,
  type EnqueueOutcome,
  type PageEntry,
  type PageOutcome,
  type SealedRecord,
} from './outbox.ts';
import {
  autoVacuumMode,
  pageCounts,
  vacuumDue,
  VACUUM_KEEP_BYTES as VACUUM_KEEP_PAGES_BYTES,
  VACUUM_STEP_PAGES,
  WAL_SIZE_LIMIT_BYTES,
  type VacuumStep,
} from './outbox-vacuum.ts';

export interface WriterCounts {
  bytes: number;
  rows: number;
  commits: number;
  /** Of `rows`, those in the urgent and the backfill lane (the rest are live). */
  urgent: number;
  backfill: number;
}

/**
 * Slots of the counts array: bytes (outbox + dead letters), rows, dead-letter bytes, commits,
 * whether they were read from the file yet, and the rows of the urgent and the backfill lanes.
 */
const BYTES = 0,
  ROWS = 1,
  DEAD = 2,
  COMMITS = 3,
  READY = 4,
  URGENT = 5,
  BACKFILL = 6;
/** The count slot of each lane rank (live has none: it is the rows less the other two). */
const LANE_SLOT: readonly (number | undefined)[] = [URGENT, undefined, BACKFILL];

/**
 * The counts two writers of one outbox share (this thread's and the writer thread's), in shared
 * memory. Each writer adds its own changes after its commit; SQLite's write lock orders the commits.
 */
export function createSharedCounts(): BigInt64Array {
  return new BigInt64Array(new SharedArrayBuffer(8 * 7));
}

export interface SqliteWriter {
  /** One transaction for the whole group; outcomes in order. Throws when the commit fails. */
  enqueue(entries: EnqueueEntry[], now: number): EnqueueOutcome[];
  /** A polled source's page: changed rows, their dead letters and the cursor, in one FULL transaction. */
  enqueuePage(page: PageEntry, now: number): PageOutcome;
  finishCommand(id: string): void;
  ack(rows: Array<{ id: string; seq?: number; bytes?: number }>): void;
  retryLater(rows: Array<{ id: string; seq?: number }>, at: number, error: string): void;
  deadLetter(rows: Array<{ id: string; seq?: number }>, code: string, reason: string, now: number): void;
  /** `Outbox.splitRefused` in one transaction (`'gone'` when the row is no longer queued). */
  splitRefused(
    row: { id: string; seq?: number },
    entries: DeadLetterEntry[],
    code: string,
    reason: string,
    now: number,
  ): 'split' | 'moved' | 'gone';
  /** One transaction for a group of dead letters (a burst of bad input shares the fsync). */
  addDeadLetters(entries: DeadLetterEntry[]): Array<'stored' | 'full'>;
  removeDeadLetter(id: string): boolean;
  /**
   * Returns up to VACUUM_STEP_PAGES free pages to the file system when a vacuum is due
   * (outbox-vacuum.ts), in its own short transaction; undefined when none is. Never throws: a
   * failed step is reported in its result and intake goes on.
   */
  vacuumStep(): VacuumStep | undefined;
  counts(): WriterCounts;
  close(): void;
}

class PageFull extends Error {}

/** A queued row as `getRow` reads it. */
interface QueuedRow {
  type: string;
  partitionKey: string;
  bytes: number;
  payload: Uint8Array;
  recordIds: string | null;
  lane: number;
}

/** A bundle's record ids as the `record_ids` column keeps them (NULL for a row of one record). */
const idsColumn = (ids: readonly string[] | undefined): string | null => (ids ? JSON.stringify(ids) : null);

export interface SqliteWriterOptions {
  maxBytes: number;
  maxDeadLetterBytes: number;
  dedupeWindowMs: number;
  /** Most resend-log entries kept (the oldest go first); unbounded when absent. */
  dedupeMaxEntries?: number;
  /** After a vacuum step failed, the next is tried no sooner than this (default 10 s; tests set 0). */
  vacuumRetryMs?: number;
  /** The record seal key: plain records are sealed here, before the transaction that writes them. */
  sealKey?: Uint8Array;
}

export function createSqliteWriter(file: string, o: SqliteWriterOptions, shared?: BigInt64Array): SqliteWriter {
  const sealer = o.sealKey ? createRecordSealer(o.sealKey) : undefined;
  const seal = (aad: string, plain: string | Uint8Array): Uint8Array => {
    if (!sealer) throw new GatewayError('GW_OUTBOX_IO', 'outbox has no seal key for plain records');
    return sealer.seal(aad, plain);
  };
  const keys = createStoredKeys(o.sealKey);
  const db = new DatabaseSync(file);
  // secure_delete: a deleted row's bytes are zeroed, so freed space keeps no old value (rule 4)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;');
  db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  let syncMode: 'FULL' | 'NORMAL' = 'FULL';
  const setSync = (mode: 'FULL' | 'NORMAL') => {
    if (syncMode !== mode) {
      db.exec(`PRAGMA synchronous = ${mode}`);
      syncMode = mode;
    }
  };
  const st: Record<string, StatementSync> = {
    insert: db.prepare(
      'INSERT INTO outbox (id, type, partition_key, created_at, bytes, payload, record_ids, lane) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    // the lane invariant (outbox.ts, "Lanes"): earlier rows of the partition in a less urgent lane
    // join the new row's lane; by (partition_key, lane), so a seek, whatever the backlog
    promote: db.prepare('UPDATE outbox SET lane = ? WHERE partition_key = ? AND lane = ?'),
    notePromotion: db.prepare('UPDATE lane_promotions SET n = n + 1 WHERE id = 1'),
    addLog: db.prepare('INSERT OR IGNORE INTO intake_log (key, hash, seen_at) VALUES (?, ?, ?)'),
    getLog: db.prepare('SELECT hash FROM intake_log WHERE key = ?'),
    // rowids grow with time: the oldest entries are the lowest rowids, no index on seen_at needed
    pruneLog: db.prepare('DELETE FROM intake_log WHERE rowid IN (SELECT rowid FROM intake_log ORDER BY rowid LIMIT 5000) AND seen_at < ?'),
    // the count cap: the newest entries have the highest rowids, and entries only ever go from the
    // lowest end, so keeping the top `cap` rowids keeps the newest `cap` entries (two b-tree seeks)
    capLog: db.prepare('DELETE FROM intake_log WHERE rowid <= (SELECT MAX(rowid) FROM intake_log) - ?'),
    delSeq: db.prepare('DELETE FROM outbox WHERE seq = ? RETURNING bytes'),
    // a whole batch in one statement: one call into SQLite instead of one per row
    delSeqs: db.prepare('DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?)) RETURNING bytes, lane'),
    retry: db.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE seq = ?'),
    getRow: db.prepare(
      'SELECT type, partition_key AS partitionKey, bytes, payload, record_ids AS recordIds, lane FROM outbox WHERE seq = ?',
    ),
    findSeq: db.prepare('SELECT seq FROM outbox WHERE id = ? ORDER BY seq LIMIT 1'),
    putDead: db.prepare(
      'INSERT OR REPLACE INTO dead_letters (id, kind, created_at, adapter, format, code, reason, location, record_type, partition_key, bytes, payload, record_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    delDead: db.prepare('DELETE FROM dead_letters WHERE id = ? RETURNING bytes'),
    getDeadBytes: db.prepare('SELECT bytes FROM dead_letters WHERE id = ?'),
    getRowHash: db.prepare('SELECT hash FROM source_rows WHERE stream = ? AND pk = ?'),
    putRowHash: db.prepare('INSERT OR REPLACE INTO source_rows (stream, pk, hash) VALUES (?, ?, ?)'),
    putCommand: db.prepare('INSERT OR IGNORE INTO pending_commands (id, taken_at, payload) VALUES (?, ?, ?)'),
    delCommand: db.prepare('DELETE FROM pending_commands WHERE id = ?'),
    putCursor: db.prepare('INSERT OR REPLACE INTO source_cursors (key, value, updated_at) VALUES (?, ?, ?)'),
  };
  const c = shared ?? new BigInt64Array(7);
  if (Atomics.load(c, READY) === 0n) {
    Atomics.store(
      c,
      BYTES,
      BigInt(
        (
          db
            .prepare('SELECT (SELECT COALESCE(SUM(bytes), 0) FROM outbox) + (SELECT COALESCE(SUM(bytes), 0) FROM dead_letters) AS b')
            .get() as { b: number | bigint }
        ).b,
      ),
    );
    Atomics.store(c, ROWS, BigInt((db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number | bigint }).n));
    Atomics.store(c, DEAD, BigInt((db.prepare('SELECT COALESCE(SUM(bytes), 0) AS b FROM dead_letters').get() as { b: number | bigint }).b));
    for (const r of db.prepare('SELECT lane, COUNT(*) AS n FROM outbox WHERE lane <> 1 GROUP BY lane').all() as Array<{
      lane: number | bigint;
      n: number | bigint;
    }>) {
      const slot = LANE_SLOT[Number(r.lane)];
      if (slot !== undefined) Atomics.store(c, slot, BigInt(r.n));
    }
    Atomics.store(c, READY, 1n);
  }
  const get = (slot: number) => Number(Atomics.load(c, slot));
  /** Applied only after a commit: a rolled-back transaction changes no count. */
  const add = (slot: number, delta: number) => {
    if (delta !== 0) Atomics.add(c, slot, BigInt(delta));
  };
  /** Lane counts changed by this transaction, applied only after its commit (as `add` is). */
  let laneDelta = [0, 0, 0];
  const countLane = (rank: number, delta: number) => {
    laneDelta[rank] += delta;
  };
  const applyLanes = () => {
    for (let k = 0; k < 3; k++) {
      const slot = LANE_SLOT[k];
      if (slot !== undefined) add(slot, laneDelta[k]);
    }
    laneDelta = [0, 0, 0];
  };

  /**
   * Queues one record (inside a transaction) in its lane, first taking the earlier rows of its
   * partition in less urgent lanes into that lane (the lane invariant, outbox.ts): a seek per
   * less urgent lane, on the index page the insert writes next anyway. (Not skipped on the lane
   * counts: in `auto` mode the other writer adds its counts only after its commit, so they can lag
   * a commit that queued rows of this very partition.) Returns whether a row was inserted.
   */
  function insertRow(r: SealedRecord, now: number, rank: number): boolean {
    let promoted = 0;
    for (let from = rank + 1; from <= 2; from++) {
      const moved = Number(st.promote.run(rank, r.partitionKey, from).changes);
      if (moved > 0) {
        countLane(from, -moved);
        countLane(rank, moved);
        promoted += moved;
      }
    }
    if (promoted > 0) st.notePromotion.run();
    const size = r.sealed.byteLength + ENTRY_OVERHEAD;
    if (st.insert.run(r.id, r.type, r.partitionKey, now, size, r.sealed, idsColumn(r.recordIds), rank).changes === 0) return false;
    countLane(rank, 1);
    return true;
  }

  let lastPrune = 0;
  /** A vacuum under way goes on to the kept free space (outbox-vacuum.ts). */
  let vacuuming = false;
  /** Free pages last seen: checked again once rows were deleted, or while vacuuming. */
  let deleted = true;
  /** Only a file with incremental vacuum can give pages back (converted, if at all, before the writer opens it). */
  const canVacuum = autoVacuumMode(db) === 'incremental';
  /** A failed step is tried again after a pause, not after every commit (a full disk would fail each one). */
  let vacuumRetryAt = -Infinity;
  /** The totals the admission rules (admission.ts) decide on, plus what this transaction added so far. */
  const totals = (added: Growth = { bytes: 0, deadBytes: 0 }): AdmissionTotals => ({
    bytes: get(BYTES) + added.bytes,
    deadBytes: get(DEAD) + added.deadBytes,
    maxBytes: o.maxBytes,
    maxDeadLetterBytes: o.maxDeadLetterBytes,
  });
  /**
   * The resend log inside the open transaction. Claiming inserts first: a new message (the common
   * case) costs no lookup; an entry earlier in the same group is seen, as its insert is.
   */
  const resendLog = (now: number): ResendLog => ({
    lookup: (key) => (st.getLog.get(keys.key(key)) as { hash: string } | undefined)?.hash,
    claim: (key, hash) => {
      const stored = keys.key(key);
      return st.addLog.run(stored, hash, now).changes === 0 ? (st.getLog.get(stored) as { hash: string }).hash : undefined;
    },
  });

  /** Bytes a dead letter adds (less the one of the same id it replaces). */
  function deadLetterGrowth(e: DeadLetterEntry): number {
    const replaced = Number((st.getDeadBytes.get(e.id) as { bytes: number } | undefined)?.bytes ?? 0);
    return e.sealed.byteLength + ENTRY_OVERHEAD - replaced;
  }

  /** Writes a dead letter (inside a transaction); returns its growth. */
  function putDeadLetter(e: DeadLetterEntry, growth: number): number {
    st.putDead.run(
      e.id,
      e.kind,
      e.createdAt,
      e.adapter,
      e.format,
      e.code,
      e.reason.slice(0, 500),
      e.location ?? null,
      e.recordType ?? null,
      e.partitionKey ?? null,
      e.sealed.byteLength + ENTRY_OVERHEAD,
      e.sealed,
      idsColumn(e.recordIds),
    );
    return growth;
  }

  /** A queued row moves to the dead letters whole (inside a transaction); returns the bytes of a dead letter of the same id it replaced. */
  function moveRow(id: string, row: QueuedRow, code: string, reason: string, now: number): number {
    const replaced = Number((st.getDeadBytes.get(id) as { bytes: number } | undefined)?.bytes ?? 0);
    st.putDead.run(
      id,
      'record',
      now,
      'relay',
      'canonical',
      code,
      reason.slice(0, 500),
      null,
      row.type,
      row.partitionKey,
      row.bytes,
      row.payload,
      row.recordIds,
    );
    return replaced;
  }

  /** Rows are addressed by seq; an id alone (no claim behind it) costs a scan, and is rare. */
  function seqOf(r: { id: string; seq?: number }): number | undefined {
    return r.seq ?? (st.findSeq.get(r.id) as { seq: number } | undefined)?.seq;
  }

  /** One transaction; when `fn` throws `soft`, it is rolled back and `true` returned instead. */
  function tx<T>(mode: 'FULL' | 'NORMAL', fn: () => T): T;
  function tx<T>(mode: 'FULL' | 'NORMAL', fn: () => T, soft: new () => Error): T | true;
  function tx<T>(mode: 'FULL' | 'NORMAL', fn: () => T, soft?: new () => Error): T | true {
    setSync(mode);
    db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      db.exec('COMMIT');
      add(COMMITS, 1);
      return r;
    } catch (e) {
      laneDelta = [0, 0, 0];
      try {
        db.exec('ROLLBACK');
      } catch {
        /* the transaction may already be over */
      }
      if (soft && e instanceof soft) return true;
      throw e;
    }
  }

  return {
    enqueue(given, now) {
      // sealed before the transaction: the write lock is held for writing only
      const entries = given.map((e) => ({ ...e, records: sealRecords(e.records, seal) }));
      const outcomes: EnqueueOutcome[] = [];
      let added = 0;
      let addedRows = 0;
      let logged = 0;
      const log = resendLog(now);
      const resends: ResendLog = {
        lookup: log.lookup,
        claim: (key, hash) => {
          const prior = log.claim(key, hash);
          if (prior === undefined) logged++;
          return prior;
        },
      };
      tx('FULL', () => {
        for (const entry of entries) {
          const outcome = admitEntry({ bytes: entryBytes(entry), dedupe: entry.dedupe }, totals({ bytes: added, deadBytes: 0 }), resends);
          if (outcome !== 'accepted') {
            outcomes.push(outcome);
            continue;
          }
          if (entry.dedupe && entry.command) st.putCommand.run(entry.command.id, now, entry.command.sealed);
          for (const r of entry.records) {
            if (insertRow(r, now, laneRank(r.lane))) {
              added += r.sealed.byteLength + ENTRY_OVERHEAD;
              addedRows++;
            }
          }
          outcomes.push('accepted');
        }
        if (logged > 0 && o.dedupeMaxEntries !== undefined && st.capLog.run(o.dedupeMaxEntries).changes > 0) deleted = true;
        if (now - lastPrune > 60_000) {
          if (st.pruneLog.run(now - o.dedupeWindowMs).changes > 0) deleted = true;
          lastPrune = now;
        }
      });
      add(BYTES, added);
      add(ROWS, addedRows);
      applyLanes();
      return outcomes;
    },

    enqueuePage(given, now) {
      const page = { ...given, rows: given.rows.map((r) => ({ ...r, records: sealRecords(r.records, seal) })) };
      let written = 0;
      let unchanged = 0;
      let deadLettered = 0;
      let added = 0;
      let addedRows = 0;
      let addedDead = 0;
      const full = tx(
        'FULL',
        () => {
          for (const row of page.rows) {
            const prior =
              page.trackRows === false ? undefined : (st.getRowHash.get(row.stream ?? page.stream, row.pk) as { hash: string } | undefined);
            if (prior?.hash === row.hash) {
              unchanged++;
              continue;
            }
            for (const r of row.records) {
              // a row never seen before (no hash kept for it) takes its records' lane for new rows
              insertRow(r, now, laneRank(prior === undefined && r.laneWhenNew !== undefined ? r.laneWhenNew : r.lane));
              added += r.sealed.byteLength + ENTRY_OVERHEAD;
              addedRows++;
            }
            if (row.deadLetter) {
              const e = row.deadLetter;
              addedDead += putDeadLetter(e, deadLetterGrowth(e));
              deadLettered++;
            } else written++;
            if (page.trackRows !== false) st.putRowHash.run(row.stream ?? page.stream, row.pk, row.hash);
          }
          // all or nothing: a page that does not fit is rolled back and the cursor stays
          if (admitPage({ bytes: added + addedDead, deadBytes: addedDead }, totals()) === 'full') throw new PageFull();
          if (page.cursor) {
            const stored = keys.key(page.cursor.key);
            st.putCursor.run(stored, keys.sealValue(stored, page.cursor.value), now);
          }
          return false;
        },
        PageFull,
      );
      if (full) return { outcome: 'full', written: 0, unchanged: 0, deadLettered: 0 };
      add(BYTES, added + addedDead);
      add(DEAD, addedDead);
      add(ROWS, addedRows);
      applyLanes();
      return { outcome: 'accepted', written, unchanged, deadLettered };
    },

    finishCommand(id) {
      tx('FULL', () => {
        st.delCommand.run(id);
      });
    },

    // Relay-side writes commit at synchronous NORMAL: losing one to a power cut only re-delivers a
    // record (at-least-once; the cloud dedupes). The next FULL commit fsyncs the WAL with it.
    ack(list) {
      let freed = 0;
      let gone = 0;
      tx('NORMAL', () => {
        // one row per ack, by seq (as the memory outbox does): a second copy of the id stays queued
        const seqs: number[] = [];
        for (const r of list) {
          const seq = seqOf(r);
          if (seq !== undefined) seqs.push(seq);
        }
        for (const row of st.delSeqs.all(JSON.stringify(seqs)) as Array<{ bytes: number; lane: number }>) {
          freed += Number(row.bytes);
          gone++;
          countLane(Number(row.lane), -1);
        }
      });
      add(BYTES, -freed);
      add(ROWS, -gone);
      applyLanes();
      if (gone > 0) deleted = true;
    },

    retryLater(list, at, error) {
      tx('NORMAL', () => {
        for (const r of list) {
          const seq = seqOf(r);
          if (seq !== undefined) st.retry.run(at, error.slice(0, 200), seq);
        }
      });
    },

    deadLetter(list, code, reason, now) {
      let moved = 0;
      let movedBytes = 0;
      let replacedBytes = 0;
      tx('NORMAL', () => {
        for (const r of list) {
          const seq = seqOf(r);
          const row = seq === undefined ? undefined : (st.getRow.get(seq) as QueuedRow | undefined);
          if (!row) continue;
          st.delSeq.run(seq!);
          moved++;
          movedBytes += Number(row.bytes);
          countLane(Number(row.lane), -1);
          replacedBytes += moveRow(r.id, row, code, reason, now);
        }
      });
      applyLanes();
      // the rows' bytes were counted already; a dead letter of the same id they replace is not
      if (moved > 0) deleted = true;
      add(ROWS, -moved);
      add(BYTES, -replacedBytes);
      add(DEAD, movedBytes - replacedBytes);
    },

    splitRefused(row, entries, code, reason, now) {
      let outcome: 'split' | 'moved' | 'gone' = 'gone';
      let freed = 0;
      let growth = 0;
      let replaced = 0;
      tx('NORMAL', () => {
        const seq = seqOf(row);
        const r = seq === undefined ? undefined : (st.getRow.get(seq) as QueuedRow | undefined);
        if (!r) return;
        st.delSeq.run(seq!);
        freed = Number(r.bytes);
        countLane(Number(r.lane), -1);
        for (const e of entries) growth += deadLetterGrowth(e);
        if (!admitDeadLetters(growth, totals(), freed)) {
          replaced = moveRow(row.id, r, code, reason, now);
          outcome = 'moved';
        } else {
          for (const e of entries) putDeadLetter(e, 0);
          outcome = 'split';
        }
      });
      if (outcome === 'gone') return outcome;
      add(ROWS, -1);
      applyLanes();
      if (outcome === 'moved') {
        add(BYTES, -replaced);
        add(DEAD, freed - replaced);
      } else {
        add(BYTES, growth - freed);
        add(DEAD, growth);
      }
      return outcome;
    },

    addDeadLetters(list) {
      // durable (FULL): the source is told AE/AR right after, and rule 1 covers dead letters too
      const results: Array<'stored' | 'full'> = [];
      let delta = 0;
      tx('FULL', () => {
        for (const e of list) {
          const growth = deadLetterGrowth(e);
          if (!admitDeadLetters(growth, totals({ bytes: delta, deadBytes: delta }))) {
            results.push('full');
            continue;
          }
          delta += putDeadLetter(e, growth);
          results.push('stored');
        }
      });
      add(BYTES, delta);
      add(DEAD, delta);
      return results;
    },

    removeDeadLetter(id) {
      const gone = tx('NORMAL', () => st.delDead.get(id) as { bytes: number } | undefined);
      if (!gone) return false;
      deleted = true;
      add(BYTES, -Number(gone.bytes));
      add(DEAD, -Number(gone.bytes));
      return true;
    },

    vacuumStep() {
      const t = performance.now();
      if (!canVacuum || (!deleted && !vacuuming) || t < vacuumRetryAt) return undefined;
      deleted = false;
      try {
        const before = pageCounts(db);
        if (!vacuumDue(before, vacuuming)) {
          if (vacuuming) {
            vacuuming = false;
            // the file is cut to its new size when the checkpoint has copied the last step back
            db.exec('PRAGMA wal_checkpoint(PASSIVE)');
          }
          return undefined;
        }
        vacuuming = true;
        setSync('NORMAL');
        // freed pages only: no row changes, so losing a step to a power cut loses nothing but the step
        const keep = Math.ceil(VACUUM_KEEP_PAGES_BYTES / before.pageSize);
        const n = Math.min(VACUUM_STEP_PAGES, Math.max(1, before.freePages - keep));
        db.exec(`PRAGMA incremental_vacuum(${n})`);
        add(COMMITS, 1);
        const after = pageCounts(db);
        // a step that returned nothing would be repeated for ever
        const more = after.pageCount < before.pageCount && vacuumDue(after, true);
        if (!more) {
          vacuuming = false;
          db.exec('PRAGMA wal_checkpoint(PASSIVE)');
        }
        return {
          pages: before.pageCount - after.pageCount,
          ms: performance.now() - t,
          freePages: after.freePages,
          pageCount: after.pageCount,
          more,
        };
      } catch (e) {
        vacuuming = false;
        // checked again after the pause: the free pages are still there
        deleted = true;
        vacuumRetryAt = performance.now() + (o.vacuumRetryMs ?? 10_000);
        const x = e as { errcode?: number; code?: string };
        return {
          pages: 0,
          ms: performance.now() - t,
          freePages: -1,
          pageCount: -1,
          more: false,
          error: String(x.errcode ?? x.code ?? 'unknown'),
        };
      }
    },

    counts: () => ({ bytes: get(BYTES), rows: get(ROWS), commits: get(COMMITS), urgent: get(URGENT), backfill: get(BACKFILL) }),
    close: () => db.close(),
  };
}
