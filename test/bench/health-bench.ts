/**
 * `node test/bench/health-bench.ts`: the health monitor's recorded fault scenarios on real gateways
 * (manual clock, loopback only), scored — the right cause named, nothing named on a healthy gateway,
 * no finding repeated while its cause lasts, no remedy beyond its budget in any hour, healable
 * faults healed — and what a poll costs the monitor (CPU per poll, and one statfs).
 * The disk scenario needs root (a tmpfs of its own) and is skipped otherwise.
 */
import { appendFileSync, statfsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { connectMllp } from '../../adapters/hl7v2/mllp-client.ts';
import type { MllpListener } from '../../adapters/hl7v2/mllp-listener.ts';
import { defineSource, type SourceAdapter } from '../../adapters/contracts.ts';
import { sourceKinds } from '../../adapters/registry.ts';
import type { RemedyRecord } from '../../agents/health/health-agent.ts';
import { POLL_MS, startHealthRig, type HealthRig } from '../agents/health/health-gateway.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { freePort } from '../support/net.ts';
import { mountSmallDisk } from '../support/small-disk.ts';
import { sampleHost } from '../../agents/health/health-agent.ts';
import { startThrottledFhir } from '../agents/health/throttled-fhir.ts';
import { GatewayError } from '../../gateway/errors.ts';
import type { Sink } from '../../gateway/sinks/sink.ts';

const HOUR = 3_600_000;
const MiB = 1024 * 1024;

interface Outcome {
  name: string;
  expected: string[];
  rig: HealthRig;
  /** A healable fault: it must end healed. */
  healable?: boolean;
}

const holdPort = () =>
  new Promise<{ server: Server; port: number }>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
const steps = async (rig: HealthRig, n: number) => {
  for (let i = 0; i < n; i++) await rig.step(POLL_MS);
};

async function scenarios(): Promise<Array<Outcome & { cleanup?: () => void | Promise<void> }>> {
  const out: Array<Outcome & { cleanup?: () => void | Promise<void> }> = [];

  let rig = await startHealthRig();
  await steps(rig, 120);
  out.push({ name: 'healthy gateway, 2 h', expected: [], rig });

  rig = await startHealthRig();
  const port = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
  const c = await connectMllp('127.0.0.1', port);
  for (let i = 0; i < 20; i++) {
    if (i > 0) await steps(rig, 3);
    await c.send(adtA04());
  }
  await steps(rig, 80);
  await c.close();
  out.push({ name: 'MLLP sender stops mid-morning', expected: ['AGENT_HEALTH_SOURCE_SILENT'], rig });

  const held = await holdPort();
  rig = await startHealthRig({ hl7: { host: '127.0.0.1', port: held.port } });
  await steps(rig, 180);
  out.push({
    name: 'MLLP port held by another program, 3 h',
    expected: ['AGENT_HEALTH_SOURCE_FAILING'],
    rig,
    cleanup: () => void held.server.close(),
  });

  const closed = await freePort();
  rig = await startHealthRig({
    hl7: { enabled: false },
    databases: [
      {
        id: 'pms',
        engine: 'postgres',
        host: '127.0.0.1',
        port: closed,
        user: 'r',
        database: 'pms',
        password: 'pw',
        profile: 'practice-studio',
      },
    ],
  });
  await steps(rig, 120);
  out.push({ name: 'database at a closed port, 2 h', expected: ['AGENT_HEALTH_SOURCE_FAILING'], rig });

  rig = await startHealthRig({
    relay: { sink: 'mqtt' },
    cloud: { publicKey: makeCloudKeys().publicPem },
    mqtt: { url: `mqtt://127.0.0.1:${await freePort()}` },
  });
  await steps(rig, 60);
  out.push({ name: 'cloud broker unreachable, 1 h', expected: ['AGENT_HEALTH_SINK_DOWN'], rig });

  const stuck: SourceAdapter & { stuck: boolean } = {
    id: 'pms-link',
    stuck: false,
    async start() {
      stuck.stuck = false;
    },
    async stop() {},
    health: () => (stuck.stuck ? { status: 'down', detail: { error: 'ECONNRESET' } } : { status: 'up' }),
  };
  const kind = defineSource({ kind: 'stuck', section: 'gateway', create: () => ({ adapters: [stuck], codecs: [] }) });
  rig = await startHealthRig({ hl7: { enabled: false } }, { sources: [...sourceKinds, kind] });
  stuck.stuck = true;
  await steps(rig, 30);
  out.push({ name: 'a source connection stuck (healable)', expected: ['AGENT_HEALTH_SOURCE_FAILING'], rig, healable: true });

  let thread: Worker | undefined;
  rig = await startHealthRig({}, { onOutboxWriterThread: (w) => (thread = w) });
  for (let k = 1; k <= 3; k++) {
    const before = thread;
    await before?.terminate();
    for (let i = 0; i < 400 && (rig.gw.parts.outbox.stats().writerRestarts !== k || thread === before); i++) {
      if (i % 20 === 0) await rig.step(POLL_MS);
      else await new Promise((r) => setTimeout(r, 5));
    }
    await steps(rig, 5);
  }
  out.push({ name: 'outbox writer thread killed 3 times', expected: ['AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE'], rig });

  // the system clock set 3 h forward mid-feed, then 2 h back: a jump named, no false silence
  rig = await startHealthRig();
  const jport = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
  const jc = await connectMllp('127.0.0.1', jport);
  for (let i = 0; i < 60; i++) {
    if (i === 20) rig.clock.jump(3 * HOUR);
    if (i === 40) rig.clock.jump(-2 * HOUR);
    await steps(rig, 2);
    await jc.send(adtA04());
  }
  await jc.close();
  out.push({ name: 'clock set 3 h forward, then 2 h back, mid-feed', expected: ['AGENT_HEALTH_CLOCK_JUMPED'], rig });

  // a connected cloud that answers "retry later" to every batch for 2 h
  const refusing: Sink = {
    kind: 'test',
    async start() {},
    async stop() {},
    health: () => ({ connected: true }),
    async deliver() {
      throw new GatewayError('GW_SINK_UNREACHABLE', 'cloud answered 503');
    },
  };
  rig = await startHealthRig({}, { sinks: [{ kind: 'file', create: () => refusing }] });
  const sport = (rig.gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener).address()!.port;
  const sc = await connectMllp('127.0.0.1', sport);
  await sc.send(adtA04());
  await sc.close();
  await steps(rig, 120);
  out.push({ name: 'cloud connected but refusing every batch, 2 h', expected: ['AGENT_HEALTH_OUTBOX_STUCK'], rig });

  // the FHIR server answers every other request 429 (Retry-After 1 s) once the source has connected
  const tf = await startThrottledFhir();
  rig = tf.rig;
  tf.throttle.every = 2;
  for (let i = 0; i < 300; i++) {
    rig.clock.advance(1000);
    await new Promise((r) => setTimeout(r, 5));
    if (i % 10 === 9) await rig.step(POLL_MS);
  }
  out.push({
    name: 'FHIR server throttling every other request',
    expected: ['AGENT_HEALTH_SOURCE_THROTTLED'],
    rig,
    cleanup: () => tf.fhir.stop(),
  });

  if (process.getuid?.() === 0) {
    const disk = mountSmallDisk(64 * MiB);
    rig = await startHealthRig({ outbox: { diskReserveBytes: 8 * MiB } }, { dataDir: disk.dir });
    for (let m = 0; m < 20; m++) {
      appendFileSync(join(disk.dir, 'other.log'), Buffer.alloc(512 * 1024, 1));
      await rig.step(POLL_MS);
    }
    out.push({ name: 'data disk filling at 30 MiB/h', expected: ['AGENT_HEALTH_DISK_FILLING'], rig, cleanup: () => disk.unmount() });
  } else process.stdout.write('(disk scenario skipped: needs root for its tmpfs)\n');
  return out;
}

/** Most remedies on one subject in any hour. */
function maxPerHour(rs: RemedyRecord[]): number {
  let most = 0;
  for (const r of rs) {
    const t = Date.parse(r.at);
    most = Math.max(most, rs.filter((x) => x.subject === r.subject && Date.parse(x.at) > t - HOUR && Date.parse(x.at) <= t).length);
  }
  return most;
}

const list = await scenarios();
let score = 0;
const cpu: number[] = [];
for (const s of list) {
  const report = s.rig.gw.parts.agents.report('health') as { remedies: RemedyRecord[]; polls: number; cpu: { microsTotal: number } };
  const named = [...new Set(s.rig.findings.map((f) => f.code))].sort();
  const right = JSON.stringify(named) === JSON.stringify([...s.expected].sort());
  // a finding is published again only when its severity changes or after it cleared
  const repeats =
    s.rig.findings.length - new Set(s.rig.findings.map((f) => `${f.code}|${f.subject}|${f.severity}`)).size - s.rig.cleared.length;
  const perHour = maxPerHour(report.remedies);
  const withinBudget = perHour <= s.rig.config.agents.health.source.restartsPerHour;
  const healed = !s.healable || report.remedies.some((r) => r.outcome === 'healed');
  const ok = right && repeats <= 0 && withinBudget && healed;
  if (ok) score++;
  cpu.push(report.cpu.microsTotal / report.polls);
  process.stdout.write(
    `${ok ? 'PASS' : 'FAIL'}  ${s.name}: named [${named.join(', ')}], expected [${s.expected.join(', ')}]; findings ${s.rig.findings.length}, cleared ${s.rig.cleared.length}; remedies ${report.remedies.length} (most in an hour ${perHour}, budget ${s.rig.config.agents.health.source.restartsPerHour})${s.healable ? `; healed ${healed}` : ''}; ${report.polls} polls, ${Math.round(report.cpu.microsTotal / report.polls)} µs CPU a poll\n`,
  );
  await s.rig.stop();
  await s.cleanup?.();
}
process.stdout.write(`score: ${score}/${list.length} scenarios\n`);
process.stdout.write(
  `monitor CPU per poll (its own synchronous work, main thread): mean ${Math.round(cpu.reduce((a, b) => a + b, 0) / cpu.length)} µs, max ${Math.round(Math.max(...cpu))} µs\n`,
);
const N = 5000;
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) statfsSync(tmpdir());
const cs = process.cpuUsage(c0);
const w0 = performance.now();
for (let i = 0; i < 500; i++) await statfs(tmpdir());
process.stdout.write(
  `one statfs: ${((cs.user + cs.system) / N).toFixed(1)} µs CPU (statfsSync, ${N} calls); ${(((performance.now() - w0) * 1000) / 500).toFixed(1)} µs wall through the thread pool (fs/promises, 500 calls)\n`,
);
const H = 5000;
const h0 = process.cpuUsage();
for (let i = 0; i < H; i++) sampleHost();
const hs = process.cpuUsage(h0);
process.stdout.write(
  `one host sample (RSS, free/total memory, load average, process CPU: node:os and process, no systeminformation): ${((hs.user + hs.system) / H).toFixed(1)} µs CPU (${H} calls)\n`,
);
process.exit(score === list.length ? 0 : 1);
