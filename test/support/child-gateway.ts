/** A gateway in a child process (the CLI with a config file), for the crash tests: started, then killed with SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitForPort } from './net.ts';

const root = new URL('../../', import.meta.url).pathname;

/** How one run of the child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the test sent the signal (a kill or a SIGTERM), so an exit it did not cause stands out. */
  signalledByTest: boolean;
}

export interface ChildGatewayOptions {
  /** Extra environment (e.g. TMPDIR, so every temporary file the child makes lands in one folder a test can scan). */
  env?: Record<string, string>;
  /** Every chunk the child writes on stdout and stderr (given, stdout is piped too instead of ignored). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: string) => void;
  /** Every exit, whatever caused it. */
  onExit?: (exit: ChildExit) => void;
}

export interface ChildGateway {
  /** Starts it and waits until `readyPort` (its MLLP or admin port) accepts connections. */
  start(): Promise<void>;
  /** Starts it without waiting for anything (to kill it in the middle of its start-up). */
  spawn(): void;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (an orderly stop), then SIGKILL after `graceMs` if it is still running; waits for the exit. */
  terminate(graceMs: number): Promise<ChildExit | undefined>;
  /** The running child's pid, if one runs. */
  pid(): number | undefined;
  /** Whether a child is running. */
  running(): boolean;
}

export function childGateway(configFile: () => string, readyPort: () => number, opts: ChildGatewayOptions = {}): ChildGateway {
  let child: ChildProcess | undefined;
  let signalled = false;
  const spawnChild = (): ChildProcess => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), 'start', '--config', configFile()], {
      stdio: ['ignore', opts.onOutput ? 'pipe' : 'ignore', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    signalled = false;
    if (opts.onOutput) {
      const on = opts.onOutput;
      c.stdout?.setEncoding('utf8').on('data', (d: string) => on('stdout', d));
      c.stderr?.setEncoding('utf8').on('data', (d: string) => on('stderr', d));
    } else c.stderr?.resume();
    c.once('exit', (code, signal) => opts.onExit?.({ code, signal, signalledByTest: signalled }));
    child = c;
    return c;
  };
  const waitExit = (c: ChildProcess) =>
    new Promise<ChildExit>((r) => {
      if (c.exitCode !== null || c.signalCode !== null) r({ code: c.exitCode, signal: c.signalCode, signalledByTest: signalled });
      else c.once('exit', (code, signal) => r({ code, signal, signalledByTest: signalled }));
    });
  return {
    async start() {
      spawnChild();
      await waitForPort(readyPort(), 20_000);
    },
    spawn() {
      spawnChild();
    },
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      signalled = true;
      const exited = waitExit(c);
      c.kill('SIGKILL');
      await exited;
    },
    async terminate(graceMs) {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return undefined;
      signalled = true;
      const exited = waitExit(c);
      c.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, graceMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    running: () => Boolean(child && child.exitCode === null && child.signalCode === null),
  };
}
