/**
 * A real MariaDB server for the tests, owned by them: a fresh data folder, 127.0.0.1 only, stopped
 * and removed at the end. As root it runs as the `mysql` system user.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { ensureService, stopProcess } from './services.ts';
import { freePort, waitFor } from './net.ts';

export interface MariaServer {
  port: number;
  admin: { host: string; port: number; user: string; password: string };
  query(sql: string, params?: unknown[], database?: string): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startMariadb(): Promise<MariaServer> {
  const daemon = ensureService('mariadbd');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-maria-'));
  const data = join(dir, 'data');
  const root = process.getuid?.() === 0;
  if (root)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'mysql'], { encoding: 'utf8' })),
      Number(execFileSync('id', ['-g', 'mysql'], { encoding: 'utf8' })),
    );
  const installer = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((p) => {
    try {
      execFileSync('test', ['-x', p]);
      return true;
    } catch {
      return false;
    }
  });
  if (!installer) throw new Error('mariadb-install-db is missing: sudo apt-get install -y mariadb-server');
  execFileSync(
    installer,
    [`--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(root ? ['--user=mysql'] : [])],
    { stdio: 'pipe', timeout: 120_000 },
  );
  const port = await freePort();
  const sock = join(dir, 'mysqld.sock');
  const proc: ChildProcess = spawn(
    daemon,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--socket=${sock}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(dir, 'pid')}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--skip-log-bin',
      '--innodb-buffer-pool-size=128M',
      '--max-connections=50',
      '--default-time-zone=+00:00',
      ...(root ? ['--user=mysql'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  // root has no password yet and logs in over the socket only; make a TCP admin
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`mariadbd exited: ${stderr}`);
      try {
        const c = await mysql.createConnection({ socketPath: sock, user: 'root' });
        await c.query("CREATE USER IF NOT EXISTS 'ewml_admin'@'127.0.0.1' IDENTIFIED BY 'test-admin-pw'");
        await c.query("GRANT ALL PRIVILEGES ON *.* TO 'ewml_admin'@'127.0.0.1' WITH GRANT OPTION");
        await c.end();
        return true;
      } catch {
        return false;
      }
    },
    60_000,
    'mariadb to accept connections',
  );
  const admin = { host: '127.0.0.1', port, user: 'ewml_admin', password: 'test-admin-pw' };
  return {
    port,
    admin,
    async query(sql, params, database) {
      const c = await mysql.createConnection({ ...admin, multipleStatements: true, database });
      try {
        return (await c.query(sql, params))[0];
      } finally {
        await c.end();
      }
    },
    async stop() {
      await stopProcess(proc, 'SIGTERM', 15_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
