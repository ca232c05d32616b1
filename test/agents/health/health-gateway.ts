/**
 * A real gateway (real MLLP listener, SQLite outbox, admin API on loopback) with the health monitor
 * running on a manual clock: a test moves time with `step` and the monitor polls once per step.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { validateConfig } from '../../../config/load.ts';
import type { GatewayConfig } from '../../../config/schema.ts';
import type { SourceKindEntry } from '../../../adapters/contracts.ts';
import { createManualClock, type ManualClock } from '../../../gateway/clock.ts';
import type { SinkKind } from '../../../gateway/sinks/index.ts';
import { createGateway, type Gateway } from '../../../gateway/create-gateway.ts';
import type { GatewayEvents } from '../../../gateway/event-bus.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { createHealthAgent, type HealthAgent, type HealthAgentOptions, type HostSample } from '../../../agents/health/health-agent.ts';

export interface HealthRig {
  gw: Gateway;
  clock: ManualClock;
  agent: HealthAgent;
  config: GatewayConfig;
  logs: string[];
  findings: GatewayEvents['agent.finding'][];
  cleared: GatewayEvents['agent.finding.cleared'][];
  controls: GatewayEvents['component.control'][];
  /** Moves the clock by `ms` and waits for the poll it starts, and for any source start it set off. */
  step(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export const POLL_MS = 60_000;

const MiB = 1024 * 1024;
/** A host with memory to spare, a light load and a gateway using little CPU (its CPU counter advances 1 ms a call). */
let quietCpu = 0;
export const quietHost = (): HostSample => ({
  rssBytes: 120 * MiB,
  freeMemBytes: 2048 * MiB,
  totalMemBytes: 4096 * MiB,
  load1: 0.3,
  cores: 2,
  processCpuMicros: (quietCpu += 1000),
});
export const START = Date.UTC(2026, 2, 2, 8, 0, 0);

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over))
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) ? merge((out[k] as Record<string, unknown>) ?? {}, v as Record<string, unknown>) : v;
  return out;
}

export async function startHealthRig(
  overrides: Record<string, unknown> = {},
  o: {
    dataDir?: string;
    sources?: readonly SourceKindEntry[];
    onOutboxWriterThread?: (w: Worker) => void;
    /** Sink kinds instead of the built-in ones (a test's sink under `relay.sink: file`). */
    sinks?: readonly SinkKind[];
    /** The agent's own options (a host sampler a test drives). */
    agent?: HealthAgentOptions;
  } = {},
): Promise<HealthRig> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'ewml-health-'));
  const raw = merge(
    {
      gateway: { dataDir, timezone: 'UTC' },
      hl7: { port: 0 },
      admin: { port: 0 },
      // no linger: the relay pumps on the next turn of the real event loop, so a step can wait for it
      relay: { idlePollMs: POLL_MS, lingerMs: 0 },
      agents: { health: { enabled: true, pollMs: POLL_MS } },
    },
    overrides,
  );
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(`bad test config: ${JSON.stringify(v.problems)}`);
  const logs: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] });
  const clock = createManualClock(START);
  // a quiet host unless a test says otherwise: the machine running the tests may be loaded (CI), and
  // a scenario's findings must not depend on it (host-clock.test.ts checks the real sampler)
  const agent = createHealthAgent(v.config.agents.health, { host: quietHost, ...o.agent });
  const gw = await createGateway({
    config: v.config,
    logger,
    clock,
    agents: [{ kind: 'health', create: () => agent }],
    ...(o.sources ? { sources: o.sources } : {}),
    ...(o.sinks ? { sinks: o.sinks } : {}),
    ...(o.onOutboxWriterThread ? { onOutboxWriterThread: o.onOutboxWriterThread } : {}),
  });
  const findings: HealthRig['findings'] = [];
  const cleared: HealthRig['cleared'] = [];
  const controls: HealthRig['controls'] = [];
  gw.parts.bus.on('agent.finding', (e) => findings.push(e));
  gw.parts.bus.on('agent.finding.cleared', (e) => cleared.push(e));
  gw.parts.bus.on('component.control', (e) => controls.push(e));
  await gw.start();
  const settle = async () => {
    // bounded: 10 s of real time (a source start that waits on a database lock takes seconds)
    for (let i = 0; i < 2000; i++) {
      await agent.settled();
      const busy = gw.parts.sources.ids().some((id) => gw.parts.sources.state(id) === 'starting');
      // and the relay: with its sink connected, what waits is delivered (real I/O) before time moves on
      const st = gw.parts.outbox.stats();
      const relaying = gw.parts.sink.health().connected && st.pending + st.inFlight > 0;
      if (!busy && !relaying) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('a source stayed in "starting", or the relay did not deliver, for 10 s of real time');
  };
  await settle();
  return {
    gw,
    clock,
    agent,
    config: v.config,
    logs,
    findings,
    cleared,
    controls,
    async step(ms) {
      clock.advance(ms);
      await settle();
    },
    stop: () => gw.stop(),
  };
}
