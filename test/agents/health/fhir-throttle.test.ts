/**
 * A recorded fault on the test FHIR server: it answers every other request 429 with Retry-After.
 * The source waits each one out (nothing is lost), and the monitor names
 * AGENT_HEALTH_SOURCE_THROTTLED from the source's `throttled` count, proposes a poll interval twice
 * as long — once, kept in its history, applied only when accepted — and clears the finding once
 * the server stops throttling. The source and the monitor run on the manual clock.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RemedyRecord } from '../../../agents/health/health-agent.ts';
import { POLL_MS } from './health-gateway.ts';
import { startThrottledFhir, type ThrottledFhir } from './throttled-fhir.ts';

let world: ThrottledFhir | undefined;
afterAll(async () => {
  await world?.stop();
});

describe('health monitor: the FHIR server throttles', () => {
  it('names the throttling, proposes a longer interval once, and records it', async () => {
    world = await startThrottledFhir();
    const { rig, throttle } = world;
    // the source has connected (its start waits on the manual clock, which nothing moves during it): now the server throttles
    throttle.every = 2;
    const detail = () => (rig.gw.status() as { adapters: Record<string, { detail?: Record<string, unknown> }> }).adapters.ehr?.detail ?? {};
    const finding = () => rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_THROTTLED');
    // the source's retries wait on the manual clock: each step lets them go on
    for (let i = 0; i < 200 && finding().length === 0; i++) {
      rig.clock.advance(1000);
      await new Promise((r) => setTimeout(r, 10));
      if (i % 10 === 9) await rig.step(POLL_MS);
    }
    expect(finding()).toHaveLength(1);
    const throttled = Number(detail().throttled);
    expect(throttled).toBeGreaterThanOrEqual(10);
    expect(finding()[0].summary).toMatch(
      /^source ehr was answered 429 \(too many requests\) \d+ times in the last hour: the server limits how often the gateway may ask; each wait is honoured and nothing is lost, but its reads lag; proposed at .+: fhir\[0\]\.pollIntervalMs 60000 → 120000 ms, applied once accepted \(\/status agents\.proposals\); what to do: accept the longer interval, or ask the vendor for a higher limit and set its rateLimit in the config$/,
    );
    const proposals = (rig.gw.status() as { agents: { proposals: Array<{ path: string; value: unknown; agent: string }> } }).agents
      .proposals;
    expect(proposals.map((p) => [p.agent, p.path, p.value])).toEqual([['health', 'fhir[0].pollIntervalMs', 120_000]]);
    // nothing applied: the source's own figure is still the configured one
    expect(rig.config.fhir[0].pollIntervalMs).toBe(60_000);
    // more throttling within the day: no second proposal, no second alert
    for (let i = 0; i < 60; i++) {
      rig.clock.advance(1000);
      await new Promise((r) => setTimeout(r, 5));
    }
    await rig.step(POLL_MS);
    const remedies = (rig.gw.parts.agents.report('health') as { remedies: RemedyRecord[] }).remedies;
    expect(remedies.map((r) => [r.code, r.action, r.outcome, r.after.proposed, r.after.value])).toEqual([
      ['AGENT_HEALTH_SOURCE_THROTTLED', 'proposeConfigChange', 'proposed', 'fhir[0].pollIntervalMs', 120_000],
    ]);
    expect(finding()).toHaveLength(1);
    // the server stops throttling: an hour on, the finding clears
    throttle.every = 0;
    for (let m = 0; m < 65 && rig.cleared.length === 0; m++) await rig.step(POLL_MS);
    expect(rig.cleared.map((c) => [c.code, c.subject])).toEqual([['AGENT_HEALTH_SOURCE_THROTTLED', 'ehr']]);
  }, 120_000);
});
