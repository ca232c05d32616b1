/** A gateway in a child process (the CLI with a config file), for the crash tests: started, then killed with SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitForPort } from './net.ts';

const root = new URL('../../', import.meta.url).pathname;

export interface ChildGateway {
  /** Starts it and waits until `readyPort` (its MLLP or admin port) accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

export function childGateway(configFile: () => string, readyPort: () => number): ChildGateway {
  let child: ChildProcess | undefined;
  return {
    async start() {
      child = spawn(process.execPath, [join(root, 'gateway/cli.ts'), 'start', '--config', configFile()], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.resume();
      await waitForPort(readyPort(), 20_000);
    },
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => { c.once('exit', () => r()); c.kill('SIGKILL'); });
    },
  };
}
