/**
 * A real FTPS server for the tests (pure-ftpd): 127.0.0.1 on a free port, TLS required on every
 * connection (`-Y 2`) with a certificate from a throwaway CA, one virtual user (its own password
 * database, no PAM), passive ports on loopback. Needs root; installed like the other services.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureService, stopProcess } from './services.ts';
import { freePort, waitForPort } from './net.ts';
import { makeTestPki } from './tls.ts';
import { ensureTestUser } from './sshd.ts';

export interface FtpsServer {
  port: number;
  user: string;
  password: string;
  ca: string;
  home: string;
  mkdir(name: string): string;
  stop(): Promise<void>;
}

export async function startFtps(): Promise<FtpsServer> {
  if (process.getuid?.() !== 0)
    throw new Error('the FTPS tests start pure-ftpd and need root (as .ci/run runs them); run npm test as root');
  const daemon = ensureService('pure-ftpd');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-ftpd-'));
  chmodSync(dir, 0o755);
  const { uid, gid } = ensureTestUser();
  const home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, uid, gid);
  const pki = makeTestPki();
  writeFileSync(join(dir, 'cert.pem'), pki.key + pki.cert);
  chmodSync(join(dir, 'cert.pem'), 0o600);
  const user = 'ewmlftp';
  const password = 'ftps-test-pw-7';
  execFileSync('pure-pw', ['useradd', user, '-u', String(uid), '-g', String(gid), '-d', home, '-f', join(dir, 'passwd')], {
    input: `${password}\n${password}\n`,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  execFileSync('pure-pw', ['mkdb', join(dir, 'passwd.pdb'), '-f', join(dir, 'passwd')]);
  const port = await freePort();
  const pasv = 41000 + Math.floor(Math.random() * 20000);
  const proc: ChildProcess = spawn(
    daemon,
    [
      '-l',
      `puredb:${join(dir, 'passwd.pdb')}`,
      '-S',
      `127.0.0.1,${port}`,
      '-E',
      '-Y',
      '2',
      '-2',
      join(dir, 'cert.pem'),
      '-p',
      `${pasv}:${pasv + 50}`,
      '-P',
      '127.0.0.1',
      '-A',
      '-u',
      '1',
      '-4',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  try {
    await waitForPort(port, 15_000);
  } catch {
    proc.kill('SIGKILL');
    throw new Error(`pure-ftpd did not start: ${stderr}`);
  }
  return {
    port,
    user,
    password,
    ca: pki.ca,
    home,
    mkdir(name) {
      const p = join(home, name);
      mkdirSync(p, { recursive: true });
      chownSync(p, uid, gid);
      return p;
    },
    async stop() {
      await stopProcess(proc, 'SIGTERM', 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
