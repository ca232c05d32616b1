/** The lane rule (gateway/pipeline/record-lane.ts): exact lanes for known records, and the pipeline queueing rows in them. */
import { describe, expect, it } from 'vitest';
import { deterministicId } from '../../../adapters/canonical/record-id.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import type { RawPage, RawRow, SourceCodec } from '../../../adapters/contracts.ts';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { createIntakePipeline } from '../../../gateway/pipeline/intake-pipeline.ts';
import { highestLane, laneWhenNew, recordLane, type LaneContext } from '../../../gateway/pipeline/record-lane.ts';

/** 2026-12-03 10:00 in New York (15:00 UTC). */
const NOW = Date.UTC(2026, 11, 3, 15, 0);
const ny: LaneContext = { nowMs: NOW, timezone: 'America/New_York', firstLoad: false };
const firstLoad: LaneContext = { ...ny, firstLoad: true };

function record(type: CanonicalRecord['type'], data: Record<string, unknown>, o: Partial<CanonicalRecord> = {}): CanonicalRecord {
  return {
    id: `${type}-1`,
    type,
    schemaVersion: '1.0',
    op: 'upsert',
    tenantId: 't',
    practiceId: 'p',
    gatewayId: 'g',
    source: { system: 'PMS', adapter: 'sql', sourceId: '1' },
    occurredAt: '2026-12-03T14:00:00Z',
    observedAt: '2026-12-03T15:00:00Z',
    data,
    ...o,
  };
}
const appt = (start: string) => record('appointment', { start });
const rx = (issuedAt: string, type: 'spectacle-rx' | 'contact-lens-rx' = 'spectacle-rx') => record(type, { issuedAt });

describe('record lanes', () => {
  it("puts today's and tomorrow's appointments (practice time) in the urgent lane, first load or not", () => {
    expect(recordLane(appt('2026-12-03T09:00:00-05:00'), ny)).toEqual({ lane: 'urgent' });
    expect(recordLane(appt('2026-12-04T16:30:00-05:00'), ny)).toEqual({ lane: 'urgent' });
    expect(recordLane(appt('2026-12-03'), ny)).toEqual({ lane: 'urgent' });
    expect(recordLane(appt('2026-12-04T09:00:00-05:00'), firstLoad)).toEqual({ lane: 'urgent' });
    // the day after tomorrow, and yesterday
    expect(recordLane(appt('2026-12-05T09:00:00-05:00'), ny)).toEqual({ lane: 'live' });
    expect(recordLane(appt('2026-12-02T16:00:00-05:00'), ny)).toEqual({ lane: 'live' });
    expect(recordLane(appt('2026-12-05T09:00:00-05:00'), firstLoad)).toEqual({ lane: 'backfill' });
  });

  it("decides today in the practice's zone, not UTC's", () => {
    // 2026-12-05 02:00 UTC is 2026-12-04 21:00 in New York: tomorrow there, the day after in UTC
    expect(recordLane(appt('2026-12-05T02:00:00Z'), ny)).toEqual({ lane: 'urgent' });
    expect(recordLane(appt('2026-12-05T02:00:00Z'), { ...ny, timezone: 'UTC' })).toEqual({ lane: 'live' });
  });

  it('marks a recent prescription urgent when new, and sends old ones and deletes to their plain lane', () => {
    expect(recordLane(rx('2026-12-01'), ny)).toEqual({ lane: 'live', laneWhenNew: 'urgent' });
    expect(recordLane(rx('2026-12-01', 'contact-lens-rx'), ny)).toEqual({ lane: 'live', laneWhenNew: 'urgent' });
    expect(recordLane(rx('2026-11-20'), firstLoad)).toEqual({ lane: 'backfill', laneWhenNew: 'urgent' });
    expect(recordLane(rx('2024-05-01'), ny)).toEqual({ lane: 'backfill' });
    expect(recordLane(rx('2024-05-01'), firstLoad)).toEqual({ lane: 'backfill' });
    expect(recordLane(record('spectacle-rx', { issuedAt: '2026-12-01' }, { op: 'delete' }), ny)).toEqual({ lane: 'live' });
  });

  it('sends a first load and history older than 30 days to the backfill lane, the rest live', () => {
    const patient = (occurredAt: string) => record('patient', { identifiers: [] }, { occurredAt });
    expect(recordLane(patient('2026-12-03T14:00:00Z'), ny)).toEqual({ lane: 'live' });
    expect(recordLane(patient('2026-12-03T14:00:00Z'), firstLoad)).toEqual({ lane: 'backfill' });
    expect(recordLane(patient('2026-11-04T14:00:00Z'), ny)).toEqual({ lane: 'live' });
    expect(recordLane(patient('2026-11-02T14:00:00Z'), ny)).toEqual({ lane: 'backfill' });
    // an observation's own date decides, not the envelope's
    expect(recordLane(record('eye-exam-observation', { observedAt: '2026-10-01T10:00:00Z' }), ny)).toEqual({ lane: 'backfill' });
    expect(recordLane(appt('2026-09-01T09:00:00-04:00'), ny)).toEqual({ lane: 'backfill' });
    // a date that cannot be read is not pushed behind a backlog
    expect(recordLane(appt('soon'), ny)).toEqual({ lane: 'live' });
  });

  it('gives a bundle the most urgent lane of its records, and a pushed message its new-record lane', () => {
    expect(highestLane([{ lane: 'backfill' }, { lane: 'live', laneWhenNew: 'urgent' }])).toEqual({ lane: 'live', laneWhenNew: 'urgent' });
    expect(highestLane([{ lane: 'urgent' }, { lane: 'backfill', laneWhenNew: 'urgent' }])).toEqual({ lane: 'urgent' });
    expect(highestLane([{ lane: 'backfill' }, { lane: 'backfill' }])).toEqual({ lane: 'backfill' });
    expect(highestLane([{ lane: 'backfill' }, {}])).toEqual({ lane: 'live' });
    expect(laneWhenNew({ lane: 'live', laneWhenNew: 'urgent' })).toEqual({ lane: 'urgent' });
    expect(laneWhenNew({ lane: 'backfill' })).toEqual({ lane: 'backfill' });
  });
});

