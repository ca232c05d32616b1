/**
 * The in-memory outbox for unit tests: the same contract as the SQLite one (same claim rule, same
 * dedupe and cap semantics), nothing durable.
 */
import type { Clock } from '../clock.ts';
import { GatewayError } from '../errors.ts';
import { randomBytes } from 'node:crypto';
import { createRecordSealer, type RecordSealer } from '../crypto/record-sealer.ts';
import { admitDeadLetters, admitEntry, admitPage, type AdmissionTotals } from './admission.ts';
import {
  DELETED_ROW_HASH,
  ENTRY_OVERHEAD,
  entryBytes,
  laneRank,
  sealRecords,
  selectClaimable,
  type DeadLetterEntry,
  type Outbox,
  type QueueRow,
  type SealedRecord,
} from './outbox.ts';

interface Row extends QueueRow {
  type: string;
  attempts: number;
  createdAt: number;
  bytes: number;
  sealed: Uint8Array;
  recordIds?: string[];
  /** The lane's rank (0 urgent, 1 live, 2 backfill). */
  lane: number;
}

export interface MemoryOutboxOptions {
  maxBytes: number;
  clock: Clock;
  /** Part of `maxBytes` dead letters may take (default a quarter, as the SQLite outbox). */
  maxDeadLetterBytes?: number;
  onFull?: (bytes: number, maxBytes: number) => void;
  /** Seals records handed over as plain JSON (default: a sealer with a random key). */
  sealer?: RecordSealer;
}

