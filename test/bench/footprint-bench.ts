/**
 * Idle memory: the resident size (RSS) of a gateway process that has started and sits idle, built up
 * one part at a time, so each line's difference from the one before is what that part costs. The
 * gateways are the single executable when `npm run build:binary` has made one (what ships: no type
 * stripping, which from source costs ~18 MiB in each thread), else `node bin/eyewear-gateway.js`,
 * always with the gateway's heap flags (gateway/node-flags.ts). Each is read a few seconds after its
 * port accepts (V8 does not shrink an idle heap within a minute). Bounded: seconds per process.
 *
 * The executable is copied to a temporary folder first: how a file's pages sit in the page cache
 * decides how many of them a mapping makes resident, and the build's own freshly written output
 * measured ~19 MiB more file-backed RSS than a copy of it.
 *
 * Runnable alone: `npx node test/bench/footprint-bench.ts` (FOOTPRINT_REPEATS, default 2).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { freePort, waitForPort } from '../support/net.ts';

export interface FootprintLine {
  name: string;
  /** Median RSS of the repeats, MiB. */
  rssMiB: number;
  /** Of that, anonymous memory (heaps, buffers, thread stacks) and mapped files (the executable's code), MiB. */
  anonMiB: number;
  fileMiB: number;
}

const SETTLE_MS = 2500;

function memoryOf(pid: number): { rss: number; anon: number; file: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}

/** Starts `argv`, waits for `port` (or a fixed time when none), lets it settle, reads its memory, stops it. */
async function idleOf(argv: string[], port: number | undefined): Promise<{ rss: number; anon: number; file: number }> {
  const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (b: Buffer) => {
    err = (err + b.toString()).slice(-2000);
  });
  try {
    if (port !== undefined) await waitForPort(port, 20_000);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (c.exitCode !== null) throw new Error(`exited with ${c.exitCode}: ${err}`);
    return memoryOf(c.pid!);
  } finally {
    if (c.exitCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
      await gone;
    }
  }
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

/** Config sections, added one at a time (each line keeps the ones above it). */
type Parts = Record<string, unknown>;

