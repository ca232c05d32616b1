/**
 * A real OpenSSH sshd for the SFTP tests, owned by them: 127.0.0.1 on a free port, a generated
 * host key, key authentication for a test user (created when missing; `usermod -p '*'` unlocks the
 * account without giving it a password, or sshd refuses it), the internal-sftp subsystem.
 * Needs root (sshd's privilege separation); installed like the other services when missing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureService, stopProcess } from './services.ts';
import { freePort, waitForPort } from './net.ts';

export const SFTP_USER = 'ewmlsftp';

export interface SshServer {
  port: number;
  user: string;
  /** The test user's private key (OpenSSH PEM) and the host key's fingerprint (`SHA256:…`). */
  clientKey: string;
  hostKeySha256: string;
  /** A folder the test user owns, for exports. */
  home: string;
  mkdir(name: string): string;
  stop(): Promise<void>;
  /** Authorises the test client's key, or not (as a practice changing the password would): takes effect at the next login. */
  setClientKeyAuthorised(yes: boolean): void;
}

/** The system user that owns the test servers' folders (created when missing, with no login shell). */
export function ensureTestUser(): { uid: number; gid: number } {
  try {
    execFileSync('id', [SFTP_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', SFTP_USER]);
  }
  return {
    uid: Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', SFTP_USER], { encoding: 'utf8' })),
  };
}

export async function startSshd(): Promise<SshServer> {
  if (process.getuid?.() !== 0)
    throw new Error('the SFTP tests start an OpenSSH sshd and need root (as .ci/run runs them); run npm test as root');
  const sshd = ensureService('sshd');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-sshd-'));
  chmodSync(dir, 0o755);
  const { uid, gid } = ensureTestUser();
  execFileSync('usermod', ['-p', '*', SFTP_USER]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_ed25519')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_ed25519.pub')));
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')], { encoding: 'utf8' }).split(' ')[1];
  const home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, uid, gid);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'StrictModes no',
      'UsePAM no',
      `AllowUsers ${SFTP_USER}`,
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  try {
    await waitForPort(port, 15_000);
  } catch {
    proc.kill('SIGKILL');
    throw new Error(`sshd did not start: ${stderr}`);
  }
  return {
    port,
    user: SFTP_USER,
    clientKey: readFileSync(join(dir, 'client_ed25519'), 'utf8'),
    hostKeySha256: fp,
    home,
    setClientKeyAuthorised(yes) {
      // sshd reads AuthorizedKeysFile at each login: an empty file refuses the key from the next one on
      writeFileSync(join(dir, 'authorized_keys'), yes ? readFileSync(join(dir, 'client_ed25519.pub')) : '');
    },
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
