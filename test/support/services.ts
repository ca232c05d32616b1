/**
 * Real services the tests need (CONVENTIONS.md §9): found on the machine, installed the way
 * `.ci/run` does when we are root with apt-get, or a failure that says exactly what to install.
 * Never a silent skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES: Record<string, { paths: string[]; apt: string }> = {
  mosquitto: { paths: ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'], apt: 'mosquitto' },
  openssl: { paths: ['/usr/bin/openssl', '/usr/local/bin/openssl'], apt: 'openssl' },
  postgres: { paths: ['17', '16', '15', '14', '13'].map((v) => `/usr/lib/postgresql/${v}/bin/postgres`), apt: 'postgresql' },
  sshd: { paths: ['/usr/sbin/sshd'], apt: 'openssh-server' },
  'pure-ftpd': { paths: ['/usr/sbin/pure-ftpd'], apt: 'pure-ftpd' },
  mariadbd: { paths: ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/bin/mariadbd'], apt: 'mariadb-server' },
};

function find(name: string): string | undefined {
  const c = CANDIDATES[name];
  const hit = c.paths.find((p) => existsSync(p));
  if (hit) return hit;
  const w = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return w.status === 0 ? w.stdout.trim() : undefined;
}

/** Path of the service binary, installing it with apt-get when possible. */
export function ensureService(name: keyof typeof CANDIDATES): string {
  const found = find(name);
  if (found) return found;
  const pkg = CANDIDATES[name].apt;
  const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (canInstall) {
    try {
      execFileSync(
        'sh',
        ['-c', `apt-get update -qq >/dev/null 2>&1 || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null`],
        { stdio: 'inherit', timeout: 300_000 },
      );
    } catch {
      /* fall through to the message */
    }
    const again = find(name);
    if (again) return again;
  }
  throw new Error(
    `${name} is needed by the tests but is not installed. Install it with: sudo apt-get install -y ${pkg} (this is what .ci/run does), then run npm test again.`,
  );
}

/** Stops a service process the tests started: `signal`, then SIGKILL if it has not exited in `graceMs`. */
export async function stopProcess(proc: import('node:child_process').ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}