export async function footprintBench(o: { root: string; repeats?: number; exe?: string }): Promise<FootprintLine[]> {
  const repeats = Math.max(1, o.repeats ?? 2);
  const node = [process.execPath, ...GATEWAY_NODE_FLAGS];
  const cli = join(o.root, 'bin/eyewear-gateway.js');
  const commands = join(o.root, 'cli/commands/index.ts');
  const keys = makeCloudKeys();
  let exe: string | undefined;
  if (o.exe && existsSync(o.exe)) {
    exe = join(mkdtempSync(join(tmpdir(), 'ewml-bench-exe-')), 'eyewear-gateway');
    copyFileSync(o.exe, exe);
  }
  const lines: FootprintLine[] = [];
  const record = (name: string, runs: Array<{ rss: number; anon: number; file: number }>) =>
    lines.push({
      name,
      rssMiB: median(runs.map((r) => r.rss)),
      anonMiB: median(runs.map((r) => r.anon)),
      fileMiB: median(runs.map((r) => r.file)),
    });
  const repeat = async (f: () => Promise<{ rss: number; anon: number; file: number }>) => {
    const runs = [];
    for (let i = 0; i < repeats; i++) runs.push(await f());
    return runs;
  };

  record('bare Node (same flags, an empty timer)', await repeat(() => idleOf([...node, '-e', 'setInterval(() => {}, 1000)'], undefined)));
  if (!exe)
    record(
      "the CLI's and gateway's modules imported (from source), nothing built",
      await repeat(() =>
        idleOf(
          [...node, '--input-type=module', '-e', `await import(${JSON.stringify(commands)}); setInterval(() => {}, 1000);`],
          undefined,
        ),
      ),
    );

  /** A gateway with these config sections, idle; MLLP on a free port tells when it has started. */
  const gateway = (parts: Parts, from: 'exe' | 'source' = exe ? 'exe' : 'source') =>
    repeat(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-idle-'));
      const hl7 = await freePort();
      const config = {
        gateway: { dataDir: join(dir, 'data'), timezone: 'UTC' },
        log: { level: 'warn' },
        hl7: { port: hl7 },
        admin: { enabled: false },
        outbox: { writer: 'inline' },
        ...parts,
      };
      const file = join(dir, 'gw.yaml');
      // JSON is YAML: the PEM of the cloud key stays one string
      writeFileSync(file, JSON.stringify(config));
      return idleOf(from === 'exe' && exe ? [exe, 'start', '--config', file] : [...node, cli, 'start', '--config', file], hl7);
    });

  const steps: Array<[string, Parts]> = [
    ['gateway core: outbox (writer inline), pipeline, relay, file sink, MLLP listener', { agents: { health: { enabled: false } } }],
    ['+ the outbox writer thread (outbox.writer auto, the default)', { outbox: { writer: 'auto' } }],
    ['+ the admin API (Fastify)', { admin: { port: 0 } }],
    ['+ the health monitor (agents.health, on by default): the default config', { agents: { health: { enabled: true } } }],
  ];
  let parts: Parts = {};
  for (const [name, add] of steps) {
    parts = { ...parts, ...add };
    record(name, await gateway(parts));
  }
  const base = parts;
  const exportDir = mkdtempSync(join(tmpdir(), 'ewml-bench-idle-export-'));
  record(
    '+ a folder source (files[]: chokidar, the file import)',
    await gateway({ ...base, files: [{ id: 'export', dir: exportDir, profile: 'optical-csv' }] }),
  );
  record(
    '+ a PostgreSQL source instead of the folder (databases[]: pg; no server there, it retries)',
    await gateway({
      ...base,
      databases: [
        {
          id: 'pms',
          engine: 'postgres',
          host: '127.0.0.1',
          port: 1,
          user: 'u',
          database: 'd',
          profile: 'practice-studio',
          pollIntervalMs: 3_600_000,
        },
      ],
    }),
  );
  record(
    '+ the MQTT sink instead of the file sink (mqtt.js, the JWE; no broker there, it retries)',
    await gateway({ ...base, relay: { sink: 'mqtt' }, mqtt: { url: 'mqtt://127.0.0.1:1' }, cloud: { publicKey: keys.publicPem } }),
  );
  if (exe && o.exe) record(`from source instead of the executable, the default config`, await gateway(base, 'source'));
  return lines;
}

/** What the gateway lines ran: the executable (and when it was built) or the source. */
export function footprintSubject(o: { root: string; exe?: string }): string {
  return o.exe && existsSync(o.exe)
    ? `the single executable ${o.exe.replace(o.root, '')} (built ${statSync(o.exe).mtime.toISOString().slice(0, 16)} UTC; \`npm run build:binary\` makes it anew)`
    : 'node bin/eyewear-gateway.js (no single executable built: `npm run build:binary` makes one)';
}

export function footprintLines(lines: readonly FootprintLine[]): string[] {
  const fmt = (n: number) => n.toFixed(1).padStart(6);
  return lines.map((l, i) => {
    // each component's line beside the one it adds to; a line that replaces one compares with the default config
    const prev =
      l.name.includes('instead') || l.name.startsWith('+ a folder') ? lines.find((x) => x.name.includes('default config')) : lines[i - 1];
    const delta = prev && prev !== l ? `  ${l.rssMiB - prev.rssMiB >= 0 ? '+' : '−'}${Math.abs(l.rssMiB - prev.rssMiB).toFixed(1)}` : '';
    return `  ${l.name.padEnd(96)} ${fmt(l.rssMiB)} MiB RSS (anon ${fmt(l.anonMiB)}, files ${fmt(l.fileMiB)})${delta}`;
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = new URL('../../', import.meta.url).pathname;
  const o = { root, repeats: Number(process.env.FOOTPRINT_REPEATS ?? 2), exe: join(root, 'dist/eyewear-gateway') };
  process.stdout.write(`idle RSS, gateways run as ${footprintSubject(o)}\n`);
  for (const l of footprintLines(await footprintBench(o))) process.stdout.write(`${l}\n`);
}
