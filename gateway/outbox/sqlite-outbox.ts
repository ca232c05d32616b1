/**
 * The durable outbox on SQLite (`node:sqlite`, WAL, synchronous FULL), one file, mode 0600.
 *
 * Group commit: `enqueue` queues its entry and the queue is flushed in one transaction on the next
 * turn of the event loop, so concurrent intakes share one fsync and each caller's promise resolves
 * only after the commit that holds its records. Stores sealed bytes only.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { GatewayError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import { OUTBOX_MIGRATIONS } from './migrations.ts';
import {
  ENTRY_OVERHEAD, entryBytes, selectClaimable, type ClaimedRow, type DeadLetterEntry, type DeadLetterSummary, type EnqueueEntry, type EnqueueOutcome,
  type Outbox, type OutboxStats, type QueueRow,
} from './outbox.ts';

export interface SqliteOutboxOptions {
  file: string;
  maxBytes: number;
  clock: Clock;
  groupCommitMaxRecords?: number;
  /** Intake-log entries older than this are forgotten. */
  dedupeWindowMs?: number;
  onFull?: (bytes: number, maxBytes: number) => void;
}

interface ScanRowLite { seq: number; id: string; partitionKey: string; nextAttemptAt: number; type: string; attempts: number; bytes: number }

interface Pending { entry: EnqueueEntry; resolve: (o: EnqueueOutcome) => void; reject: (e: unknown) => void }


