/**
 * The host signals on a real gateway: the system clock set forward and back (the manual clock's
 * `jump`: the wall clock moves, timers and the monotonic clock do not, as with Node's timers), the
 * gateway's memory and CPU and the PC's (a sampler the test drives, since a test cannot make the
 * PC short of memory; the real sampler's figures are checked against node:os), and records that
 * wait in the outbox while the sink is connected.
 */
import { totalmem } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { connectMllp } from '../../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../../adapters/hl7v2/mllp-listener.ts';
import { sampleHost, type HostSample } from '../../../agents/health/health-agent.ts';
import type { Sink } from '../../../gateway/sinks/sink.ts';
import { GatewayError } from '../../../gateway/errors.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

const HOUR = 3_600_000;
const MiB = 1024 * 1024;
let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const steps = async (n: number) => {
  for (let i = 0; i < n; i++) await rig!.step(POLL_MS);
};
const codes = () => rig!.findings.map((f) => `${f.code} ${f.subject} ${f.severity}`);

describe('health monitor: the system clock jumps', () => {
  it('names a jump forward and one back, raises no false silence across them, and clears an hour after the last', async () => {
    rig = await startHealthRig();
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    // a feed with a 2-minute rhythm for 40 minutes
    for (let i = 0; i < 20; i++) {
      if (i > 0) await steps(2);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    rig.clock.jump(3 * HOUR);
    await steps(1);
    expect(codes()).toEqual(['AGENT_HEALTH_CLOCK_JUMPED clock warning']);
    const f = rig.findings[0];
    expect(f.summary).toBe(
      `the system clock jumped forward (set by a person or a time service, or the machine was asleep) by 3 h 0 min (wall clock now ${new Date(rig.clock.now()).toISOString()}): check the time service (chrony or systemd-timesyncd, w32time on Windows) and run \`eyewear-gateway doctor\`, whose clock check compares with the cloud`,
    );
    // by wall-clock arithmetic the feed has been quiet 3 h; moved by the jump, 1 min: not silent
    expect(await client.send(adtA04())).toContain('MSA|AA|');
    await steps(2);
    rig.clock.jump(-2 * HOUR);
    await steps(1);
    const report = rig.gw.parts.agents.report('health') as { clockJumps: Array<{ byMs: number }> };
    expect(report.clockJumps.map((j) => j.byMs)).toEqual([3 * HOUR, -2 * HOUR]);
    // the same finding, silently updated (same severity): no second alert
    expect(codes()).toEqual(['AGENT_HEALTH_CLOCK_JUMPED clock warning']);
    const active = (rig.gw.status() as { agents: { active: Array<{ code: string; summary: string }> } }).agents.active;
    expect(active.map((a) => a.code)).toEqual(['AGENT_HEALTH_CLOCK_JUMPED']);
    // the feed goes on at its rhythm: still no silence, and an hour after the last jump the finding clears
    for (let i = 0; i < 30; i++) {
      await steps(2);
      expect(await client.send(adtA04())).toContain('MSA|AA|');
    }
    expect(rig.cleared.map((c) => c.code)).toEqual(['AGENT_HEALTH_CLOCK_JUMPED']);
    expect(codes()).toEqual(['AGENT_HEALTH_CLOCK_JUMPED clock warning']);
    await client.close();
  });

  it('takes a correction below jumpMs as no jump', async () => {
    rig = await startHealthRig();
    await steps(2);
    rig.clock.jump(59_000);
    await steps(2);
    rig.clock.jump(-59_000);
    await steps(2);
    expect(rig.findings).toEqual([]);
  });
});

describe('health monitor: memory and CPU', () => {
  /** A host the test sets: figures at each poll. */
  const fakeHost = () => {
    const h: HostSample = {
      rssBytes: 100 * MiB,
      freeMemBytes: 2048 * MiB,
      totalMemBytes: 4096 * MiB,
      load1: 0.5,
      cores: 2,
      processCpuMicros: 0,
    };
    return { h, sample: () => ({ ...h }) };
  };

  it('names the gateway’s memory after 5 polls over 512 MiB, keeps it within the 10% margin, and clears under it', async () => {
    const host = fakeHost();
    rig = await startHealthRig({}, { agent: { host: host.sample } });
    host.h.rssBytes = 600 * MiB;
    await steps(4);
    expect(rig.findings).toEqual([]);
    await steps(1);
    expect(rig.findings).toEqual([
      {
        agent: 'health',
        code: 'AGENT_HEALTH_MEMORY_HIGH',
        severity: 'warning',
        subject: 'gateway',
        summary:
          'the gateway holds 600 MiB of memory (over 512 MiB for 5 polls): see what it is doing in `eyewear-gateway status` (a large import or backlog), and tell the cloud team with GET /agents/health; a service restart gives it back',
      },
    ]);
    host.h.rssBytes = 480 * MiB; // under 512 but over 460.8 (the margin): it stays
    await steps(3);
    expect(rig.cleared).toEqual([]);
    host.h.rssBytes = 400 * MiB;
    await steps(1);
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_MEMORY_HIGH', subject: 'gateway' }]);
    expect(rig.findings).toHaveLength(1);
  });

  it('names the PC short of memory and overloaded, and the gateway’s CPU share, each with its figures', async () => {
    const host = fakeHost();
    rig = await startHealthRig({}, { agent: { host: host.sample } });
    host.h.freeMemBytes = 150 * MiB; // 3.7% of 4 GiB
    host.h.load1 = 5; // 2.5 per core
    for (let i = 0; i < 10; i++) {
      host.h.processCpuMicros += 0.95 * POLL_MS * 1000; // 95% of a core over each poll
      await steps(1);
    }
    expect(codes()).toEqual([
      'AGENT_HEALTH_MEMORY_HIGH host warning',
      'AGENT_HEALTH_CPU_BUSY gateway warning',
      'AGENT_HEALTH_CPU_BUSY host warning',
    ]);
    const summary = (code: string, subject: string) => rig!.findings.find((f) => f.code === code && f.subject === subject)!.summary;
    expect(summary('AGENT_HEALTH_MEMORY_HIGH', 'host')).toBe(
      "the PC is short of memory: 150 MiB available of 4096 (3.7%, under 5% for 5 polls), 100 MiB of it the gateway's: close what else uses memory on the PC, or add memory",
    );
    expect(summary('AGENT_HEALTH_CPU_BUSY', 'gateway')).toBe(
      'the gateway has used 95% of a CPU core (over 90% for 10 polls): a large first load or backlog takes CPU for a while (its progress is in `eyewear-gateway status`); if it lasts with nothing to import, tell the cloud team',
    );
    expect(summary('AGENT_HEALTH_CPU_BUSY', 'host')).toBe(
      "the PC is overloaded: a load of 2.50 per core over 2 core(s) (over 2 for 10 polls), 95% of a core the gateway's: other programs load the PC, and the PMS may answer slowly too",
    );
    // all back to normal: all three clear on the next poll
    host.h.freeMemBytes = 2048 * MiB;
    host.h.load1 = 0.2;
    await steps(1);
    expect(rig.cleared.map((c) => `${c.code} ${c.subject}`).sort()).toEqual([
      'AGENT_HEALTH_CPU_BUSY gateway',
      'AGENT_HEALTH_CPU_BUSY host',
      'AGENT_HEALTH_MEMORY_HIGH host',
    ]);
  });

  it('reports the real host figures in GET /agents/health', async () => {
    rig = await startHealthRig({}, { agent: { host: sampleHost } });
    await steps(2);
    const host = (rig.gw.parts.agents.report('health') as { host: Record<string, number> }).host;
    expect(host.totalMiB).toBe(Math.round(totalmem() / MiB));
    expect(host.rssMiB).toBeGreaterThan(20);
    expect(host.freeMiB).toBeGreaterThan(0);
    expect(host.freeMiB).toBeLessThanOrEqual(host.totalMiB);
    expect(host.cores).toBeGreaterThanOrEqual(1);
    expect(host.gatewayPercentOfCore).toBeGreaterThanOrEqual(0);
  });
});

describe('health monitor: records wait though the sink is connected', () => {
  it('names the stuck outbox after 15 min, an error after an hour, and clears when the cloud acknowledges', async () => {
    // a sink that is connected and answers "retry later" to every batch until told otherwise
    let refuse = true;
    const delivered: string[] = [];
    const sink: Sink = {
      kind: 'test',
      async start() {},
      async stop() {},
      health: () => ({ connected: true }),
      async deliver(batch) {
        if (refuse) throw new GatewayError('GW_SINK_UNREACHABLE', 'cloud answered 503');
        delivered.push(...batch.ids);
        return { rejected: [] };
      },
    };
    rig = await startHealthRig(
      { relay: { backoffInitialMs: 1000, backoffMaxMs: 60_000 } },
      { sinks: [{ kind: 'file', create: () => sink }] },
    );
    const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
    const client = await connectMllp('127.0.0.1', port);
    expect(await client.send(adtA04())).toContain('MSA|AA|');
    await client.close();
    await steps(15);
    expect(codes()).toEqual([]);
    await steps(1);
    expect(codes()).toEqual(['AGENT_HEALTH_OUTBOX_STUCK outbox warning']);
    await steps(45);
    expect(codes()).toEqual(['AGENT_HEALTH_OUTBOX_STUCK outbox warning', 'AGENT_HEALTH_OUTBOX_STUCK outbox error']);
    refuse = false;
    for (let i = 0; i < 5 && !rig.cleared.length; i++) {
      await steps(1);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(delivered.length).toBeGreaterThan(0);
    expect(rig.cleared.map((c) => c.code)).toEqual(['AGENT_HEALTH_OUTBOX_STUCK']);
  });
});
