/**
 * The relay: outbox → sink. Claims batches in order (the outbox keeps one patient's records in
 * order and never lets two batches of one patient be in flight), unseals, delivers, and only on the
 * cloud's ack deletes the rows (rule 2).
 *
 * States: idle ──notify/timer──► pumping ──claim──► open every row (open-rows.ts) ──► up to `maxInFlight` deliveries
 *         row does not open ──► dead letters (GW_RECORD_UNREADABLE), alert; the rest go on
 *         delivery ok ──► ack rows; failures reset
 *         delivery transient/ambiguous ──► rows retry later; the whole relay pauses for the
 *                                          backoff (the sink, not the record, is the problem)
 *         delivery permanent ──► rows to dead letters
 */
import type { Logger } from 'pino';
import type { AlertBoard } from '../alerts.ts';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import type { Metrics } from '../metrics.ts';
import type { ClaimResult, ClaimedRow, DeadLetterEntry, RecordQueue } from '../outbox/outbox.ts';
import type { Sink } from '../sinks/sink.ts';
import { backoffDelay } from './backoff.ts';
import { openClaimedRows, type UnreadableRow } from './open-rows.ts';

export interface RelayWorkerOptions {
  /** The record queue it drains (the relay needs no other role of the outbox). */
  outbox: RecordQueue;
  sink: Sink;
  sealer: RecordSealer;
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  metrics: Metrics;
  batchSize: number;
  maxInFlight: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  idlePollMs: number;
  /** After a notify, wait this long so one batch carries many intakes (fewer claims, acks, fsyncs). */
  lingerMs?: number;
  /** How long stop() waits for deliveries in flight (rows not acked stay in the outbox). */
  stopGraceMs?: number;
  random?: () => number;
  /** Where rows that cannot be opened are announced (alert `recordsUnreadable`, not blocking readiness). */
  alerts?: Pick<AlertBoard, 'raise'>;
}

export interface RelayHealth {
  running: boolean;
  inFlightBatches: number;
  consecutiveFailures: number;
  pausedUntil: number | null;
  lastError?: string;
  lastDeliveryAt: number | null;
  unreadableRows: number;
  unreadableRecords: number;
}

export interface RelayWorker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** New records were committed: look for work now. */
  notify(): void;
  health(): RelayHealth;
}

