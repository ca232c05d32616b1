/**
 * `npx node test/bench/host-sample-bench.ts`: what one sample of the host costs the health monitor,
 * its own (node:os, process, one statfs) beside systeminformation (which the product design names):
 * the same figures (memory, load, the data volume's free space), CPU and wall time per sample,
 * ABBA-interleaved, and what importing systeminformation adds to the process's memory.
 */
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { sampleHost } from '../../agents/health/health-agent.ts';

const ROUNDS = 4;
const N = 200;
const dir = tmpdir();

async function ours(): Promise<void> {
  sampleHost();
  await statfs(dir);
}

const rss0 = process.memoryUsage.rss();
const si = await import('systeminformation');
const rssImported = process.memoryUsage.rss();

async function theirs(): Promise<void> {
  await si.mem();
  await si.currentLoad();
  await si.fsSize(dir);
}

async function measure(f: () => Promise<void>): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < N; i++) await f();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / N, wall: ((performance.now() - w0) * 1000) / N };
}

const res = { ours: [] as Array<{ cpu: number; wall: number }>, si: [] as Array<{ cpu: number; wall: number }> };
await measure(ours);
await measure(theirs);
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? (['ours', 'si'] as const) : (['si', 'ours'] as const);
  for (const k of order) res[k].push(await measure(k === 'ours' ? ours : theirs));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const line = (k: 'ours' | 'si') =>
  `${median(res[k].map((x) => x.cpu)).toFixed(0)} µs CPU, ${median(res[k].map((x) => x.wall)).toFixed(0)} µs wall`;
process.stdout.write(`host sample, ${ROUNDS} ABBA rounds of ${N}:\n`);
process.stdout.write(`  node:os + process + statfs (shipped):                ${line('ours')}\n`);
process.stdout.write(`  systeminformation mem() + currentLoad() + fsSize():  ${line('si')}\n`);
process.stdout.write(
  `  ratio CPU si/ours: ${(median(res.si.map((x) => x.cpu)) / median(res.ours.map((x) => x.cpu))).toFixed(1)}x; importing systeminformation: +${((rssImported - rss0) / 1048576).toFixed(1)} MiB RSS\n`,
);
