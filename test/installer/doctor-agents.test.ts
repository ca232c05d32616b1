/**
 * doctor's agents check against a real gateway's `/status`: the health monitor's active findings
 * (here: the MLLP port held by another program) become results with the evidence and what to do
 * from the catalogue, and `eyewear-gateway status` lists them; a gateway with the monitor off, or
 * none answering, is a skip that says why.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthCatalogue } from '../../agents/health/catalogue.ts';
import { validateConfig } from '../../config/load.ts';
import type { DoctorContext, GatewayProbe } from '../../installer/doctor/check.ts';
import { agentsCheck, judgeAgents } from '../../installer/doctor/checks/agents.ts';
import { agentLines } from '../../cli/commands/status.ts';
import { POLL_MS, START, startHealthRig, type HealthRig } from '../agents/health/health-gateway.ts';

let rig: HealthRig | undefined;
let squatter: Server | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
  await new Promise<void>((r) => (squatter ? squatter.close(() => r()) : r()));
  squatter = undefined;
});

const holdPort = () =>
  new Promise<{ server: Server; port: number }>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });

/** The least of a doctor context the agents check reads: the config and the gateway's answer. */
function contextOf(config: DoctorContext['config'], probe: GatewayProbe): DoctorContext {
  return { config, gateway: async () => probe } as unknown as DoctorContext;
}

describe('doctor: the agents check', () => {
  it("lists a running gateway's active finding with its evidence and the catalogue's advice", async () => {
    const held = await holdPort();
    squatter = held.server;
    rig = await startHealthRig({ hl7: { host: '127.0.0.1', port: held.port } });
    for (let m = 0; m < 3; m++) await rig.step(POLL_MS);
    const probe: GatewayProbe = { state: 'answering', status: rig.gw.status() as Record<string, unknown>, base: 'http://127.0.0.1' };
    const results = await agentsCheck.run(contextOf(rig.config, probe), new AbortController().signal);
    expect(results).toHaveLength(1);
    const [r] = results;
    expect(r.name).toBe('finding AGENT_HEALTH_SOURCE_FAILING hl7v2');
    expect(r.status).toBe('fail');
    expect(r.todo).toBe(HealthCatalogue.AGENT_HEALTH_SOURCE_FAILING.person);
    expect(r.evidence).toMatch(
      new RegExp(
        `^source hl7v2 is failing to start \\(EADDRINUSE\\) since ${new Date(START).toISOString()}; .+ \\(agent health, first seen ${new Date(START + 2 * POLL_MS).toISOString()}\\)$`,
      ),
    );
    // and `eyewear-gateway status` says the same in its lines
    const lines = agentLines((rig.gw.status() as { agents: Parameters<typeof agentLines>[0] }).agents);
    expect(lines[0]).toBe('agents: health; 1 active finding(s)');
    expect(lines[1]).toMatch(
      new RegExp(
        `^FINDING AGENT_HEALTH_SOURCE_FAILING \\(hl7v2\\) since ${new Date(START + 2 * POLL_MS).toISOString()}: source hl7v2 is failing to start \\(EADDRINUSE\\)`,
      ),
    );
    expect(lines).toHaveLength(2);
    expect(r.data).toEqual({
      agent: 'health',
      code: 'AGENT_HEALTH_SOURCE_FAILING',
      severity: 'error',
      subject: 'hl7v2',
      since: new Date(START + 2 * POLL_MS).toISOString(),
    });
  });

  it('passes a running monitor with nothing found, and names it', async () => {
    rig = await startHealthRig();
    await rig.step(POLL_MS);
    const probe: GatewayProbe = { state: 'answering', status: rig.gw.status() as Record<string, unknown>, base: 'http://127.0.0.1' };
    expect(await agentsCheck.run(contextOf(rig.config, probe), new AbortController().signal)).toEqual([
      { name: 'agents', status: 'pass', evidence: 'no active finding; running: health (from the running gateway)' },
    ]);
  });

  it('skips, saying why, when the monitor is off or no gateway answers', async () => {
    const v = validateConfig({});
    if (!v.ok) throw new Error('defaults invalid');
    expect(judgeAgents(undefined, false)).toEqual([
      {
        name: 'agents',
        status: 'skip',
        evidence: 'no agent runs: agents.health.enabled is false in this config (set it to true for the health monitor)',
      },
    ]);
    const down: GatewayProbe = { state: 'not-answering', reason: 'nothing answers at 127.0.0.1:8480' };
    expect(await agentsCheck.run(contextOf(v.config, down), new AbortController().signal)).toEqual([
      {
        name: 'agents',
        status: 'skip',
        evidence: 'the agents run inside the gateway, which is not answering here (nothing answers at 127.0.0.1:8480)',
      },
    ]);
  });
});
