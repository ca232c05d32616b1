/**
 * A recorded fault on a real gateway: the MLLP listener cannot start because another program holds
 * its port (EADDRINUSE). The monitor names AGENT_HEALTH_SOURCE_FAILING once, restarts the listener
 * within its budget (3 an hour, back-off 5 → 10 → 20 → 40 min) and never beyond it, records each
 * restart with the state before and after, and clears the finding once the port is free again.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RemedyRecord } from '../../../agents/health/health-agent.ts';
import { freePort } from '../../support/net.ts';
import { POLL_MS, START, startHealthRig, type HealthRig } from './health-gateway.ts';

const MIN = 60_000;
const at = (minutes: number) => new Date(START + minutes * MIN).toISOString();
let rig: HealthRig | undefined;
let squatter: Server | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
  await new Promise<void>((r) => (squatter ? squatter.close(() => r()) : r()));
  squatter = undefined;
});

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

describe('health monitor: a source fails to start', () => {
  it('restarts it within budget and back-off, not beyond, and clears once the cause is gone', async () => {
    const held = await holdPort();
    squatter = held.server;
    rig = await startHealthRig({ hl7: { host: '127.0.0.1', port: held.port } });
    expect(rig.gw.parts.sources.state('hl7v2')).toBe('failed');
    for (let m = 1; m <= 120; m++) await rig.step(POLL_MS);

    const report = rig.gw.parts.agents.report('health') as {
      remedies: RemedyRecord[];
      findings: Array<{ code: string; evidence: Record<string, unknown> }>;
    };
    // restarts at 2 (failing for failingAfterMs), 7 (+5), 17 (+10); at 37 the hour's budget of 3 is spent;
    // 62 (the one at 2 left the hour: 7, 17 and 62 in it), 102 (+40); the next (+60, capped) would be at 162
    expect(report.remedies.map((r) => [r.at, r.action, r.subject, r.outcome, r.usedInHour])).toEqual([
      [at(2), 'restartSource', 'hl7v2', 'not-healed', 1],
      [at(7), 'restartSource', 'hl7v2', 'not-healed', 2],
      [at(17), 'restartSource', 'hl7v2', 'not-healed', 3],
      [at(62), 'restartSource', 'hl7v2', 'not-healed', 3],
      [at(102), 'restartSource', 'hl7v2', 'not-healed', 2],
    ]);
    for (const r of report.remedies) {
      expect(r.before).toEqual({ state: 'failed', status: 'down', error: 'EADDRINUSE' });
      expect(r.after).toEqual({ state: 'failed', status: 'down', error: 'EADDRINUSE' });
    }
    // every restart went through the control surface, by the agent, and no other
    expect(rig.controls.filter((c) => c.by === 'agent:health').map((c) => [c.component, c.action, c.outcome])).toEqual(
      Array.from({ length: 5 }, () => ['adapter:hl7v2', 'restart', 'done']),
    );
    // one finding for two hours of the same fault, with what a person must do
    const failing = rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_FAILING');
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatchObject({ severity: 'error', subject: 'hl7v2' });
    expect(failing[0].summary).toBe(
      `source hl7v2 is failing to start (EADDRINUSE) since ${at(0)}; restarting it now; what to do: another program holds its port: free the port or change it in the config`,
    );
    expect(report.findings.map((f) => f.evidence)).toEqual([
      { source: 'hl7v2', state: 'failed', error: 'EADDRINUSE', failingSince: at(0), restarts: 2, restartsPerHour: 3 },
    ]);
    expect(rig.gw.parts.agents.report('health')).toMatchObject({
      findings: [
        {
          summary: `source hl7v2 is failing to start (EADDRINUSE) since ${at(0)}; next restart at ${at(162)}; what to do: another program holds its port: free the port or change it in the config`,
        },
      ],
    });

    // the other program lets go of the port: the listener comes up (by the supervisor's retry) and the finding clears
    await new Promise<void>((r) => held.server.close(() => r()));
    squatter = undefined;
    for (let m = 0; m < 3; m++) await rig.step(POLL_MS);
    expect(rig.gw.parts.sources.state('hl7v2')).toBe('running');
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_SOURCE_FAILING', subject: 'hl7v2' }]);
    expect((rig.gw.status() as { agents: { active: unknown[] } }).agents.active).toEqual([]);
    expect((rig.gw.parts.agents.report('health') as { remedies: unknown[] }).remedies).toHaveLength(5);
  });

  it('with restartsPerHour 0 it only reports', async () => {
    const held = await holdPort();
    squatter = held.server;
    rig = await startHealthRig({ hl7: { host: '127.0.0.1', port: held.port }, agents: { health: { source: { restartsPerHour: 0 } } } });
    for (let m = 1; m <= 30; m++) await rig.step(POLL_MS);
    expect(rig.controls.filter((c) => c.by === 'agent:health')).toEqual([]);
    expect(rig.findings.map((f) => [f.code, f.subject])).toEqual([['AGENT_HEALTH_SOURCE_FAILING', 'hl7v2']]);
    expect(rig.findings[0].summary).toContain('restart budget spent (0 of 0 this hour)');
  });
});

describe('health monitor: a database source pointed at a closed port', () => {
  it('names ECONNREFUSED with what to do, and restarts it within budget', async () => {
    const closed = await freePort();
    rig = await startHealthRig({
      hl7: { enabled: false },
      databases: [
        {
          id: 'pms',
          engine: 'postgres',
          host: '127.0.0.1',
          port: closed,
          user: 'reader',
          database: 'pms',
          password: 'pw',
          profile: 'practice-studio',
        },
      ],
    });
    expect(rig.gw.parts.sources.state('pms')).toBe('failed');
    for (let m = 1; m <= 60; m++) await rig.step(POLL_MS);
    const report = rig.gw.parts.agents.report('health') as { remedies: RemedyRecord[] };
    expect(report.remedies.map((r) => [r.at, r.subject, r.outcome, r.before.error, r.after.error])).toEqual([
      [at(2), 'pms', 'not-healed', 'ECONNREFUSED', 'ECONNREFUSED'],
      [at(7), 'pms', 'not-healed', 'ECONNREFUSED', 'ECONNREFUSED'],
      [at(17), 'pms', 'not-healed', 'ECONNREFUSED', 'ECONNREFUSED'],
    ]);
    expect(rig.findings.map((f) => [f.code, f.subject, f.severity])).toEqual([['AGENT_HEALTH_SOURCE_FAILING', 'pms', 'error']]);
    expect(rig.findings[0].summary).toContain(
      '(ECONNREFUSED) since 2026-03-02T08:00:00.000Z; restarting it now; what to do: the PMS server or database is down or unreachable',
    );
  });
});