export function createRelayWorker(o: RelayWorkerOptions): RelayWorker {
  const log = o.logger;
  let running = false;
  // its waits (the idle poll, the back-off pause, the linger) run on the clock's timers, so a test
  // with a manual clock drives them; the stop grace is a real bound on real I/O and stays on Node's
  let timer: TimerHandle | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let lingerTimer: TimerHandle | undefined;
  let pausedUntil = 0;
  let failures = 0;
  let lastError: string | undefined;
  let lastDeliveryAt: number | null = null;
  // rows (and their records) quarantined since start because they would not open
  let unreadableRows = 0;
  let unreadableRecords = 0;
  const inFlight = new Set<Promise<void>>();

  function schedule(atMs: number): void {
    if (!running) return;
    o.clock.clearTimeout(timer);
    timer = o.clock.setTimeout(
      () => {
        timer = undefined;
        pump();
      },
      Math.max(0, atMs - o.clock.now()),
      { unref: true },
    );
  }

  function pump(): void {
    if (!running) return;
    const now = o.clock.now();
    if (now < pausedUntil) {
      schedule(pausedUntil);
      return;
    }
    let claimedAny = false;
    while (inFlight.size < o.maxInFlight) {
      let claim: ClaimResult;
      try {
        claim = o.outbox.claim(o.batchSize);
      } catch (err) {
        log.error({ err }, 'outbox claim failed');
        schedule(now + o.idlePollMs);
        return;
      }
      if (claim.rows.length === 0) break;
      claimedAny = true;
      // short: the claim did not reach its records (bundles count each of theirs)
      const short = !claim.full;
      const { heldBack } = claim;
      const p = deliver(claim.rows)
        .catch((err: unknown) => log.error({ err }, 'relay delivery bookkeeping failed'))
        .finally(() => {
          inFlight.delete(p);
          // a full batch means a backlog, and rows held behind this batch's patients may be free
          // now: go on at once; otherwise gather for the linger time first (measured: re-pumping at
          // once sent one batch, one write and one fsync per message under steady single-connection load)
          if (!running) return;
          if (!short || heldBack) pump();
          else linger();
        });
      inFlight.add(p);
      // a short batch means nothing else is claimable now: another scan would find nothing
      if (short) break;
    }
    if (!claimedAny && inFlight.size === 0) {
      const next = o.outbox.nextRetryAt();
      schedule(Math.min(next ?? Infinity, now + o.idlePollMs));
    }
  }

  /** Pumps after the linger time (or on the next turn without one), unless a pump is already due. */
  function linger(): void {
    if (immediate || lingerTimer) return;
    const ms = o.lingerMs ?? 0;
    if (ms > 0) {
      lingerTimer = o.clock.setTimeout(
        () => {
          lingerTimer = undefined;
          pump();
        },
        ms,
        { unref: true },
      );
    } else {
      immediate = setImmediate(() => {
        immediate = undefined;
        pump();
      });
    }
  }

  /**
   * A row the cloud refused records of. A record alone moves to dead letters as it is. From a
   * bundle, only the refused records go (each sealed on its own, as a row of one record would be,
   * so a replay resends just them) and the bundle's row goes with them, in one transaction
   * (`Outbox.splitRefused`). When the dead letters cannot take them all (or the sink took sealed
   * rows, so there is no record text) the bundle moves whole instead (a replay then resends the
   * accepted ones too; the cloud drops those copies).
   */
  async function deadLetterRefused(r: ClaimedRow, rejected: Map<string, string>, jsonById: Map<string, string>): Promise<void> {
    if (!r.recordIds) {
      await o.outbox.deadLetter([r.id], 'GW_SINK_REJECTED', rejected.get(r.id) ?? 'refused');
      return;
    }
    const refused = r.recordIds.filter((x) => rejected.has(x));
    const reason = refused.map((x) => `${x}: ${rejected.get(x)}`).join('; ');
    const entries: DeadLetterEntry[] = [];
    for (const id of refused) {
      const text = jsonById.get(id);
      // a sink that takes sealed rows never opened the bundle: it moves whole
      if (text === undefined) {
        await o.outbox.deadLetter([r.id], 'GW_SINK_REJECTED', reason);
        return;
      }
      entries.push({
        id,
        kind: 'record',
        createdAt: o.clock.now(),
        adapter: 'relay',
        format: 'canonical',
        code: 'GW_SINK_REJECTED',
        reason: rejected.get(id)!,
        recordType: (JSON.parse(text) as { type?: string }).type ?? 'unknown',
        partitionKey: r.partitionKey,
        sealed: o.sealer.seal(id, text),
      });
    }
    await o.outbox.splitRefused(r.id, entries, 'GW_SINK_REJECTED', reason);
  }

  /**
   * Rows that would not open go to dead letters as they are (sealed bytes untouched, so a replay
   * after the right key is restored sends them), counted, and announced on the alert board. When
   * the dead letters cannot be written they wait for a later claim instead (checked again then).
   */
  async function quarantine(list: UnreadableRow[]): Promise<void> {
    const byReason = new Map<string, string[]>();
    for (const u of list) byReason.set(u.reason, [...(byReason.get(u.reason) ?? []), u.row.id]);
    const records = list.reduce((n, u) => n + (u.row.recordIds?.length ?? 1), 0);
    const rowIds = list.map((u) => u.row.id);
    try {
      for (const [reason, ids] of byReason) await o.outbox.deadLetter(ids, 'GW_RECORD_UNREADABLE', reason);
    } catch (err) {
      log.error(
        { code: 'GW_RECORD_UNREADABLE', cause: (err as { code?: string }).code ?? 'unknown', rows: list.length },
        'rows that cannot be opened could not be moved to dead letters; they stay queued (not sent) and are checked again later',
      );
      await o.outbox.retryLater(rowIds, o.clock.now() + o.backoffMaxMs, 'GW_RECORD_UNREADABLE').catch(() => undefined);
      return;
    }
    unreadableRows += list.length;
    unreadableRecords += records;
    o.metrics.inc('ewml_records_dead_lettered_total', { code: 'GW_RECORD_UNREADABLE' }, records);
    o.bus.emit('relay.deadLettered', { sink: o.sink.kind, records, code: 'GW_RECORD_UNREADABLE' });
    log.error(
      { code: 'GW_RECORD_UNREADABLE', rows: list.length, records, rowIds: rowIds.slice(0, 20) },
      'queued rows could not be opened; quarantined in dead letters, not sent',
    );
    o.alerts?.raise('recordsUnreadable', {
      code: 'GW_RECORD_UNREADABLE',
      blocksReady: false,
      acknowledgeable: true,
      fields: { rows: unreadableRows, records: unreadableRecords },
      detail: `${unreadableRows} queued row(s) (${unreadableRecords} record(s)) could not be opened (damaged on the disk, or sealed under another key) and were quarantined in dead letters, not sent; the rest are delivered. Check the disk; if the seal key was replaced, restore the original (eyewear-gateway keys import) and replay the dead letters with code GW_RECORD_UNREADABLE`,
    });
  }

  async function deliver(rows: ClaimedRow[]): Promise<void> {
    // every sink's rows are opened first, the file sink's too (it stores them sealed): a row that
    // does not open must not be counted delivered and deleted
    const { good, json, unreadable } = openClaimedRows(rows, o.sealer, !o.sink.takesSealed);
    if (unreadable.length) await quarantine(unreadable);
    if (good.length === 0) return;
    // the cloud sees records; the outbox settles rows (a bundle's refused records: deadLetterRefused)
    const recordsOf = (r: ClaimedRow) => r.recordIds ?? [r.id];
    const ids = good.flatMap(recordsOf);
    const rowIds = good.map((r) => r.id);
    const batchId = deterministicId('batch', ...ids);
    try {
      const result = await o.sink.deliver({ batchId, ids, json, sealed: good });
      const rejected = new Map(result.rejected.map((r) => [r.id, r.reason]));
      const acceptedRows: string[] = [];
      const refusedRows: ClaimedRow[] = [];
      for (const r of good) {
        if (rejected.size && recordsOf(r).some((id) => rejected.has(id))) refusedRows.push(r);
        else acceptedRows.push(r.id);
      }
      const accepted = ids.filter((id) => !rejected.has(id)).length;
      if (acceptedRows.length) await o.outbox.ack(acceptedRows);
      if (refusedRows.length) {
        // the records' JSON by id (empty for a sink that takes sealed rows only)
        const jsonById = new Map(json.map((text, k) => [ids[k], text]));
        for (const r of refusedRows) await deadLetterRefused(r, rejected, jsonById);
      }
      failures = 0;
      lastError = undefined;
      lastDeliveryAt = o.clock.now();
      o.metrics.inc('ewml_records_delivered_total', { sink: o.sink.kind }, accepted);
      o.bus.emit('relay.delivered', { sink: o.sink.kind, records: accepted });
      if (rejected.size) {
        o.metrics.inc('ewml_records_dead_lettered_total', { code: 'GW_SINK_REJECTED' }, rejected.size);
        o.bus.emit('relay.deadLettered', { sink: o.sink.kind, records: rejected.size, code: 'GW_SINK_REJECTED' });
        log.warn({ batchId, rejected: rejected.size }, 'cloud rejected records; moved to dead letters');
      }
    } catch (e) {
      const err = isGatewayError(e) ? e : new GatewayError('GW_SINK_UNREACHABLE', 'delivery failed', { cause: e });
      o.metrics.inc('ewml_relay_failures_total', { sink: o.sink.kind, code: err.code });
      lastError = err.code;
      if (err.retry === 'permanent') {
        await o.outbox.deadLetter(rowIds, err.code, err.message);
        o.metrics.inc('ewml_records_dead_lettered_total', { code: err.code }, ids.length);
        o.bus.emit('relay.deadLettered', { sink: o.sink.kind, records: ids.length, code: err.code });
        log.warn({ batchId, code: err.code, records: ids.length }, 'batch rejected permanently; moved to dead letters');
        return;
      }
      // batches in flight together fail together: count one failure per pause, not one per batch
      if (o.clock.now() >= pausedUntil) failures++;
      const retryAfter = Number(err.details?.retryAfterMs ?? 0);
      const delay = Math.max(
        backoffDelay(failures, { initialMs: o.backoffInitialMs, maxMs: o.backoffMaxMs, random: o.random }),
        retryAfter,
      );
      const at = o.clock.now() + delay;
      pausedUntil = Math.max(pausedUntil, at);
      await o.outbox.retryLater(rowIds, at, err.code);
      o.bus.emit('relay.failed', { sink: o.sink.kind, code: err.code, retryInMs: delay });
      log.warn(
        { batchId, code: err.code, retry: err.retry, records: ids.length, retryInMs: delay, failures },
        'delivery failed; will retry',
      );
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      pump();
    },
    async stop() {
      if (!running) return;
      running = false;
      o.clock.clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
      o.clock.clearTimeout(lingerTimer);
      timer = undefined;
      lingerTimer = undefined;
      immediate = undefined;
      const grace = new Promise<void>((r) => {
        const t = setTimeout(r, o.stopGraceMs ?? 5000);
        t.unref?.();
      });
      await Promise.race([Promise.allSettled([...inFlight]), grace]);
    },
    notify() {
      if (!running || inFlight.size >= o.maxInFlight) return;
      if (o.clock.now() < pausedUntil) return;
      linger();
    },
    health: () => ({
      running,
      inFlightBatches: inFlight.size,
      consecutiveFailures: failures,
      pausedUntil: pausedUntil > o.clock.now() ? pausedUntil : null,
      lastError,
      lastDeliveryAt,
      unreadableRows,
      unreadableRecords,
    }),
  };
}
