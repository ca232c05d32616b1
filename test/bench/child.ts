/** Starts a server under test in its own process (the load generator shares the 2 cores, not the event loop). */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { waitForPort } from '../support/net.ts';

export async function forkServer(script: string, args: string[], port: number): Promise<ChildProcess> {
  const c = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await waitForPort(port, 20_000);
  return c;
}

/**
 * What V8 reports with `--trace-gc`, summed over every isolate of a process (the main thread and
 * the outbox writer thread): heap bytes freed by each collection. Bytes allocated over a window =
 * the freed sum over it plus each isolate's heap growth across it.
 */
export interface GcTally {
  /** MB freed so far, all isolates. */
  freedMb: number;
  /** Each isolate's heap after its last collection, MB. */
  lastAfterMb: Map<string, number>;
  collections: number;
}

/** A `--trace-gc` line: `[pid:0xISOLATE:…] … Scavenge 12.3 (20.1) -> 4.5 (21.0) MB, …`. */
const GC_LINE =
  /\[\d+:(0x[0-9a-f]+)[^\]]*\].*?(?:Scavenge|Mark-Compact|Minor Mark-Compact|Mark-Sweep)[^\d]*?([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;

export function tallyGc(stdout: NodeJS.ReadableStream, tally: GcTally): void {
  let rest = '';
  stdout.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      const m = GC_LINE.exec(l);
      if (!m) continue;
      tally.freedMb += Math.max(0, Number(m[2]) - Number(m[3]));
      tally.lastAfterMb.set(m[1], Number(m[3]));
      tally.collections++;
    }
  });
}

/**
 * A gateway as `npm start` runs it (with its heap flags). The gateway's banner and stop lines stay
 * out of the figures; its stderr is shown when it fails to start or dies early.
 */
export async function spawnGateway(cli: string, config: string, port: number, o: { gc?: GcTally } = {}): Promise<ChildProcess> {
  const c = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ...(o.gc ? ['--trace-gc'] : []), cli, 'start', '--config', config], {
    stdio: ['ignore', o.gc ? 'pipe' : 'ignore', 'pipe'],
  });
  if (o.gc) tallyGc(c.stdout!, o.gc);
  let err = '';
  c.stderr!.on('data', (b: Buffer) => {
    err = (err + b.toString()).slice(-4000);
  });
  c.once('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`gateway exited with ${code}:\n${err}\n`);
  });
  try {
    await waitForPort(port, 20_000);
  } catch (e) {
    c.kill('SIGKILL');
    throw new Error(`gateway did not start: ${(e as Error).message}\n${err}`);
  }
  return c;
}

export async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  await new Promise<void>((r) => {
    c.once('exit', () => r());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
  });
}
