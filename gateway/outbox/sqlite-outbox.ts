/**
 * The durable outbox on SQLite (`node:sqlite`, WAL), one file, mode 0600.
 *
 * Writes go to a writer (sqlite-writer.ts) on its own connection; reads stay here on a second one
 * (WAL lets readers see every committed write without waiting for the writer). The writer runs in
 * a thread (sqlite-writer-worker.ts, reached through writer-channel.ts), so an fsync does not block
 * the event loop that reads sockets and the next group gathers while one commits; in `auto` mode a
 * lone intake commits on this thread instead, sparing its ACK two hand-offs. Each intake's promise
 * resolves only after the commit that holds its records (synchronous FULL). Records handed over as
 * JSON are sealed by the writer before the transaction: the file holds sealed bytes only.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { statSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import { openCheckedOutbox } from './outbox-file.ts';
import { createStoredKeys, hashPlainKeys } from './stored-keys.ts';
import type { SalvageReport } from './outbox-salvage.ts';
import {
  LANES,
  selectClaimable,
  type ClaimedRow,
  type DeadLetterEntry,
  type DeadLetterSummary,
  type EnqueueOutcome,
  type Outbox,
  type PageOutcome,
  type LaneStats,
  type OutboxStats,
  type QueueRow,
} from './outbox.ts';
import type { WriterCounts } from './sqlite-writer.ts';
import { autoVacuumMode, convertToIncremental, pageCounts, type StorageEvent } from './outbox-vacuum.ts';
import type { OutboxStorage } from './outbox.ts';
import { startWriter, type WriterChannel } from './writer-channel.ts';
import type { WriterReply, WriterRequest } from './writer-protocol.ts';

export interface SqliteOutboxOptions {
  file: string;
  maxBytes: number;
  clock: Clock;
  groupCommitMaxRecords?: number;
  /** Part of maxBytes dead letters may take (default: a quarter). */
  maxDeadLetterBytes?: number;
  /** Intake-log entries older than this are forgotten. */
  dedupeWindowMs?: number;
  /** Most intake-log (resend log) entries kept, the oldest forgotten first (default {@link DEFAULT_DEDUPE_MAX_ENTRIES}). */
  dedupeMaxEntries?: number;
  /**
   * What the outbox did with its file's space: the one-time conversion to incremental vacuum at
   * open (or why it was not done), and a vacuum step that failed (intake goes on; logged by the caller with its code).
   */
  onStorage?: (e: StorageEvent) => void;
  /** Tests only: the free disk space the conversion at open decides on (default: statfs of the data folder). */
  freeDiskBytesForConversion?: number;
  onFull?: (bytes: number, maxBytes: number) => void;
  /**
   * Where writes run: `thread` (a writer thread; an fsync never blocks this event loop), `inline`
   * (on this thread, grouped per turn of the event loop; no hand-offs between threads), or `auto`
   * (the default): an intake that arrives alone while the writer thread is idle commits inline —
   * a lone sender's ACK then waits for no hand-off — and everything else goes to the thread, where
   * concurrent intakes share a commit while this thread goes on reading sockets.
   */
  writer?: 'thread' | 'inline' | 'auto';
  /**
   * Seals records handed over as plain JSON (in the writer, before they are written); without it
   * only sealed records are taken. With it the file is also bound to the key at open (another key
   * beside sealed rows is GW_KEY_MISSING) and salvaged records are opened before they are kept.
   */
  sealKey?: Uint8Array;
  /** The key's path, named in GW_KEY_MISSING. */
  keyFile?: string;
  /** A seal key existed before this start: a missing or empty outbox file is damage, not a first run. */
  expectData?: boolean;
  /** With `expectData`: a missing file is still a new outbox (one switched on after the first run); only an empty one is damage. */
  absentIsFresh?: boolean;
  /** Where a damaged outbox is moved aside (default: `damaged/` beside the file). */
  damagedDir?: string;
  /** The file was damaged at open: it was moved aside and a fresh outbox made from its readable rows. */
  onSalvaged?: (report: SalvageReport) => void;
  /**
   * The writer thread died (writes fail with GW_OUTBOX_IO until a new one runs; nothing committed
   * is lost) and is restarted in `restartInMs`; and once it runs again.
   */
  onWriterGone?: (e: { error: GatewayError; restartInMs: number; restarts: number }) => void;
  onWriterRestarted?: (e: { restarts: number }) => void;
  /** Tests only: sees each writer thread once started (to make it fail). */
  onWriterThread?: (w: Worker) => void;
}

