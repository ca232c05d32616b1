/**
 * A real PostgreSQL server for the tests, owned by them: a fresh cluster in a temporary folder,
 * listening on 127.0.0.1 only, stopped (and removed) at the end. Installed the way `.ci/run` does
 * when missing (services.ts). As root the server runs as the `postgres` system user (it refuses root).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { ensureService, stopProcess } from './services.ts';
import { freePort, waitFor } from './net.ts';

export interface PgServer {
  port: number;
  /** Superuser connection settings (for set-up and the consent-given trigger install). */
  admin: { host: string; port: number; user: string; password: string; database: string };
  query(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

function asOwner(): { uid?: number; gid?: number; user?: string } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid, user: 'postgres' };
}

export async function startPostgres(): Promise<PgServer> {
  const bin = dirname(ensureService('postgres'));
  const dir = mkdtempSync(join(tmpdir(), 'ewml-pg-'));
  const data = join(dir, 'data');
  const owner = asOwner();
  if (owner.uid !== undefined) chownSync(dir, owner.uid, owner.gid!);
  const pwFile = join(dir, 'pw');
  const password = 'test-superuser-pw';
  writeFileSync(pwFile, password);
  if (owner.uid !== undefined) chownSync(pwFile, owner.uid, owner.gid!);
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'ewml_admin', '--pwfile', pwFile, '-A', 'scram-sha-256', '-E', 'UTF8', '--no-sync'],
    { stdio: 'pipe', uid: owner.uid, gid: owner.gid },
  );
  const port = await freePort();
  const proc: ChildProcess = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      '-c',
      'max_connections=50',
      '-c',
      'timezone=UTC',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], uid: owner.uid, gid: owner.gid },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const admin = { host: '127.0.0.1', port, user: 'ewml_admin', password, database: 'postgres' };
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`postgres exited: ${stderr}`);
      const c = new pg.Client(admin);
      try {
        await c.connect();
        await c.end();
        return true;
      } catch {
        return false;
      }
    },
    30_000,
    'postgres to accept connections',
  );
  return {
    port,
    admin,
    async query(sql, params, database) {
      const c = new pg.Client({ ...admin, database: database ?? 'postgres' });
      await c.connect();
      try {
        return await c.query(sql, params);
      } finally {
        await c.end();
      }
    },
    async stop() {
      await stopProcess(proc, 'SIGINT', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
