/**
 * Samples a child process from /proc (Linux): open file descriptors (`/proc/<pid>/fd`, and how
 * many of them are sockets — the handles a leak of connections would pile up), resident memory
 * (`VmRSS` in `/proc/<pid>/status`) and threads, every `intervalMs`, for a soak's figures.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcSample {
  atMs: number;
  fds: number;
  sockets: number;
  rssKiB: number;
  threads: number;
}

/** One sample, or undefined when the process is gone. */
export function sampleProc(pid: number, atMs: number): ProcSample | undefined {
  try {
    const fdDir = `/proc/${pid}/fd`;
    const fds = readdirSync(fdDir);
    let sockets = 0;
    for (const fd of fds) {
      try {
        if (readlinkSync(`${fdDir}/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        /* closed between the listing and the read */
      }
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { atMs, fds: fds.length, sockets, rssKiB: field('VmRSS'), threads: field('Threads') };
  } catch {
    return undefined;
  }
}

export interface ProcSampler {
  samples: ProcSample[];
  stop(): void;
}

/** Samples every `intervalMs` until stopped (or the process is gone). */
export function startProcSampler(pid: number, intervalMs: number): ProcSampler {
  const t0 = Date.now();
  const samples: ProcSample[] = [];
  const take = () => {
    const s = sampleProc(pid, Date.now() - t0);
    if (s) samples.push(s);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return { samples, stop: () => clearInterval(timer) };
}

/** Least-squares slope of `value` against time, per minute. */
export function slopePerMinute(samples: ProcSample[], value: (s: ProcSample) => number): number {
  const n = samples.length;
  if (n < 2) return 0;
  const xs = samples.map((s) => s.atMs / 60_000);
  const ys = samples.map(value);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** first, last, max and slope per minute of one figure, rounded for a report line. */
export function summarise(samples: ProcSample[], name: string, value: (s: ProcSample) => number): Record<string, number> {
  const ys = samples.map(value);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    [`${name}First`]: ys[0] ?? -1,
    [`${name}Last`]: ys.at(-1) ?? -1,
    [`${name}Max`]: ys.length ? Math.max(...ys) : -1,
    [`${name}SlopePerMin`]: r(slopePerMinute(samples, value)),
  };
}
