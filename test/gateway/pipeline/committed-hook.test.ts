/** `onCommitted` sees a commit's canonical records after the commit resolved, and only then. */
import { describe, expect, it } from 'vitest';
import { deterministicId } from '../../../adapters/canonical/record-id.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import type { RawPage, SourceCodec } from '../../../adapters/contracts.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { createIntakePipeline } from '../../../gateway/pipeline/intake-pipeline.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';

async function setup(onCommitted?: (r: readonly CanonicalRecord[]) => void, maxBytes = 1 << 24) {
  const clock = createManualClock();
  const sealer = createRecordSealer(Buffer.alloc(32, 3));
  const outbox = createMemoryOutbox({ maxBytes, clock, sealer });
  await outbox.open();
  const seen: Array<{ ids: string[]; queued: number }> = [];
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
    onCommitted:
      onCommitted ??
      ((records) => {
        // the commit has resolved: the rows are in the outbox already
        seen.push({ ids: records.map((r) => r.id), queued: outbox.stats().pending });
      }),
  });
  return { pipeline, outbox, seen };
}

const idOf = (pk: string) => deterministicId('committed-hook-test', pk);
const page = (pks: string[]): RawPage => ({
  adapter: 'db',
  format: 'sql-row',
  stream: 'patients',
  rows: pks.map((pk) => ({ pk, data: { mrn: pk } })),
  map: (row) => ({
    records: [
      {
        id: idOf(row.pk),
        type: 'patient',
        op: 'upsert',
        source: { system: 'DB', adapter: 'sql', sourceId: row.pk },
        occurredAt: '2026-01-01T00:00:00Z',
        partitionKey: `patient:${row.pk}`,
        data: { identifiers: [{ system: 'DB', value: String(row.data.mrn) }] },
      },
    ],
    issues: [],
  }),
});

describe('intake pipeline onCommitted', () => {
  it("hands a message's records over after its commit, and nothing for a resend or a rejection", async () => {
    const { pipeline, seen } = await setup();
    const r = await pipeline.intake({ adapter: 'hl7v2', format: 'hl7v2', text: adtA04({ id: 'HK1' }) });
    expect(r.status).toBe('accepted');
    expect(seen).toEqual([{ ids: (r as { recordIds: string[] }).recordIds, queued: 1 }]);
    expect((await pipeline.intake({ adapter: 'hl7v2', format: 'hl7v2', text: adtA04({ id: 'HK1' }) })).status).toBe('duplicate');
    const bad = adtA04({ id: 'HK2' }).replace('MRN001^^^CLINIC^MR', '');
    expect((await pipeline.intake({ adapter: 'hl7v2', format: 'hl7v2', text: bad })).status).toBe('rejected');
    expect(seen).toHaveLength(1);
  });

  it("hands a page's records over after its commit, unchanged rows again", async () => {
    const { pipeline, seen } = await setup();
    expect(await pipeline.intakePage(page(['1', '2']))).toMatchObject({ status: 'accepted', written: 2 });
    expect(await pipeline.intakePage(page(['1', '2', '3']))).toMatchObject({ status: 'accepted', written: 1, unchanged: 2 });
    expect(seen.map((s) => s.ids)).toEqual([
      [idOf('1'), idOf('2')],
      [idOf('1'), idOf('2'), idOf('3')],
    ]);
  });

  it('sees nothing of a page the outbox refused (full)', async () => {
    const { pipeline, seen } = await setup(undefined, 10);
    expect(await pipeline.intakePage(page(['1']))).toMatchObject({ status: 'rejected', code: 'GW_OUTBOX_FULL' });
    expect(seen).toEqual([]);
  });

  it('answers the source from the commit alone when the hook throws', async () => {
    const { pipeline, outbox } = await setup(() => {
      throw new Error('hook failed');
    });
    expect((await pipeline.intake({ adapter: 'hl7v2', format: 'hl7v2', text: adtA04({ id: 'HK3' }) })).status).toBe('accepted');
    expect(await pipeline.intakePage(page(['9']))).toMatchObject({ status: 'accepted', written: 1 });
    expect(outbox.stats().pending).toBe(2);
  });
});