describe('intake pipeline lanes', () => {
  async function setup() {
    const clock = createManualClock(NOW);
    const sealer = createRecordSealer(Buffer.alloc(32, 3));
    const outbox = createMemoryOutbox({ maxBytes: 1 << 24, clock, sealer });
    await outbox.open();
    const pipeline = createIntakePipeline({
      codecs: [createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>],
      outbox,
      sealer,
      validator: createRecordValidator(),
      clock,
      bus: createEventBus(),
      metrics: createMetrics(),
      logger: createSilentLogger(),
      identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
      timezone: 'America/New_York',
    });
    return { pipeline, outbox };
  }
  const apptRow = (pk: string, start: string): RawRow => ({ pk, data: { kind: 'appt', start } });
  const rxRow = (pk: string, issuedAt: string): RawRow => ({ pk, data: { kind: 'rx', issuedAt } });
  const page = (rows: RawRow[], o: { firstLoad?: boolean; stream?: string } = {}): RawPage => ({
    adapter: 'db',
    format: 'sql-row',
    stream: o.stream ?? 'pms/rows',
    rows,
    firstLoad: o.firstLoad,
    map: (row) => {
      const patient = { system: 'PMS', value: `MRN-${row.pk}` };
      const id = deterministicId('lane-test', row.pk, String(row.data.start ?? row.data.issuedAt));
      labels.set(id, row.pk);
      const common = {
        id,
        op: 'upsert' as const,
        source: { system: 'PMS', adapter: 'sql', sourceId: row.pk },
        occurredAt: '2026-12-03T14:00:00Z',
        partitionKey: `patient:${row.pk}`,
      };
      if (row.data.kind === 'appt')
        return {
          records: [
            {
              ...common,
              type: 'appointment' as const,
              data: { patient, status: 'booked', start: row.data.start, visitType: { code: 'EXAM' } },
            },
          ],
          issues: [],
        };
      const eye = { sphere: -1.25 };
      return {
        records: [
          {
            ...common,
            type: 'spectacle-rx' as const,
            data: { patient, issuedAt: row.data.issuedAt, cylinderConvention: 'minus', right: eye, left: eye },
          },
        ],
        issues: [],
      };
    },
  });
  /** Record id → its row's pk, to read claims by row. */
  const labels = new Map<string, string>();
  const claimed = (outbox: Awaited<ReturnType<typeof setup>>['outbox']) => outbox.claim(100).rows.map((r) => r.id);
  const claimedPks = (outbox: Awaited<ReturnType<typeof setup>>['outbox']) => claimed(outbox).map((id) => labels.get(id));

  it("queues a first load's rows behind live ones, except today's appointments and new prescriptions", async () => {
    const { pipeline, outbox } = await setup();
    expect(
      await pipeline.intakePage(
        page(
          [
            apptRow('1', '2027-01-10T09:00:00-05:00'),
            apptRow('2', '2026-12-03T11:00:00-05:00'),
            rxRow('3', '2025-01-02'),
            rxRow('4', '2026-11-30'),
            apptRow('5', '2026-06-01T09:00:00-04:00'),
          ],
          { firstLoad: true },
        ),
      ),
    ).toMatchObject({ status: 'accepted', written: 5 });
    expect(await pipeline.intakePage(page([apptRow('6', '2027-02-01T09:00:00-05:00')], { stream: 'pms/other' }))).toMatchObject({
      written: 1,
    });
    expect(outbox.stats().lanes).toMatchObject({ urgent: { rows: 2 }, live: { rows: 1 }, backfill: { rows: 3 } });
    expect(claimedPks(outbox)).toEqual(['2', '4', '6', '1', '3', '5']);
  });

  it('a prescription row seen again with a change is not urgent: only its first sight is', async () => {
    const { pipeline, outbox } = await setup();
    await pipeline.intakePage(page([rxRow('1', '2026-12-01')]));
    await pipeline.intakePage(page([apptRow('2', '2027-03-01T09:00:00-05:00')], { stream: 'pms/other' }));
    const first = claimed(outbox);
    expect(first.map((id) => labels.get(id))).toEqual(['1', '2']);
    await outbox.ack(first);
    await pipeline.intakePage(page([apptRow('3', '2027-03-02T09:00:00-05:00')], { stream: 'pms/other' }));
    await pipeline.intakePage(page([rxRow('1', '2026-12-02')]));
    expect(claimedPks(outbox)).toEqual(['3', '1']);
  });
});
