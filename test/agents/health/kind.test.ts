/**
 * The health agent kind and its config: off by default (a gateway without it has no `agents` in
 * status), built when enabled, and a clock that moves back does not turn into a rhythm of negative
 * gaps or a false silence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectMllp } from '../../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../../adapters/hl7v2/mllp-listener.ts';
import { healthAgentKind } from '../../../agents/health/index.ts';
import { agentKinds } from '../../../agents/index.ts';
import { validateConfig } from '../../../config/load.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

const configOf = (raw: Record<string, unknown>) => {
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.config;
};

let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('health agent kind', () => {
  it('is registered, on by default, not built when turned off, and built with the configured budgets', () => {
    expect(agentKinds.map((k) => k.kind)).toContain('health');
    const byDefault = configOf({});
    expect(byDefault.agents.health).toMatchObject({
      enabled: true,
      pollMs: 30_000,
      source: { restartsPerHour: 3, backoffInitialMs: 300_000 },
    });
    expect(healthAgentKind.create(byDefault)?.id).toBe('health');
    expect(healthAgentKind.create(configOf({ agents: { health: { enabled: false } } }))).toBeUndefined();
    const on = healthAgentKind.create(configOf({ agents: { health: { source: { restartsPerHour: 1 } } } }));
    expect(on?.id).toBe('health');
    expect(validateConfig({ agents: { health: { enabled: true, pollMs: 10 } } }).ok).toBe(false);
  });

  it('a clock moved back an hour starts the rhythm afresh instead of learning negative gaps', async () => {
    rig = await startHealthRig();
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    for (let i = 0; i < 8; i++) {
      if (i > 0) await rig.step(2 * POLL_MS);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    type Src = { id: string; gaps: number; medianGapSeconds?: number };
    const src = () => (rig!.gw.parts.agents.report('health') as { sources: Src[] }).sources.find((s) => s.id === 'hl7v2');
    expect(src()).toMatchObject({ gaps: 7, medianGapSeconds: 120 });
    rig.clock.set(rig.clock.now() - 3_600_000);
    expect(await client.send(adtA04())).toContain('MSA|AA|');
    expect(src()?.gaps).toBe(0);
    for (let m = 0; m < 120; m++) await rig.step(POLL_MS);
    expect(rig.findings).toEqual([]);
    await client.close();
  });
});
