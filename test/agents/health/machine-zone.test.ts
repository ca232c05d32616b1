/**
 * `gateway.timezone` left empty (the default: the machine's zone) on a real gateway with the health
 * monitor on: every intake is heard and learned by local half hour, and nothing throws in the
 * monitor's bus listener (an empty zone name once made each intake log a RangeError).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMllp } from '../../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../../adapters/hl7v2/mllp-listener.ts';
import { localClock } from '../../../agents/sync/local-time.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('health monitor in the machine’s time zone', () => {
  it('hears every intake with gateway.timezone empty, and logs no listener error', async () => {
    rig = await startHealthRig({ gateway: { timezone: '' } });
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const c = await connectMllp('127.0.0.1', port);
    for (let i = 0; i < 3; i++) {
      expect(await c.send(adtA04())).toContain('MSA|AA|');
      await rig.step(POLL_MS);
    }
    await c.close();
    expect(rig.logs.filter((l) => l.includes('event listener threw'))).toEqual([]);
    const report = rig.gw.parts.agents.report('health') as { sources: Array<{ id: string; gaps: number }> };
    expect(report.sources.find((s) => s.id === 'hl7v2')?.gaps).toBe(2);
    // the empty zone is the machine's
    const machine = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const t = Date.UTC(2026, 5, 1, 12, 0);
    expect(localClock('')(t)).toEqual(localClock(machine)(t));
  });
});