/**
 * Resend-log entries kept by default: an entry is a keyed hash as its primary key, stored twice
 * (row and key index), plus the content hash and the time; what that costs in the file, and so
 * what this default bounds the log at, is in BENCHMARKS.md ("Measured design choices").
 */
export const DEFAULT_DEDUPE_MAX_ENTRIES = 250_000;

/** A dead writer thread is restarted after this, doubling per death in a row (one that ran a minute resets it), up to the maximum. */
const WRITER_RESTART_FIRST_MS = 250;
const WRITER_RESTART_MAX_MS = 30_000;
const WRITER_STABLE_MS = 60_000;

/** A queued row as claims see it; fresh rows carry their payload (read in the same scan), others fetch it when picked. */
interface ScanRow extends QueueRow {
  type: string;
  attempts: number;
  bytes: number;
  payload?: Uint8Array;
  recordIds?: string | null;
  /** The lane's rank (0 urgent, 1 live, 2 backfill). */
  lane?: number;
}

type WriterRequestBody = WriterRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export function createSqliteOutbox(opts: SqliteOutboxOptions): Outbox {
  /** Cursor keys hashed and values sealed as the writer stores them (stored-keys.ts). */
  const keys = createStoredKeys(opts.sealKey);
  let db: DatabaseSync | undefined;
  let st: Record<string, StatementSync> = {};
  let channel: WriterChannel | undefined;
  let counts: WriterCounts = { bytes: 0, rows: 0, commits: 0, urgent: 0, backfill: 0 };
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const inFlight = new Set<string>();
  /** In-flight rows by id: they block their partitions and let ack delete by primary key. */
  const inFlightRows = new Map<string, ScanRow>();
  /** Rows in flight per partition: those partitions are blocked for the next claims. */
  const inFlightPartitions = new Map<string, number>();
  /**
   * Per lane (by rank): every row of the lane at or below its cursor has been claimed before, or
   * waits in the lane's `deferred` (seen while its partition was blocked), so claims never rescan
   * the queue behind a blocked patient. A row that changes lane (a promotion, outbox.ts "Lanes")
   * can land below its new lane's cursor: claims count promotions in their own snapshot
   * (`lane_promotions`) and read the queue from its start again when there were any.
   */
  const claimCursor = [0, 0, 0];
  const deferred = [new Map<number, ScanRow>(), new Map<number, ScanRow>(), new Map<number, ScanRow>()];
  const deferredSize = () => deferred[0].size + deferred[1].size + deferred[2].size;
  const MAX_DEFERRED = 50_000;
  /** `lane_promotions` as the last claim read it (-1: not yet read). */
  let promotionsSeen = -1;

  function need(): DatabaseSync {
    if (!db) throw new GatewayError('GW_OUTBOX_IO', 'outbox is not open');
    return db;
  }

  function call<T>(body: WriterRequestBody): Promise<T> {
    const ch = channel;
    if (!ch) return Promise.reject(new GatewayError('GW_OUTBOX_IO', 'outbox is not open'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ch.send({ ...body, id } as WriterRequest);
    });
  }

  function failAll(err: GatewayError): void {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  }

  /**
   * Rows in claim order, lane by lane (urgent, live, backfill), each lane in enqueue order
   * (payloads only for fresh rows, which are nearly always the ones picked): merged in seq order,
   * the lane's rows deferred by earlier claims (their partition was blocked) and its rows that
   * failed once (a small indexed set), then its fresh rows after its cursor — never the whole
   * queue. Partitions with rows in flight are blocked through `inFlightPartitions` (no row of a
   * partition is claimable below one of its rows in flight); the lane invariant makes this walk
   * meet each partition's rows in seq order.
   */
  function* rowsInOrder(scannedFresh: ScanRow[][], seen: { rows: number }): Iterable<ScanRow> {
    for (let lane = 0; lane < LANES.length; lane++) {
      const retried = st.scanRetried.iterate(lane, claimCursor[lane]) as Iterator<ScanRow>;
      try {
        let r = retried.next();
        for (const d of deferred[lane].values()) {
          while (!r.done && Number(r.value.seq) < d.seq) {
            seen.rows++;
            yield r.value;
            r = retried.next();
          }
          seen.rows++;
          // a row deferred and retried both (read fresh after a rescan) goes once, as the file has it
          if (!r.done && Number(r.value.seq) === d.seq) {
            yield r.value;
            r = retried.next();
          } else yield d;
        }
        while (!r.done) {
          seen.rows++;
          yield r.value;
          r = retried.next();
        }
        for (const f of st.scanFresh.iterate(lane, claimCursor[lane]) as Iterable<ScanRow>) {
          scannedFresh[lane].push(f);
          seen.rows++;
          yield f;
        }
      } finally {
        // a claim that stops early must not leave the statement open (it would hold a read snapshot)
        retried.return?.();
      }
    }
  }

  /**
   * Acks, retries and dead-letters of claimed rows. When one fails (the writer thread died) the rows
   * are still queued: they leave the in-flight set and the next claim scans from the start again,
   * so they are delivered again (the cloud drops the copies by record id), in order.
   */
  async function settleRows<T = void>(ids: readonly string[], body: WriterRequestBody): Promise<T> {
    try {
      return await call<T>(body);
    } catch (e) {
      rescan();
      throw e;
    } finally {
      release(ids);
    }
  }

  /** Forgets where claims stood: the next one reads the queue from its first row. */
  function rescan(): void {
    for (let k = 0; k < claimCursor.length; k++) {
      claimCursor[k] = 0;
      deferred[k].clear();
    }
  }

  function release(ids: readonly string[]): void {
    for (const id of ids) {
      const row = inFlightRows.get(id);
      inFlight.delete(id);
      inFlightRows.delete(id);
      if (!row) continue;
      const left = (inFlightPartitions.get(row.partitionKey) ?? 1) - 1;
      if (left > 0) inFlightPartitions.set(row.partitionKey, left);
      else inFlightPartitions.delete(row.partitionKey);
    }
  }

  const vacuumTotals: OutboxStorage['vacuum'] = { steps: 0, pagesReturned: 0, lastStepMs: null, failures: 0, lastError: null };

  let writerRestarts = 0;
  /** Counts closes: a writer that finishes starting after one is not kept. */
  let openings = 0;
  /** Deaths in a row (a writer that ran a minute resets it), the pending restart, when the last writer started. */
  let deathsInRow = 0;
  /** On the clock's timers, so a test with a manual clock drives the restart delay. */
  let restartTimer: TimerHandle | undefined;
  let writerStartedAt = 0;
  /**
   * Set while close() runs. The writer thread exits once it has answered `close`, and under load
   * Node can take that exit first and hand over the answer in the same turn, before close() has
   * seen it: that exit is the end close() asked for, not a death to report and restart.
   */
  let closing = false;

  /** The writer thread is gone: fail what waits on it, and start a new one after a back-off (not while closing). */
  function writerGone(e: GatewayError, start: () => Promise<boolean>, failedToStart = false): void {
    const gone = channel;
    channel = undefined;
    failAll(e);
    void gone?.dispose();
    if (!db || closing) return;
    deathsInRow = !failedToStart && opts.clock.now() - writerStartedAt > WRITER_STABLE_MS ? 1 : deathsInRow + 1;
    const delay = Math.min(WRITER_RESTART_MAX_MS, WRITER_RESTART_FIRST_MS * 2 ** (deathsInRow - 1));
    opts.onWriterGone?.({ error: e, restartInMs: delay, restarts: writerRestarts });
    restartTimer = opts.clock.setTimeout(
      () => {
        restartTimer = undefined;
        start().then(
          (kept) => {
            if (!kept) return;
            writerRestarts++;
            // rows claimed before are settled by calls that failed; read the queue again from the start
            rescan();
            opts.onWriterRestarted?.({ restarts: writerRestarts });
          },
          (err: unknown) =>
            writerGone(
              isGatewayError(err) ? err : new GatewayError('GW_OUTBOX_IO', 'outbox writer failed to start', { cause: err }),
              start,
              true,
            ),
        );
      },
      delay,
      { unref: true },
    );
  }

  return {
    async open() {
      if (db) return;
      const d = openCheckedOutbox({
        file: opts.file,
        sealKey: opts.sealKey,
        keyFile: opts.keyFile,
        expectData: opts.expectData,
        absentIsFresh: opts.absentIsFresh,
        damagedDir: opts.damagedDir,
        now: () => opts.clock.now(),
        onSalvaged: opts.onSalvaged,
      });
      // keys kept in plaintext before they were hashed are rewritten once, before any writer opens the file
      try {
        hashPlainKeys(d, keys, opts.sealKey !== undefined);
        // a restart starts every retry wait afresh: no row waits on a time kept from before it. A
        // retry time is not sealed, so a damaged one (a byte flipped in the file: a wait of
        // centuries) would otherwise hold its row, and every later row of its patient, for ever
        d.prepare('UPDATE outbox SET next_attempt_at = 0 WHERE next_attempt_at > ?').run(opts.clock.now());
      } catch (e) {
        d.close();
        throw new GatewayError('GW_OUTBOX_IO', 'outbox open failed (key migration or retry reset)', { cause: e });
      }
      // an outbox from before incremental vacuum: converted once while it is small, before the writer opens it
      if (autoVacuumMode(d) !== 'incremental') {
        const outcome = convertToIncremental(d, opts.file, opts.freeDiskBytesForConversion);
        opts.onStorage?.({ event: outcome.state === 'incremental' ? 'converted' : 'notConverted', outcome });
      }
      const onReply = (m: WriterReply) => {
        counts = m.counts;
        if (m.vacuum) {
          vacuumTotals.steps++;
          vacuumTotals.pagesReturned += Math.max(0, m.vacuum.pages);
          vacuumTotals.lastStepMs = Math.round(m.vacuum.ms * 10) / 10;
          if (m.vacuum.error !== undefined) {
            vacuumTotals.failures++;
            vacuumTotals.lastError = m.vacuum.error;
            opts.onStorage?.({ event: 'vacuumFailed', step: m.vacuum });
          }
        }
        for (const item of m.items) {
          const p = pending.get(item.id);
          if (!p) continue;
          pending.delete(item.id);
          if (item.ok) p.resolve(item.value);
          // lack of space is the disk guard's to report (GW_DISK_LOW); SQLite rolled the write back whole
          else if (item.diskFull) p.reject(new GatewayError('GW_DISK_LOW', 'outbox write failed: the data volume is full'));
          else p.reject(new GatewayError('GW_OUTBOX_IO', `outbox write failed: ${item.error ?? 'unknown'}`));
        }
      };
      const writerOptions = {
        file: opts.file,
        maxBytes: opts.maxBytes,
        maxDeadLetterBytes: opts.maxDeadLetterBytes ?? Math.floor(opts.maxBytes / 4),
        dedupeWindowMs: opts.dedupeWindowMs ?? 30 * 86_400_000,
        dedupeMaxEntries: opts.dedupeMaxEntries ?? DEFAULT_DEDUPE_MAX_ENTRIES,
        groupCommitMaxRecords: opts.groupCommitMaxRecords ?? 2000,
        sealKey: opts.sealKey,
      };
      /** Starts a writer and makes it the outbox's; a writer that was closed meanwhile is let go. */
      const start = async (): Promise<boolean> => {
        const opening = openings;
        let gen: WriterChannel | undefined;
        const started = await startWriter(
          opts.writer ?? 'auto',
          writerOptions,
          onReply,
          (e) => {
            if (channel === gen) writerGone(e, start);
          },
          opts.onWriterThread,
        );
        gen = started.channel;
        // closed while this writer started: let it go
        if (opening !== openings) {
          await gen.dispose();
          return false;
        }
        counts = started.counts;
        channel = gen;
        writerStartedAt = opts.clock.now();
        return true;
      };
      try {
        await start();
      } catch (e) {
        d.close();
        throw isGatewayError(e) ? e : new GatewayError('GW_OUTBOX_IO', 'outbox writer failed to start', { cause: e });
      }
      db = d;
      writerRestarts = 0;
      deathsInRow = 0;
      st = {
        // INDEXED BY: the retried rows are few, and must not be looked for along a lane's whole backlog
        scanRetried: d.prepare(
          'SELECT seq, id, type, partition_key AS partitionKey, attempts, next_attempt_at AS nextAttemptAt, bytes, record_ids AS recordIds, COALESCE(json_array_length(record_ids), 1) AS records, lane FROM outbox INDEXED BY outbox_retried WHERE attempts > 0 AND lane = ? AND seq <= ? ORDER BY seq',
        ),
        scanFresh: d.prepare(
          'SELECT seq, id, type, partition_key AS partitionKey, attempts, next_attempt_at AS nextAttemptAt, bytes, payload, record_ids AS recordIds, COALESCE(json_array_length(record_ids), 1) AS records, lane FROM outbox INDEXED BY outbox_lane WHERE lane = ? AND seq > ? ORDER BY seq',
        ),
        promotions: d.prepare('SELECT n FROM lane_promotions WHERE id = 1'),
        oldestInLane: d.prepare('SELECT created_at AS t FROM outbox INDEXED BY outbox_lane WHERE lane = ? ORDER BY seq LIMIT 1'),
        payload: d.prepare('SELECT payload FROM outbox WHERE seq = ?'),
        listDead: d.prepare(
          'SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, record_ids AS recordIds, bytes FROM dead_letters ORDER BY created_at, id LIMIT ? OFFSET ?',
        ),
        getDead: d.prepare(
          'SELECT id, kind, created_at AS createdAt, adapter, format, code, reason, location, record_type AS recordType, partition_key AS partitionKey, record_ids AS recordIds, payload FROM dead_letters WHERE id = ?',
        ),
        oldest: d.prepare('SELECT created_at AS t FROM outbox ORDER BY seq LIMIT 1'),
        waiting: d.prepare('SELECT COUNT(*) AS n FROM outbox WHERE attempts > 0 AND next_attempt_at > ?'),
        countDead: d.prepare('SELECT COUNT(*) AS n FROM dead_letters'),
        pendingCommands: d.prepare('SELECT id, payload FROM pending_commands ORDER BY taken_at, id'),
        getCursor: d.prepare('SELECT value FROM source_cursors WHERE key = ?'),
        listRows: d.prepare("SELECT pk FROM source_rows WHERE stream = ? AND pk > ? AND hash <> '-' ORDER BY pk LIMIT ?"),
        countLog: d.prepare('SELECT COUNT(*) AS n FROM intake_log'),
        nextRetry: d.prepare('SELECT MIN(next_attempt_at) AS t FROM outbox WHERE attempts > 0 AND next_attempt_at > ?'),
      };
      inFlight.clear();
      inFlightRows.clear();
      inFlightPartitions.clear();
      rescan();
      promotionsSeen = -1;
    },

    async close() {
      const ch = channel;
      if (!db) return;
      openings++;
      opts.clock.clearTimeout(restartTimer);
      restartTimer = undefined;
      if (ch) {
        closing = true;
        try {
          await call({ op: 'close' }).catch(() => undefined);
          channel = undefined;
          await ch.dispose();
        } finally {
          closing = false;
        }
      }
      db.close();
      db = undefined;
      st = {};
    },

    async enqueue(entry) {
      const outcome = await call<EnqueueOutcome>({ op: 'enqueue', entry, now: opts.clock.now() });
      if (outcome === 'full') opts.onFull?.(counts.bytes, opts.maxBytes);
      return outcome;
    },

    async enqueuePage(page) {
      const r = await call<PageOutcome>({ op: 'page', page, now: opts.clock.now() });
      if (r.outcome === 'full') opts.onFull?.(counts.bytes, opts.maxBytes);
      return r;
    },

    pendingCommands() {
      need();
      return (st.pendingCommands.all() as Array<{ id: string; payload: Uint8Array }>).map((r) => ({ id: r.id, sealed: r.payload }));
    },

    async finishCommand(id) {
      await call({ op: 'finishCommand', commandId: id });
    },

    getCursor(key) {
      need();
      const stored = keys.key(key);
      const value = (st.getCursor.get(stored) as { value: string } | undefined)?.value;
      if (value === undefined) return undefined;
      try {
        return keys.openValue(stored, value);
      } catch (e) {
        throw new GatewayError(
          'GW_STORE_CORRUPT',
          'a source position kept in the outbox could not be opened (damaged on the disk, or sealed under another key): restore the seal key from its backup',
          { cause: e },
        );
      }
    },

    listSourceRows(stream, afterPk, limit) {
      need();
      return (st.listRows.all(stream, afterPk ?? '', limit) as Array<{ pk: string }>).map((r) => r.pk);
    },

    claim(n) {
      const d = need();
      const scannedFresh: ScanRow[][] = [[], [], []];
      const seen = { rows: 0 };
      // one read transaction for the scans and the payloads: one snapshot, one pair of lock calls
      d.exec('BEGIN');
      let picked: ScanRow[];
      const budget = { full: false };
      let out: ClaimedRow[];
      let maxScan = 0;
      try {
        // rows promoted to a more urgent lane since the last claim may lie below that lane's
        // cursor: read in this snapshot, so the scans below see the same lanes it counted
        const promotions = Number((st.promotions.get() as { n: number | bigint }).n);
        if (promotions !== promotionsSeen) {
          rescan();
          promotionsSeen = promotions;
        }
        maxScan = deferredSize() + Math.max(n * 10, 2000);
        picked = selectClaimable(rowsInOrder(scannedFresh, seen), inFlight, opts.clock.now(), n, maxScan, inFlightPartitions, budget);
        out = picked.map((r) => ({
          seq: Number(r.seq),
          id: r.id,
          type: r.type,
          partitionKey: r.partitionKey,
          attempts: Number(r.attempts),
          sealed: r.payload ?? (st.payload.get(r.seq) as { payload: Uint8Array }).payload,
          ...(r.recordIds ? { recordIds: JSON.parse(r.recordIds) as string[] } : {}),
        }));
      } finally {
        d.exec('COMMIT');
      }
      for (const r of picked) {
        inFlight.add(r.id);
        inFlightRows.set(r.id, {
          seq: Number(r.seq),
          id: r.id,
          partitionKey: r.partitionKey,
          nextAttemptAt: 0,
          type: r.type,
          attempts: Number(r.attempts),
          bytes: Number(r.bytes),
        });
        inFlightPartitions.set(r.partitionKey, (inFlightPartitions.get(r.partitionKey) ?? 0) + 1);
        for (const lane of deferred) lane.delete(Number(r.seq));
      }
      // advance each lane's cursor over the fresh rows seen: claimed ones are in flight, skipped ones
      // (partition blocked) wait in `deferred`; past its cap the cursor stops at the first skipped row
      const pickedSeqs = new Set(picked.map((r) => Number(r.seq)));
      for (let lane = 0; lane < scannedFresh.length; lane++) {
        for (const f of scannedFresh[lane]) {
          const seq = Number(f.seq);
          // a row in flight was claimed before (read again after a rescan): its settling decides what comes of it
          if (!pickedSeqs.has(seq) && inFlightRows.get(f.id)?.seq !== seq) {
            if (deferredSize() >= MAX_DEFERRED) break;
            deferred[lane].set(seq, {
              seq,
              id: f.id,
              partitionKey: f.partitionKey,
              nextAttemptAt: Number(f.nextAttemptAt),
              type: f.type,
              attempts: Number(f.attempts),
              bytes: Number(f.bytes),
              recordIds: f.recordIds,
              records: Number(f.records ?? 1),
              lane,
            });
          }
          claimCursor[lane] = seq;
        }
      }
      // rows wait behind a patient in flight, or the scan stopped at its limit with rows unread
      return { rows: out, full: budget.full, heldBack: deferredSize() > 0 || (!budget.full && seen.rows > maxScan) };
    },

    async ack(ids) {
      await settleRows(ids, { op: 'ack', rows: ids.map((id) => ({ id, seq: inFlightRows.get(id)?.seq })) });
    },

    async retryLater(ids, at, error) {
      await settleRows(ids, { op: 'retryLater', rows: ids.map((id) => ({ id, seq: inFlightRows.get(id)?.seq })), at, error });
    },

    async deadLetter(ids, code, reason) {
      await settleRows(ids, {
        op: 'deadLetter',
        rows: ids.map((id) => ({ id, seq: inFlightRows.get(id)?.seq })),
        code,
        reason,
        now: opts.clock.now(),
      });
    },

    async splitRefused(id, refused, code, reason) {
      const r = await settleRows<'split' | 'moved' | 'gone'>([id], {
        op: 'splitRefused',
        row: { id, seq: inFlightRows.get(id)?.seq },
        entries: [...refused],
        code,
        reason,
        now: opts.clock.now(),
      });
      if (r === 'moved') opts.onFull?.(counts.bytes, opts.maxBytes);
      return r;
    },

    async addDeadLetter(e: DeadLetterEntry) {
      const r = await call<'stored' | 'full'>({ op: 'addDeadLetter', entry: e });
      if (r === 'full') opts.onFull?.(counts.bytes, opts.maxBytes);
      return r;
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

    removeDeadLetter(id) {
      return call<boolean>({ op: 'removeDeadLetter', deadLetterId: id });
    },

    nextRetryAt() {
      need();
      const r = st.nextRetry.get(opts.clock.now()) as { t: number | null };
      return r.t === null ? null : Number(r.t);
    },

    stats(): OutboxStats {
      need();
      const oldest = st.oldest.get() as { t: number } | undefined;
      // a row given back for a retry is in the file with its retry time before this process drops it
      // from the in-flight set (the writer commits first): counted once, as in flight, so the three
      // counts never add up to more rows than there are (they did: 8 for 4 rows, seen in CI)
      const scheduled = Number((st.waiting.get(opts.clock.now()) as { n: number }).n);
      const waiting = Math.min(scheduled, Math.max(0, counts.rows - inFlight.size));
      const dead = Number((st.countDead.get() as { n: number }).n);
      const now = opts.clock.now();
      const lane = (rank: number, rows: number): LaneStats => {
        const first = st.oldestInLane.get(rank) as { t: number } | undefined;
        const t = first ? Number(first.t) : null;
        return {
          rows: Math.max(0, rows),
          oldestCreatedAt: t,
          oldestAgeSeconds: t === null ? null : Math.max(0, Math.round((now - t) / 1000)),
        };
      };
      return {
        pending: Math.max(0, counts.rows - inFlight.size - waiting),
        inFlight: inFlight.size,
        waitingRetry: waiting,
        deadLetters: dead,
        bytes: counts.bytes,
        maxBytes: opts.maxBytes,
        oldestCreatedAt: oldest ? Number(oldest.t) : null,
        commits: counts.commits,
        inlineCommits: channel?.inlineCommits() ?? 0,
        writer: channel ? 'running' : 'restarting',
        writerRestarts,
        lanes: {
          urgent: lane(0, counts.urgent),
          live: lane(1, counts.rows - counts.urgent - counts.backfill),
          backfill: lane(2, counts.backfill),
        },
      };
    },

    storage(): OutboxStorage {
      const d = need();
      const p = pageCounts(d);
      const size = (f: string) => {
        try {
          return statSync(f).size;
        } catch {
          return 0;
        }
      };
      return {
        fileBytes: size(opts.file),
        walBytes: size(opts.file + '-wal'),
        liveBytes: (p.pageCount - p.freePages) * p.pageSize,
        freePages: p.freePages,
        pageSize: p.pageSize,
        autoVacuum: autoVacuumMode(d),
        resendLogEntries: Number((st.countLog.get() as { n: number | bigint }).n),
        resendLogMaxEntries: opts.dedupeMaxEntries ?? DEFAULT_DEDUPE_MAX_ENTRIES,
        vacuum: { ...vacuumTotals },
      };
    },

    reusableBytes() {
      // pages freed by deleted rows: SQLite reuses them before it grows the file, never returns them
      const d = need();
      const pages = Number((d.prepare('PRAGMA freelist_count').get() as { freelist_count: number | bigint }).freelist_count);
      const size = Number((d.prepare('PRAGMA page_size').get() as { page_size: number | bigint }).page_size);
      return pages * size;
    },
  };
}

function cleanDead(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (v !== null) out[k] = typeof v === 'bigint' ? Number(v) : v;
  if (out.createdAt !== undefined) out.createdAt = Number(out.createdAt);
  if (out.bytes !== undefined) out.bytes = Number(out.bytes);
  // the column is not sealed: a list damaged on the disk is left out rather than failing the listing
  if (typeof out.recordIds === 'string') {
    try {
      out.recordIds = JSON.parse(out.recordIds);
    } catch {
      delete out.recordIds;
    }
  }
  return out;
}