export function createMemoryOutbox(opts: MemoryOutboxOptions): Outbox {
  /** Rows by seq: a record id enqueued twice is two rows, as in the SQLite outbox. */
  const rows = new Map<number, Row>();
  /** The row claimed for each id in flight. */
  const claimed = new Map<string, number>();
  const dead = new Map<string, DeadLetterEntry & { bytes: number }>();
  const log = new Map<string, string>();
  const inFlight = new Set<string>();
  const cursors = new Map<string, string>();
  const commands = new Map<string, Uint8Array>();
  const sourceRows = new Map<string, Map<string, string>>();
  let seq = 0;
  let bytes = 0;
  let open = false;
  let sealer = opts.sealer;
  const seal = (aad: string, plain: string | Uint8Array) => (sealer ??= createRecordSealer(randomBytes(32))).seal(aad, plain);
  /**
   * Queues a sealed record (or bundle) as a new row in lane `rank`, first taking the earlier rows
   * of its partition in less urgent lanes into that lane (the lane invariant, outbox.ts).
   */
  const addRow = (r: SealedRecord, rank = laneRank(r.lane)) => {
    // a backfill row (the least urgent lane) promotes nothing: a first load's rows skip the walk
    if (rank < 2)
      for (const earlier of rows.values()) if (earlier.partitionKey === r.partitionKey && earlier.lane > rank) earlier.lane = rank;
    const b = r.sealed.byteLength + ENTRY_OVERHEAD;
    rows.set(++seq, {
      seq,
      id: r.id,
      type: r.type,
      partitionKey: r.partitionKey,
      nextAttemptAt: 0,
      attempts: 0,
      createdAt: opts.clock.now(),
      bytes: b,
      sealed: r.sealed,
      recordIds: r.recordIds,
      records: r.recordIds?.length ?? 1,
      lane: rank,
    });
    bytes += b;
  };

  const maxDead = opts.maxDeadLetterBytes ?? Math.floor(opts.maxBytes / 4);
  /** The totals the admission rules (admission.ts) decide on. */
  function totals(): AdmissionTotals {
    let deadBytes = 0;
    for (const d of dead.values()) deadBytes += d.bytes;
    return { bytes, deadBytes, maxBytes: opts.maxBytes, maxDeadLetterBytes: maxDead };
  }
  /** Bytes dead letters add (less those of the same ids they replace). */
  function deadLetterGrowth(entries: readonly DeadLetterEntry[]): number {
    let growth = 0;
    for (const e of entries) growth += e.sealed.byteLength + ENTRY_OVERHEAD - (dead.get(e.id)?.bytes ?? 0);
    return growth;
  }
  /** The resend log as admission reaches it. */
  const resendLog = {
    lookup: (key: string) => log.get(key),
    claim: (key: string, hash: string) => {
      const prior = log.get(key);
      if (prior === undefined) log.set(key, hash);
      return prior;
    },
  };
  const putDead = (e: DeadLetterEntry) => {
    dead.set(e.id, { ...e, bytes: e.sealed.byteLength + ENTRY_OVERHEAD });
  };

  /** Claimed rows to the dead letters, whole (their bytes were counted already). */
  function moveToDead(ids: readonly string[], code: string, reason: string): void {
    for (const id of ids) {
      const r = rowOf(id);
      release(id);
      if (!r) continue;
      rows.delete(r.seq);
      // the row's bytes were counted already; a dead letter of the same id it replaces is not
      bytes -= dead.get(id)?.bytes ?? 0;
      dead.set(id, {
        id,
        kind: 'record',
        createdAt: opts.clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code,
        reason,
        recordType: r.type,
        partitionKey: r.partitionKey,
        ...(r.recordIds ? { recordIds: r.recordIds } : {}),
        sealed: r.sealed,
        bytes: r.bytes,
      });
    }
  }

  /** Claim order: lane by lane, each in enqueue order. */
  function ordered(): Row[] {
    return [...rows.values()].sort((a, b) => a.lane - b.lane || a.seq - b.seq);
  }
  /** The claimed row of an id, else its oldest row. */
  function rowOf(id: string): Row | undefined {
    const seqOf = claimed.get(id);
    if (seqOf !== undefined) return rows.get(seqOf);
    return [...rows.values()].sort((a, b) => a.seq - b.seq).find((r) => r.id === id);
  }
  function release(id: string): void {
    inFlight.delete(id);
    claimed.delete(id);
  }

  function need(): void {
    if (!open) throw new GatewayError('GW_OUTBOX_IO', 'outbox is not open');
  }

  return {
    async open() {
      open = true;
      inFlight.clear();
      claimed.clear();
    },
    async close() {
      open = false;
    },
    async enqueue(given) {
      need();
      await Promise.resolve();
      const entry = { ...given, records: sealRecords(given.records, seal) };
      const outcome = admitEntry({ bytes: entryBytes(entry), dedupe: entry.dedupe }, totals(), resendLog);
      if (outcome === 'full') opts.onFull?.(bytes, opts.maxBytes);
      if (outcome !== 'accepted') return outcome;
      for (const r of entry.records) addRow(r);
      if (entry.command && entry.dedupe) commands.set(entry.command.id, entry.command.sealed);
      return 'accepted';
    },
    async enqueuePage(given) {
      need();
      await Promise.resolve();
      const page = { ...given, rows: given.rows.map((r) => ({ ...r, records: sealRecords(r.records, seal) })) };
      const known = (stream: string) => {
        let m = sourceRows.get(stream);
        if (!m) sourceRows.set(stream, (m = new Map()));
        return m;
      };
      const changed = page.trackRows === false ? page.rows : page.rows.filter((r) => known(r.stream ?? page.stream).get(r.pk) !== r.hash);
      let recordBytes = 0;
      for (const r of changed) for (const rec of r.records) recordBytes += rec.sealed.byteLength + ENTRY_OVERHEAD;
      const deadBytes = deadLetterGrowth(changed.flatMap((r) => (r.deadLetter ? [r.deadLetter] : [])));
      if (admitPage({ bytes: recordBytes + deadBytes, deadBytes }, totals()) === 'full') {
        opts.onFull?.(bytes, opts.maxBytes);
        return { outcome: 'full', written: 0, unchanged: 0, deadLettered: 0 };
      }
      let written = 0;
      let deadLettered = 0;
      for (const r of changed) {
        // a row never seen before takes its records' lane for new rows
        const isNew = page.trackRows === false || known(r.stream ?? page.stream).get(r.pk) === undefined;
        for (const rec of r.records) addRow(rec, laneRank(isNew && rec.laneWhenNew !== undefined ? rec.laneWhenNew : rec.lane));
        if (r.deadLetter) {
          const b = r.deadLetter.sealed.byteLength + ENTRY_OVERHEAD;
          const prior = dead.get(r.deadLetter.id);
          if (prior) bytes -= prior.bytes;
          dead.set(r.deadLetter.id, { ...r.deadLetter, bytes: b });
          bytes += b;
          deadLettered++;
        } else written++;
        if (page.trackRows !== false) known(r.stream ?? page.stream).set(r.pk, r.hash);
      }
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { outcome: 'accepted', written, unchanged: page.rows.length - changed.length, deadLettered };
    },
    getCursor(key) {
      return cursors.get(key);
    },
    pendingCommands() {
      return [...commands].map(([id, sealed]) => ({ id, sealed }));
    },
    async finishCommand(id) {
      commands.delete(id);
    },
    listSourceRows(stream, afterPk, limit) {
      const known = sourceRows.get(stream);
      if (!known) return [];
      return [...known.entries()]
        .filter(([pk, h]) => h !== DELETED_ROW_HASH && (afterPk === undefined || pk > afterPk))
        .map(([pk]) => pk)
        .sort()
        .slice(0, limit);
    },
    claim(n) {
      need();
      const now = opts.clock.now();
      const result = { full: false };
      const picked = selectClaimable(ordered(), inFlight, now, n, Infinity, undefined, result);
      for (const r of picked) {
        inFlight.add(r.id);
        claimed.set(r.id, r.seq);
      }
      const taken = new Set(picked.map((r) => r.seq));
      const heldBack = [...rows.values()].some((r) => !taken.has(r.seq) && !inFlight.has(r.id) && r.nextAttemptAt <= now);
      return {
        rows: picked.map((r) => ({
          seq: r.seq,
          id: r.id,
          type: r.type,
          partitionKey: r.partitionKey,
          attempts: r.attempts,
          sealed: r.sealed,
          ...(r.recordIds ? { recordIds: r.recordIds } : {}),
        })),
        full: result.full,
        heldBack,
      };
    },
    async ack(ids) {
      for (const id of ids) {
        const r = rowOf(id);
        if (r) {
          bytes -= r.bytes;
          rows.delete(r.seq);
        }
        release(id);
      }
    },
    async retryLater(ids, at) {
      for (const id of ids) {
        const r = rowOf(id);
        if (r) {
          r.attempts++;
          r.nextAttemptAt = at;
        }
        release(id);
      }
    },
    async deadLetter(ids, code, reason) {
      moveToDead(ids, code, reason);
    },
    async splitRefused(id, refused, code, reason) {
      const r = rowOf(id);
      if (!r) {
        release(id);
        return 'gone';
      }
      const growth = deadLetterGrowth(refused);
      if (!admitDeadLetters(growth, totals(), r.bytes)) {
        moveToDead([id], code, reason);
        opts.onFull?.(bytes, opts.maxBytes);
        return 'moved';
      }
      for (const e of refused) putDead(e);
      rows.delete(r.seq);
      release(id);
      bytes += growth - r.bytes;
      return 'split';
    },
    async addDeadLetter(e) {
      need();
      const growth = deadLetterGrowth([e]);
      if (!admitDeadLetters(growth, totals())) {
        opts.onFull?.(bytes, opts.maxBytes);
        return 'full';
      }
      putDead(e);
      bytes += growth;
      return 'stored';
    },
    listDeadLetters(o) {
      const all = [...dead.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
      const off = o?.offset ?? 0;
      return all.slice(off, off + (o?.limit ?? 100)).map(({ sealed: _s, ...rest }) => rest);
    },
    getDeadLetter(id) {
      const d = dead.get(id);
      if (!d) return undefined;
      const { bytes: _b, ...rest } = d;
      return rest;
    },
    async removeDeadLetter(id) {
      const d = dead.get(id);
      if (!d) return false;
      dead.delete(id);
      bytes -= d.bytes;
      return true;
    },
    nextRetryAt() {
      const now = opts.clock.now();
      let t: number | null = null;
      for (const r of rows.values()) if (r.nextAttemptAt > now && (t === null || r.nextAttemptAt < t)) t = r.nextAttemptAt;
      return t;
    },
    stats() {
      const now = opts.clock.now();
      let waiting = 0;
      let oldest: number | null = null;
      const lanes = [0, 1, 2].map(() => ({ rows: 0, oldestCreatedAt: null as number | null, oldestAgeSeconds: null as number | null }));
      for (const r of rows.values()) {
        if (r.nextAttemptAt > now) waiting++;
        if (oldest === null || r.createdAt < oldest) oldest = r.createdAt;
        const l = lanes[r.lane];
        l.rows++;
        if (l.oldestCreatedAt === null || r.createdAt < l.oldestCreatedAt) l.oldestCreatedAt = r.createdAt;
      }
      for (const l of lanes) if (l.oldestCreatedAt !== null) l.oldestAgeSeconds = Math.max(0, Math.round((now - l.oldestCreatedAt) / 1000));
      return {
        pending: rows.size - inFlight.size - waiting,
        inFlight: inFlight.size,
        waitingRetry: waiting,
        deadLetters: dead.size,
        bytes,
        maxBytes: opts.maxBytes,
        oldestCreatedAt: oldest,
        lanes: { urgent: lanes[0], live: lanes[1], backfill: lanes[2] },
      };
    },
  };
}
