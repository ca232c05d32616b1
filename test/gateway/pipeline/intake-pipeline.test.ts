/** Rule 3: input that cannot be mapped is kept, with its reason, and goes through after a mapping fix. */
import { describe, expect, it } from 'vitest';
import { createIntakePipeline } from '../../../gateway/pipeline/intake-pipeline.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';

describe('intake pipeline', () => {
  it('keeps an unmappable message sealed in dead letters and takes it on replay once the mapping is fixed', async () => {
    const clock = createManualClock();
    const sealer = createRecordSealer(Buffer.alloc(32, 5));
    const outbox = createMemoryOutbox({ maxBytes: 1 << 24, clock, sealer });
    await outbox.open();
    const make = (codec: SourceCodec<unknown>) =>
      createIntakePipeline({
        codecs: [codec],
        outbox,
        sealer,
        validator: createRecordValidator(),
        clock,
        bus: createEventBus(),
        metrics: createMetrics(),
        logger: createSilentLogger(),
        identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
      });
    // a message without any patient identifier cannot be mapped
    const msg = adtA04({ id: 'RPL1' }).replace('MRN001^^^CLINIC^MR', '');
    const before = make(createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>);
    const r1 = await before.intake({ adapter: 'hl7v2', format: 'hl7v2', text: msg });
    expect(r1).toMatchObject({ status: 'rejected', code: 'GW_MAP_FAILED', retry: 'permanent' });
    const dl = outbox.listDeadLetters();
    expect(dl).toHaveLength(1);
    expect(Buffer.from(outbox.getDeadLetter(dl[0].id)!.sealed).toString('latin1')).not.toContain('Synthetic');
    // replaying with the same mapping keeps it
    expect(await before.replay(dl[0].id)).toMatchObject({ status: 'rejected' });
    expect(outbox.listDeadLetters()).toHaveLength(1);
    // the "fix": a mapping that finds the chart number (here a codec that supplies it, as a new profile would)
    const fixed = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
    const withPid2 = { ...fixed, parse: (t: string) => fixed.parse(t.replace('PID|1||', 'PID|1||MRN001^^^CLINIC^MR')) };
    const after = make(withPid2);
    const r2 = await after.replay(dl[0].id);
    expect(r2).toMatchObject({ status: 'accepted' });
    expect(outbox.listDeadLetters()).toHaveLength(0);
    const claimed = outbox.claim(10).rows;
    expect(claimed.length).toBeGreaterThanOrEqual(1);
    // stored sealed: no name in the bytes; a row opens with the gateway's key under its own id —
    // a bundle to its records' JSON, one per line, in the order of its record ids
    for (const row of claimed) {
      expect(Buffer.from(row.sealed).toString('latin1')).not.toContain('Synthetic');
      const lines = sealer
        .open(row.id, row.sealed)
        .toString('utf8')
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; type: string });
      if (row.recordIds) {
        expect(row.type).toBe('bundle');
        expect(lines.map((l) => l.id)).toEqual(row.recordIds);
        expect(lines.map((l) => l.type)).toEqual(['patient', 'provider']);
      } else expect(lines).toMatchObject([{ id: row.id, type: row.type }]);
    }
  });
});