export function createSqliteOutbox(opts: SqliteOutboxOptions): Outbox {
  let db: DatabaseSync | undefined;
  let st: Record<string, StatementSync> = {};
  let bytes = 0;
  let queue: Pending[] = [];
  let flushScheduled = false;
  let lastPrune = 0;
  /** Rows in the outbox table, kept in memory so stats() costs no table scan. */
  let rows = 0;
  let commits = 0;
  const inFlight = new Set<string>();
  /** In-flight rows by id, in claim order (so their partitions block later rows). */
  const inFlightRows = new Map<string, ScanRowLite>();
  let claimCursor = 0;
  const maxGroup = opts.groupCommitMaxRecords ?? 2000;
  const dedupeWindowMs = opts.dedupeWindowMs ?? 30 * 86_400_000;

  let syncMode = '';
  function setSync(d: DatabaseSync, mode: 'FULL' | 'NORMAL'): void {
    if (syncMode === mode) return;
    d.exec(`PRAGMA synchronous = ${mode}`);
    syncMode = mode;
  }

  function need(): DatabaseSync {
    if (!db) throw new GatewayError('GW_OUTBOX_IO', 'outbox is not open');
    return db;
  }

  function migrate(d: DatabaseSync): void {
    const version = Number((d.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    for (let v = version; v < OUTBOX_MIGRATIONS.length; v++) {
      d.exec('BEGIN');
      try {
        d.exec(OUTBOX_MIGRATIONS[v]);
        d.exec(`PRAGMA user_version = ${v + 1}`);
        d.exec('COMMIT');
      } catch (e) {
        d.exec('ROLLBACK');
        throw new GatewayError('GW_OUTBOX_IO', `outbox migration ${v + 1} failed`, { cause: e });
      }
    }
  }

  function flush(): void {
    flushScheduled = false;
    if (queue.length === 0 || !db) return;
    const batch: Pending[] = [];
    let n = 0;
    while (queue.length && (batch.length === 0 || n + queue[0].entry.records.length <= maxGroup)) {
      const p = queue.shift()!;
      n += p.entry.records.length;
      batch.push(p);
    }
    if (queue.length) scheduleFlush();
    const outcomes: EnqueueOutcome[] = [];
    const seenInGroup = new Map<string, string>();
    let added = 0;
    let addedRows = 0;
    const now = opts.clock.now();
    try {
      setSync(db, 'FULL');
      db.exec('BEGIN IMMEDIATE');
      for (const { entry } of batch) {
        const size = entryBytes(entry);
        if (entry.dedupe) {
          const inGroup = seenInGroup.get(entry.dedupe.key);
          if (inGroup !== undefined) { outcomes.push(inGroup === entry.dedupe.hash ? 'duplicate' : 'conflict'); continue; }
          if (bytes + added + size > opts.maxBytes) { outcomes.push('full'); continue; }
          // claim the key first: a new message (the common case) costs no lookup
          if (st.addLog.run(entry.dedupe.key, entry.dedupe.hash, now).changes === 0) {
            const prior = (st.getLog.get(entry.dedupe.key) as { hash: string }).hash;
            outcomes.push(prior === entry.dedupe.hash ? 'duplicate' : 'conflict');
            continue;
          }
          seenInGroup.set(entry.dedupe.key, entry.dedupe.hash);
        } else if (bytes + added + size > opts.maxBytes) { outcomes.push('full'); continue; }
        for (const r of entry.records) {
          const res = st.insert.run(r.id, r.type, r.partitionKey, now, r.sealed.byteLength + ENTRY_OVERHEAD, r.sealed);
          if (res.changes > 0) { added += r.sealed.byteLength + ENTRY_OVERHEAD; addedRows++; }
        }
        outcomes.push('accepted');
      }
      if (now - lastPrune > 60_000) { st.pruneLog.run(now - dedupeWindowMs); lastPrune = now; }
      db.exec('COMMIT');
      commits++;
    } catch (e) {
      try { db.exec('ROLLBACK'); } catch { /* the commit may have failed after the transaction ended */ }
      const err = new GatewayError('GW_OUTBOX_IO', 'outbox commit failed', { cause: e });
      for (const p of batch) p.reject(err);
      return;
    }
    bytes += added;
    rows += addedRows;
    if (outcomes.includes('full')) opts.onFull?.(bytes, opts.maxBytes);
    batch.forEach((p, i) => p.resolve(outcomes[i]));
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  /**
   * Relay-side writes (ack, retry, dead-letter moves) commit with synchronous NORMAL: losing one to
   * a power cut only re-delivers a record (at-least-once, the cloud dedupes). The next FULL commit
   * (an intake) fsyncs the WAL with everything before it, so ordering and intake durability hold.
   */
  function tx(fn: () => void, durable = false): void {
    const d = need();
    setSync(d, durable ? 'FULL' : 'NORMAL');
    d.exec('BEGIN IMMEDIATE');
    try { fn(); d.exec('COMMIT'); } catch (e) { d.exec('ROLLBACK'); throw new GatewayError('GW_OUTBOX_IO', 'outbox write failed', { cause: e }); }
  }

  type ScanRow = QueueRow & { type: string; attempts: number; bytes: number };
  /**
   * Rows in enqueue order without payloads (fetched only for the rows picked). Every row at or
   * below `claimCursor` has been claimed before: it is in flight, or failed once and waits for
   * its retry (attempts > 0, a small indexed set), or is gone. So the scan is the retried rows up
   * to the cursor, then fresh rows after it — not the whole queue.
   */
  function* rowsInOrder(scannedFresh: number[]): Iterable<ScanRow> {
    for (const id of inFlight) yield inFlightRows.get(id)!;
    yield* st.scanRetried.iterate(claimCursor) as Iterable<ScanRow>;
    for (const r of st.scanFresh.iterate(claimCursor) as Iterable<ScanRow>) {
      scannedFresh.push(Number(r.seq));
      yield r;
    }
  }

  return {
    async open() {
      if (db) return;
      mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
      if (!existsSync(opts.file)) closeSync(openSync(opts.file, 'a', 0o600));
      chmodSync(opts.file, 0o600);
      const d = new DatabaseSync(opts.file);
      d.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
      migrate(d);
      for (const suffix of ['-wal', '-shm']) if (existsSync(opts.file + suffix)) chmodSync(opts.file + suffix, 0o600);
      db = d;
      syncMode = 'FULL';
      st = {
        insert: d.prepare('INSERT OR IGNORE INTO outbox (id, type, partition_key, created_at, bytes, payload) VALUES (?, ?, ?, ?, ?, ?)'),
        getLog: d.prepare('SELECT hash FROM intake_log WHERE key = ?'),
        addLog: d.prepare('INSERT OR IGNORE INTO intake_log (key, hash, seen_at) VALUES (?, ?, ?)'),
        pruneLog: d.prepare('DELETE FROM intake_log WHERE seen_at < ?'),
        scanRetried: d.prepare('SELECT seq, id, type, partition_key AS partitionKey, attempts, next_attempt_at AS nextAttemptAt, bytes FROM outbox WHERE attempts > 0 AND seq <= ? ORDER BY seq'),
        scanFresh: d.prepare('SELECT seq, id, type, partition_key AS partitionKey, attempts, next_attempt_at AS nextAttemptAt, bytes FROM outbox WHERE seq > ? ORDER BY seq'),
        delSeq: d.prepare('DELETE FROM outbox WHERE seq = ?'),
        payload: d.prepare('SELECT payload FROM outbox WHERE seq = ?'),
        del: d.prepare('DELETE FROM outbox WHERE id = ? RETURNING bytes'),
        retry: d.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?'),
        getRow: d.prepare('SELECT id, type, partition_key AS partitionKey, bytes, payload FROM outbox WHERE id = ?'),
        putDead: d.prepare('INSERT OR REPLACE INTO dead_letters (id, kind, created_at, adapter, format, code, reason, location, record_type, partition_key, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
        listDead: d.prepare('SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, bytes FROM dead_letters ORDER BY created_at, id LIMIT ? OFFSET ?'),
        getDead: d.prepare('SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, payload FROM dead_letters WHERE id = ?'),
        delDead: d.prepare('DELETE FROM dead_letters WHERE id = ? RETURNING bytes'),
        sumBytes: d.prepare('SELECT (SELECT COALESCE(SUM(bytes), 0) FROM outbox) + (SELECT COALESCE(SUM(bytes), 0) FROM dead_letters) AS b'),
        countRows: d.prepare('SELECT COUNT(*) AS n FROM outbox'),
        oldest: d.prepare('SELECT created_at AS t FROM outbox ORDER BY seq LIMIT 1'),
        waiting: d.prepare('SELECT COUNT(*) AS n FROM outbox WHERE attempts > 0 AND next_attempt_at > ?'),
        countDead: d.prepare('SELECT COUNT(*) AS n FROM dead_letters'),
        nextRetry: d.prepare('SELECT MIN(next_attempt_at) AS t FROM outbox WHERE next_attempt_at > ?'),
      };
      bytes = Number((st.sumBytes.get() as { b: number }).b);
      rows = Number((st.countRows.get() as { n: number }).n);
      inFlight.clear();
      inFlightRows.clear();
      claimCursor = 0;
    },

    async close() {
      if (!db) return;
      flush();
      while (queue.length) flush();
      db.close();
      db = undefined;
      st = {};
    },

    enqueue(entry) {
      if (!db) return Promise.reject(new GatewayError('GW_OUTBOX_IO', 'outbox is not open'));
      return new Promise<EnqueueOutcome>((resolve, reject) => {
        queue.push({ entry, resolve, reject });
        scheduleFlush();
      });
    },

    claim(n) {
      need();
      // in-flight rows come first only to block their partitions: no row of a partition can be
      // claimable below one of its rows in flight (it would have blocked that one), so order holds
      const scannedFresh: number[] = [];
      const picked = selectClaimable(rowsInOrder(scannedFresh), inFlight, opts.clock.now(), n, inFlight.size + Math.max(n * 10, 2000));
      const out: ClaimedRow[] = picked.map((r) => ({ seq: Number(r.seq), id: r.id, type: r.type, partitionKey: r.partitionKey, attempts: Number(r.attempts), sealed: (st.payload.get(r.seq) as { payload: Uint8Array }).payload }));
      for (const r of picked) {
        inFlight.add(r.id);
        inFlightRows.set(r.id, { seq: Number(r.seq), id: r.id, partitionKey: r.partitionKey, nextAttemptAt: 0, type: r.type, attempts: Number(r.attempts), bytes: Number(r.bytes) });
      }
      // advance the cursor over fresh rows claimed without a gap: a row skipped (its partition
      // blocked) keeps the cursor below it, so the next claim sees it again
      const pickedSeqs = new Set(picked.map((r) => Number(r.seq)));
      for (const seq of scannedFresh) { if (!pickedSeqs.has(seq)) break; claimCursor = seq; }
      return out;
    },

    async ack(ids) {
      let freed = 0;
      let gone = 0;
      tx(() => {
        for (const id of ids) {
          const known = inFlightRows.get(id);
          if (known) { if (st.delSeq.run(known.seq).changes > 0) { freed += known.bytes; gone++; } continue; }
          const r = st.del.get(id) as { bytes: number } | undefined;
          if (r) { freed += Number(r.bytes); gone++; }
        }
      });
      rows -= gone;
      for (const id of ids) { inFlight.delete(id); inFlightRows.delete(id); }
      bytes -= freed;
    },

    async retryLater(ids, at, error) {
      tx(() => { for (const id of ids) st.retry.run(at, error.slice(0, 200), id); });
      for (const id of ids) { inFlight.delete(id); inFlightRows.delete(id); }
    },

    async deadLetter(ids, code, reason) {
      const now = opts.clock.now();
      tx(() => {
        for (const id of ids) {
          const row = st.getRow.get(id) as { id: string; type: string; partitionKey: string; bytes: number; payload: Uint8Array } | undefined;
          if (!row) continue;
          st.del.run(id);
          rows--;
          st.putDead.run(id, 'record', now, 'relay', 'canonical', code, reason.slice(0, 500), null, row.type, row.partitionKey, row.bytes, row.payload);
        }
      });
      for (const id of ids) { inFlight.delete(id); inFlightRows.delete(id); }
    },

    async addDeadLetter(e) {
      need();
      const size = e.sealed.byteLength + ENTRY_OVERHEAD;
      if (bytes + size > opts.maxBytes) { opts.onFull?.(bytes, opts.maxBytes); return 'full'; }
      // durable: the source is told AE/AR right after, and rule 1 covers dead letters too
      tx(() => { st.putDead.run(e.id, e.kind, e.createdAt, e.adapter, e.format, e.code, e.reason.slice(0, 500), e.location ?? null, e.recordType ?? null, e.partitionKey ?? null, size, e.sealed); }, true);
      bytes += size;
      return 'stored';
    },

    listDeadLetters(o) {
      need();
      return (st.listDead.all(o?.limit ?? 100, o?.offset ?? 0) as Array<Record<string, unknown>>).map(cleanDead) as DeadLetterSummary[];
    },

    getDeadLetter(id) {
      need();
      const r = st.getDead.get(id) as Record<string, unknown> | undefined;
      if (!r) return undefined;
      const { payload, ...rest } = r;
      return { ...(cleanDead(rest) as Omit<DeadLetterEntry, 'sealed'>), sealed: payload as Uint8Array };
    },

    async removeDeadLetter(id) {
      let freed = -1;
      tx(() => { const r = st.delDead.get(id) as { bytes: number } | undefined; if (r) freed = Number(r.bytes); });
      if (freed < 0) return false;
      bytes -= freed;
      return true;
    },

    nextRetryAt() {
      need();
      const r = st.nextRetry.get(opts.clock.now()) as { t: number | null };
      return r.t === null ? null : Number(r.t);
    },

    stats(): OutboxStats {
      need();
      const oldest = st.oldest.get() as { t: number } | undefined;
      const waiting = Number((st.waiting.get(opts.clock.now()) as { n: number }).n);
      const dead = Number((st.countDead.get() as { n: number }).n);
      return { pending: rows - inFlight.size - waiting, inFlight: inFlight.size, waitingRetry: waiting, deadLetters: dead, bytes, maxBytes: opts.maxBytes, oldestCreatedAt: oldest ? Number(oldest.t) : null, commits };
    },
  };
}

function cleanDead(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (v !== null) out[k] = typeof v === 'bigint' ? Number(v) : v;
  if (out.createdAt !== undefined) out.createdAt = Number(out.createdAt);
  if (out.bytes !== undefined) out.bytes = Number(out.bytes);
  return out;
}
