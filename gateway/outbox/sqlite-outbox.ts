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

interface Pending { entry: EnqueueEntry; resolve: (o: EnqueueOutcome) => void; reject: (e: unknown) => void }


export function createSqliteOutbox(opts: SqliteOutboxOptions): Outbox {
  let db: DatabaseSync | undefined;
  let st: Record<string, StatementSync> = {};
  let bytes = 0;
  let queue: Pending[] = [];
  let flushScheduled = false;
  let lastPrune = 0;
  let commits = 0;
  const inFlight = new Set<string>();
  const maxGroup = opts.groupCommitMaxRecords ?? 2000;
  const dedupeWindowMs = opts.dedupeWindowMs ?? 30 * 86_400_000;

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
    const now = opts.clock.now();
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const { entry } of batch) {
        if (entry.dedupe) {
          const prior = seenInGroup.get(entry.dedupe.key) ?? (st.getLog.get(entry.dedupe.key) as { hash: string } | undefined)?.hash;
          if (prior !== undefined) { outcomes.push(prior === entry.dedupe.hash ? 'duplicate' : 'conflict'); continue; }
        }
        const size = entryBytes(entry);
        if (bytes + added + size > opts.maxBytes) { outcomes.push('full'); continue; }
        for (const r of entry.records) {
          const res = st.insert.run(r.id, r.type, r.partitionKey, now, r.sealed.byteLength + ENTRY_OVERHEAD, r.sealed);
          if (res.changes > 0) added += r.sealed.byteLength + ENTRY_OVERHEAD;
        }
        if (entry.dedupe) { st.putLog.run(entry.dedupe.key, entry.dedupe.hash, now); seenInGroup.set(entry.dedupe.key, entry.dedupe.hash); }
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
    if (outcomes.includes('full')) opts.onFull?.(bytes, opts.maxBytes);
    batch.forEach((p, i) => p.resolve(outcomes[i]));
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  function tx(fn: () => void): void {
    const d = need();
    d.exec('BEGIN IMMEDIATE');
    try { fn(); d.exec('COMMIT'); } catch (e) { d.exec('ROLLBACK'); throw new GatewayError('GW_OUTBOX_IO', 'outbox write failed', { cause: e }); }
  }

  function rowsInOrder(): Iterable<QueueRow & { type: string; attempts: number; payload: Uint8Array }> {
    return st.scan.iterate() as Iterable<QueueRow & { type: string; attempts: number; payload: Uint8Array }>;
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
      st = {
        insert: d.prepare('INSERT OR IGNORE INTO outbox (id, type, partition_key, created_at, bytes, payload) VALUES (?, ?, ?, ?, ?, ?)'),
        getLog: d.prepare('SELECT hash FROM intake_log WHERE key = ?'),
        putLog: d.prepare('INSERT OR REPLACE INTO intake_log (key, hash, seen_at) VALUES (?, ?, ?)'),
        pruneLog: d.prepare('DELETE FROM intake_log WHERE seen_at < ?'),
        scan: d.prepare('SELECT seq, id, type, partition_key AS partitionKey, attempts, next_attempt_at AS nextAttemptAt, payload FROM outbox ORDER BY seq'),
        del: d.prepare('DELETE FROM outbox WHERE id = ? RETURNING bytes'),
        retry: d.prepare('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?'),
        getRow: d.prepare('SELECT id, type, partition_key AS partitionKey, bytes, payload FROM outbox WHERE id = ?'),
        putDead: d.prepare('INSERT OR REPLACE INTO dead_letters (id, kind, created_at, adapter, format, code, reason, location, record_type, partition_key, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
        listDead: d.prepare('SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, bytes FROM dead_letters ORDER BY created_at, id LIMIT ? OFFSET ?'),
        getDead: d.prepare('SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, payload FROM dead_letters WHERE id = ?'),
        delDead: d.prepare('DELETE FROM dead_letters WHERE id = ? RETURNING bytes'),
        sumBytes: d.prepare('SELECT (SELECT COALESCE(SUM(bytes), 0) FROM outbox) + (SELECT COALESCE(SUM(bytes), 0) FROM dead_letters) AS b'),
        counts: d.prepare('SELECT COUNT(*) AS n, MIN(created_at) AS oldest, SUM(next_attempt_at > ?) AS waiting FROM outbox'),
        countDead: d.prepare('SELECT COUNT(*) AS n FROM dead_letters'),
        nextRetry: d.prepare('SELECT MIN(next_attempt_at) AS t FROM outbox WHERE next_attempt_at > ?'),
      };
      bytes = Number((st.sumBytes.get() as { b: number }).b);
      inFlight.clear();
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
      const picked = selectClaimable(rowsInOrder(), inFlight, opts.clock.now(), n);
      const out: ClaimedRow[] = picked.map((r) => ({ seq: Number(r.seq), id: r.id, type: r.type, partitionKey: r.partitionKey, attempts: Number(r.attempts), sealed: r.payload }));
      for (const r of out) inFlight.add(r.id);
      return out;
    },

    async ack(ids) {
      let freed = 0;
      tx(() => { for (const id of ids) { const r = st.del.get(id) as { bytes: number } | undefined; if (r) freed += Number(r.bytes); } });
      for (const id of ids) inFlight.delete(id);
      bytes -= freed;
    },

    async retryLater(ids, at, error) {
      tx(() => { for (const id of ids) st.retry.run(at, error.slice(0, 200), id); });
      for (const id of ids) inFlight.delete(id);
    },

    async deadLetter(ids, code, reason) {
      const now = opts.clock.now();
      tx(() => {
        for (const id of ids) {
          const row = st.getRow.get(id) as { id: string; type: string; partitionKey: string; bytes: number; payload: Uint8Array } | undefined;
          if (!row) continue;
          st.del.run(id);
          st.putDead.run(id, 'record', now, 'relay', 'canonical', code, reason.slice(0, 500), null, row.type, row.partitionKey, row.bytes, row.payload);
        }
      });
      for (const id of ids) inFlight.delete(id);
    },

    async addDeadLetter(e) {
      need();
      const size = e.sealed.byteLength + ENTRY_OVERHEAD;
      if (bytes + size > opts.maxBytes) { opts.onFull?.(bytes, opts.maxBytes); return 'full'; }
      tx(() => { st.putDead.run(e.id, e.kind, e.createdAt, e.adapter, e.format, e.code, e.reason.slice(0, 500), e.location ?? null, e.recordType ?? null, e.partitionKey ?? null, size, e.sealed); });
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
      const c = st.counts.get(opts.clock.now()) as { n: number; oldest: number | null; waiting: number | null };
      const dead = Number((st.countDead.get() as { n: number }).n);
      const total = Number(c.n);
      const waiting = Number(c.waiting ?? 0);
      return { pending: total - inFlight.size - waiting, inFlight: inFlight.size, waitingRetry: waiting, deadLetters: dead, bytes, maxBytes: opts.maxBytes, oldestCreatedAt: c.oldest === null ? null : Number(c.oldest), commits };
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
