/** Starts a server under test in its own process (the load generator shares the 2 cores, not the event loop). */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { waitForPort } from '../support/net.ts';

export async function forkServer(script: string, args: string[], port: number): Promise<ChildProcess> {
  const c = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await waitForPort(port, 20_000);
  return c;
}

/** The gateway's banner and stop lines stay out of the figures; its stderr is shown when it fails to start or dies early. */
export async function spawnGateway(cli: string, config: string, port: number): Promise<ChildProcess> {
  const c = spawn(process.execPath, [cli, 'start', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
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
