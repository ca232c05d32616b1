/**
 * The record path inside the gateway, one file per step: parse (parse.ts) → map (map.ts) →
 * validate (validate.ts) → outbox rows (partition keys hashed, a message's records of one patient
 * bundled; below) → the outbox, whose writer seals each row (crypto/record-sealer.ts, rule 4) and
 * commits. Delivery is the relay's (relay/), from the outbox to the sink.
 *
 * `intake(raw)` resolves only when the outcome is durable: records committed (accepted), a resend
 * recognised (duplicate), the input in dead letters (rejected, permanent), or nothing written and
 * the source told to retry (rejected, transient: outbox full or unwritable, or the disk below its
 * reserve). Adapters acknowledge their source from this result alone (rule 1). Nothing that fails
 * is dropped silently (rule 3).
 *
 * While the disk guard says the data volume is low, every input is refused before anything is
 * parsed or written — the same "busy, retry later" answer as a full outbox (HL7 AR ERR 207, pollers
 * keep their cursors) — so that what space is left goes to the relay's acks and deletes. A write
 * that fails for lack of space anyway (another program filled the disk between samples) is refused
 * the same way, and the guard told at once; SQLite rolled that write back whole.
 */
import { hash as sha256 } from 'node:crypto';
import type { Logger } from 'pino';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { rowHash, rowJson } from '../../adapters/canonical/row-hash.ts';
import type { RecordValidator } from '../../adapters/canonical/validator.ts';
import {
  type IntakeResult,
  type MapContext,
  type PageIntakeResult,
  type RawInput,
  type RawPage,
  type RawRow,
  type SourceCodec,
  type SourceLocation,
} from '../../adapters/contracts.ts';
import type { Clock } from '../clock.ts';
import { plainPartitionKeys, type PartitionKeyer } from '../crypto/partition-keyer.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { isGatewayError, type ErrorCode } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import { messageTypeLabel } from '../message-type-label.ts';
import type { Metrics } from '../metrics.ts';
import {
  BUNDLE_SEPARATOR,
  bundleId,
  type DeadLetterEntry,
  type DeadLetterStore,
  type LaneChoice,
  type RecordQueue,
  type SourceLedger,
  type SourceRowEntry,
  type StoreRecord,
} from '../outbox/outbox.ts';
import { createMapStage, type MapStageResult } from './map-stage.ts';
import { parseInput } from './parse.ts';
import { highestLane, laneWhenNew, recordLane } from './record-lane.ts';

export interface IntakePipelineOptions {
  codecs: ReadonlyArray<SourceCodec<unknown>>;
  /** Intakes enqueue, pages commit with their cursors, what cannot be used is kept (and replayed) as dead letters. */
  outbox: Pick<RecordQueue, 'enqueue'> & Pick<SourceLedger, 'enqueuePage'> & Omit<DeadLetterStore, 'listDeadLetters'>;
  sealer: RecordSealer;
  validator: RecordValidator;
  clock: Clock;
  identity: MapContext;
  logger: Logger;
  bus: EventBus;
  metrics: Metrics;
  /** Called after each commit that added records (wakes the relay). */
  onEnqueued?: () => void;
  /**
   * Sees the canonical records of each commit, in plaintext, once the commit resolved (the CDS
   * read model, gateway/cds-hooks/). A page's unchanged rows are seen again. Must not throw or keep
   * the event loop. Absent (the default), nothing is collected for it.
   */
  onCommitted?: (records: readonly CanonicalRecord[]) => void;
  /** The disk guard (disk-guard.ts): input is refused while it does not admit it. */
  diskGuard?: { admits(): boolean; writeFailed(): void };
  /**
   * Turns a record's partition key (it names the patient) into what the outbox stores: the gateway
   * passes a keyed hash (crypto/partition-keyer.ts); without one, keys are stored as they are.
   */
  partitionKeyer?: PartitionKeyer;
  /** The practice's IANA zone: which appointments are today's or tomorrow's, for their lane (record-lane.ts). Default UTC. */
  timezone?: string;
}

export interface IntakePipeline {
  intake(raw: RawInput): Promise<IntakeResult>;
  /** A polled source's page: rows mapped one by one, committed with the cursor in one transaction. */
  intakePage(page: RawPage): Promise<PageIntakeResult>;
  /** Runs a dead letter through again (after a mapping fix); removes it when it goes through. */
  replay(deadLetterId: string): Promise<IntakeResult | undefined>;
  /** Replaces the codecs (a config reload re-created sources); inputs already parsed finish with the codec they began with. */
  setCodecs(list: ReadonlyArray<SourceCodec<unknown>>): void;
}

/** Canonical text for resend detection: segment ends normalised, trailing space ignored. */
function contentHash(text: string): string {
  return sha256(
    'sha256',
    text
      .replace(/^\uFEFF/, '')
      .replace(/\r\n|\n/g, '\r')
      .replace(/\r+$/, '')
      .trim(),
    'hex',
  );
}

function locationText(l?: SourceLocation): string | undefined {
  if (!l) return undefined;
  return [l.segment, l.sequence, l.field, l.component].filter((x) => x !== undefined && x !== '').join('-') || undefined;
}

/**
 * A message's (or source row's) records as outbox rows: records that share a partition go as one
 * bundle (their JSON joined by newlines), a record alone as itself. Order is kept within each.
 * Each row goes in its record's lane (record-lane.ts); a bundle in the most urgent of its records'.
 */
function outboxRows(records: MapStageResult['records'], keyOf: PartitionKeyer, laneOf: (r: CanonicalRecord) => LaneChoice): StoreRecord[] {
  const one = (r: MapStageResult['records'][number]): StoreRecord => ({
    id: r.record.id,
    type: r.record.type,
    partitionKey: keyOf(r.draft.partitionKey),
    plain: JSON.stringify(r.record),
    ...laneOf(r.record),
  });
  if (records.length === 1) return [one(records[0])];
  const groups = new Map<string, MapStageResult['records']>();
  for (const r of records) {
    const g = groups.get(r.draft.partitionKey);
    if (g) g.push(r);
    else groups.set(r.draft.partitionKey, [r]);
  }
  const out: StoreRecord[] = [];
  for (const [partitionKey, g] of groups) {
    if (g.length === 1) {
      out.push(one(g[0]));
      continue;
    }
    const recordIds = g.map((r) => r.record.id);
    out.push({
      id: bundleId(recordIds),
      type: 'bundle',
      partitionKey: keyOf(partitionKey),
      plain: g.map((r) => JSON.stringify(r.record)).join(BUNDLE_SEPARATOR),
      recordIds,
      ...highestLane(g.map((r) => laneOf(r.record))),
    });
  }
  return out;
}

export function createIntakePipeline(opts: IntakePipelineOptions): IntakePipeline {
  let codecs = new Map(opts.codecs.map((c) => [c.format, c]));
  const keyOf = opts.partitionKeyer ?? plainPartitionKeys;
  const log = opts.logger;
  const timezone = opts.timezone ?? 'UTC';

  const stage = createMapStage({ validator: opts.validator, clock: opts.clock, identity: opts.identity });

  /** The commit stands whatever the hook does: a throw is logged, never the source's answer. */
  function seeCommitted(list: readonly CanonicalRecord[]): void {
    try {
      opts.onCommitted?.(list);
    } catch (e) {
      log.error({ err: e, records: list.length }, 'onCommitted hook threw; the records are committed');
    }
  }

  const DISK_LOW = { status: 'rejected', code: 'GW_DISK_LOW', retry: 'transient', reason: 'disk low', hl7ErrorCode: '207' } as const;

  /** Refused for lack of disk space (counted; the guard reports it on the board). */
  function diskLow(adapter: string): typeof DISK_LOW {
    opts.metrics.inc('ewml_intake_rejected_total', { adapter, code: 'GW_DISK_LOW' });
    return DISK_LOW;
  }

  /** A write that threw: nothing of it is stored (one transaction), so the source is told to retry. */
  function writeFailed(
    e: unknown,
    adapter: string,
    ids: Record<string, string | undefined>,
  ): { status: 'rejected'; code: ErrorCode; retry: 'transient'; reason: string; hl7ErrorCode: string } {
    if (isGatewayError(e, 'GW_DISK_LOW')) {
      opts.diskGuard?.writeFailed();
      log.warn({ code: 'GW_DISK_LOW', adapter, ...ids }, 'outbox write failed for lack of disk space; input refused (the source retries)');
      return diskLow(adapter);
    }
    log.error({ err: e, adapter, ...ids }, 'outbox commit failed');
    opts.metrics.inc('ewml_intake_rejected_total', { adapter, code: 'GW_OUTBOX_IO' });
    return {
      status: 'rejected',
      code: isGatewayError(e) ? e.code : 'GW_OUTBOX_IO',
      retry: 'transient',
      reason: 'outbox write failed',
      hl7ErrorCode: '207',
    };
  }

  async function reject(
    raw: RawInput,
    code: ErrorCode,
    reason: string,
    extra: { location?: SourceLocation; hl7ErrorCode?: string; hash: string },
  ): Promise<IntakeResult> {
    const dlId = deterministicId('dead-letter', raw.adapter, raw.format, extra.hash, code);
    let stored;
    try {
      stored = await opts.outbox.addDeadLetter({
        id: dlId,
        kind: 'input',
        createdAt: opts.clock.now(),
        adapter: raw.adapter,
        format: raw.format,
        code,
        reason,
        location: locationText(extra.location),
        sealed: opts.sealer.seal(dlId, Buffer.from(raw.text, 'utf8')),
      });
    } catch (e) {
      return writeFailed(e, raw.adapter, { deadLetterId: dlId });
    }
    opts.metrics.inc('ewml_intake_rejected_total', { adapter: raw.adapter, code });
    opts.bus.emit('intake.rejected', { adapter: raw.adapter, code });
    if (stored === 'full') {
      opts.metrics.inc('ewml_outbox_full_total');
      return {
        status: 'rejected',
        code: 'GW_OUTBOX_FULL',
        retry: 'transient',
        reason: 'outbox full',
        location: extra.location,
        hl7ErrorCode: '207',
      };
    }
    opts.metrics.inc('ewml_records_dead_lettered_total', { code });
    log.warn(
      { code, deadLetterId: dlId, adapter: raw.adapter, location: locationText(extra.location) },
      'input rejected; kept in dead letters',
    );
    return {
      status: 'rejected',
      code,
      retry: 'permanent',
      reason,
      location: extra.location,
      hl7ErrorCode: extra.hl7ErrorCode,
      deadLetterId: dlId,
    };
  }

  async function intake(raw: RawInput): Promise<IntakeResult> {
    if (opts.diskGuard && !opts.diskGuard.admits()) return diskLow(raw.adapter);
    const hash = contentHash(raw.text);
    const p = parseInput(codecs, raw);
    if (!p.ok) return reject(raw, p.code, p.reason, { location: p.location, hl7ErrorCode: p.hl7ErrorCode, hash });
    const { codec, parsed } = p;
    const { kind, messageId } = codec.describe(parsed);
    let built: MapStageResult;
    try {
      built = stage.run(codec, parsed);
    } catch (e) {
      log.error({ err: e, kind, messageId }, 'mapper threw');
      return reject(raw, 'GW_MAP_FAILED', 'mapper failed unexpectedly', { hash, hl7ErrorCode: '207' });
    }
    const { mapped, records, invalid } = built;
    if (mapped.unsupported) {
      opts.metrics.inc('ewml_intake_total', { adapter: raw.adapter, outcome: 'ignored' });
      opts.metrics.inc('ewml_intake_ignored_total', { adapter: raw.adapter, kind: messageTypeLabel(mapped.unsupported) });
      opts.bus.emit('intake.ignored', { adapter: raw.adapter, messageType: mapped.unsupported });
      return { status: 'ignored', reason: `${mapped.unsupported} is not mapped` };
    }
    const firstError = mapped.issues.find((i) => i.severity === 'error');
    if (firstError)
      return reject(raw, 'GW_MAP_FAILED', firstError.message, {
        location: firstError.location,
        hl7ErrorCode: firstError.hl7ErrorCode ?? '207',
        hash,
      });
    if (invalid.length) {
      const first = invalid[0];
      return reject(
        raw,
        'GW_VALIDATION_FAILED',
        `${first.type} record ${first.path} ${first.problem}${invalid.length > 1 ? ` (+${invalid.length - 1} more)` : ''}`,
        { hash, hl7ErrorCode: '102' },
      );
    }
    if (records.length === 0) return reject(raw, 'GW_MAP_FAILED', 'message produced no records', { hash, hl7ErrorCode: '207' });
    // handed over as JSON: the outbox's writer seals them before they are written (rule 4), on the
    // writer thread when it takes the commit, so sealing does not hold up the sockets' event loop
    // a pushed message is new (a resend is a duplicate, never queued again): new-record lanes apply
    const nowMs = opts.clock.now();
    const toStore = outboxRows(records, keyOf, (r) => laneWhenNew(recordLane(r, { nowMs, timezone, firstLoad: false })));
    const key = codec.dedupeKey(parsed);
    let outcome;
    try {
      outcome = await opts.outbox.enqueue({ records: toStore, dedupe: key ? { key, hash } : undefined });
    } catch (e) {
      return writeFailed(e, raw.adapter, { kind, messageId });
    }
    switch (outcome) {
      case 'accepted':
        opts.metrics.inc('ewml_intake_total', { adapter: raw.adapter, outcome: 'accepted' });
        opts.metrics.inc('ewml_records_enqueued_total', undefined, records.length);
        opts.bus.emit('intake.accepted', { adapter: raw.adapter, records: records.length });
        opts.onEnqueued?.();
        if (opts.onCommitted) seeCommitted(records.map((r) => r.record));
        return { status: 'accepted', recordIds: records.map((r) => r.record.id) };
      case 'duplicate':
        opts.metrics.inc('ewml_intake_total', { adapter: raw.adapter, outcome: 'duplicate' });
        opts.bus.emit('intake.duplicate', { adapter: raw.adapter });
        log.info({ kind, messageId }, 'resend of an accepted message; not enqueued again');
        return { status: 'duplicate' };
      case 'conflict':
        return reject(raw, 'GW_CONTROL_ID_CONFLICT', `control id ${messageId ?? '?'} was already used for different content`, {
          hash,
          hl7ErrorCode: '205',
          location: { segment: 'MSH', sequence: 1, field: 10 },
        });
      case 'full':
        opts.metrics.inc('ewml_intake_rejected_total', { adapter: raw.adapter, code: 'GW_OUTBOX_FULL' });
        opts.metrics.inc('ewml_outbox_full_total');
        return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full', hl7ErrorCode: '207' };
      default:
        return outcome satisfies never;
    }
  }

  /** Maps one row: its records (the outbox seals them), or the dead letter that keeps it (sealed here); `committed` collects them for `onCommitted`. */
  function mapRow(page: RawPage, row: RawRow, committed?: CanonicalRecord[]): SourceRowEntry {
    const hash = row.hash ?? rowHash(row.data);
    const entry: SourceRowEntry = { pk: row.pk, stream: row.stream, hash, records: [] };
    const fail = (code: ErrorCode, reason: string): SourceRowEntry => {
      const dlId = deterministicId('dead-letter', page.adapter, row.stream ?? page.stream, row.pk, hash);
      opts.metrics.inc('ewml_intake_rejected_total', { adapter: page.adapter, code });
      log.warn(
        { code, deadLetterId: dlId, adapter: page.adapter, stream: row.stream ?? page.stream },
        'source row rejected; kept in dead letters',
      );
      const deadLetter: DeadLetterEntry = {
        id: dlId,
        kind: 'input',
        createdAt: opts.clock.now(),
        adapter: page.adapter,
        format: page.format,
        code,
        reason,
        location: `${row.stream ?? page.stream}#${row.pk}`.slice(0, 200),
        // the row with its stream and key, so a replay after a mapping fix finds its mapper
        sealed: opts.sealer.seal(
          dlId,
          Buffer.from(
            `{"stream":${JSON.stringify(row.stream ?? page.stream)},"pk":${JSON.stringify(row.pk)},"data":${rowJson(row.data)}}`,
            'utf8',
          ),
        ),
      };
      return { ...entry, deadLetter };
    };
    let built: MapStageResult;
    try {
      built = stage.finish(page.map(row));
    } catch (e) {
      log.error({ err: e, adapter: page.adapter, stream: row.stream ?? page.stream }, 'row mapper threw');
      return fail('GW_MAP_FAILED', 'mapper failed unexpectedly');
    }
    const firstError = built.mapped.issues.find((i) => i.severity === 'error');
    if (firstError) return fail('GW_MAP_FAILED', firstError.message);
    if (built.invalid.length) {
      const first = built.invalid[0];
      return fail(
        'GW_VALIDATION_FAILED',
        `${first.type} record ${first.path} ${first.problem}${built.invalid.length > 1 ? ` (+${built.invalid.length - 1} more)` : ''}`,
      );
    }
    const lane = { nowMs: opts.clock.now(), timezone, firstLoad: page.firstLoad === true };
    entry.records = outboxRows(built.records, keyOf, (r) => recordLane(r, lane));
    if (committed) for (const r of built.records) committed.push(r.record);
    return entry;
  }

  async function intakePage(page: RawPage): Promise<PageIntakeResult> {
    if (opts.diskGuard && !opts.diskGuard.admits()) {
      const { hl7ErrorCode: _, ...r } = diskLow(page.adapter);
      return r;
    }
    // adapters hash their rows already: the row is serialised again only for a dead letter
    const committed: CanonicalRecord[] | undefined = opts.onCommitted ? [] : undefined;
    const rows = page.rows.map((r) => mapRow(page, r, committed));
    // nothing of the page or its mapped rows is used after the commit is awaited (only these, and
    // the records for onCommitted when it is set), so this frame does not keep them alive through
    // it: the outbox holds what it commits
    const { adapter, stream } = page;
    const records = rows.reduce((n, r) => n + r.records.reduce((k, x) => k + (x.recordIds?.length ?? 1), 0), 0);
    let out;
    try {
      out = await opts.outbox.enqueuePage({ stream, rows, cursor: page.cursor, trackRows: page.trackRows });
    } catch (e) {
      const { hl7ErrorCode: _, ...r } = writeFailed(e, adapter, { stream });
      return r;
    }
    if (out.outcome === 'full') {
      opts.metrics.inc('ewml_intake_rejected_total', { adapter, code: 'GW_OUTBOX_FULL' });
      opts.metrics.inc('ewml_outbox_full_total');
      return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
    }
    opts.metrics.inc('ewml_intake_total', { adapter, outcome: 'accepted' }, out.written);
    opts.metrics.inc('ewml_intake_total', { adapter, outcome: 'duplicate' }, out.unchanged);
    if (out.written > 0) {
      opts.metrics.inc('ewml_records_enqueued_total', undefined, records);
      opts.bus.emit('intake.accepted', { adapter, records });
      opts.onEnqueued?.();
    }
    if (committed && committed.length > 0) seeCommitted(committed);
    return { status: 'accepted', written: out.written, unchanged: out.unchanged, deadLettered: out.deadLettered };
  }

  return {
    intake,
    intakePage,
    setCodecs(list) {
      codecs = new Map(list.map((c) => [c.format, c]));
    },
    async replay(id) {
      const dl = opts.outbox.getDeadLetter(id);
      if (!dl) return undefined;
      if (dl.kind === 'record') {
        if (opts.diskGuard && !opts.diskGuard.admits()) return diskLow(dl.adapter);
        const outcome = await opts.outbox.enqueue({
          records: [
            {
              id: dl.id,
              type: dl.recordType ?? 'unknown',
              partitionKey: dl.partitionKey ?? dl.id,
              sealed: dl.sealed,
              recordIds: dl.recordIds,
            },
          ],
        });
        if (outcome === 'full') return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
        await opts.outbox.removeDeadLetter(id);
        opts.onEnqueued?.();
        return { status: 'accepted', recordIds: dl.recordIds ?? [dl.id] };
      }
      const text = opts.sealer.open(id, dl.sealed).toString('utf8');
      const result = await intake({ adapter: dl.adapter, format: dl.format, text });
      if (result.status !== 'rejected' || result.deadLetterId !== id) {
        if (result.status !== 'rejected' || result.retry === 'permanent') await opts.outbox.removeDeadLetter(id);
      }
      return result;
    },
  };
}
