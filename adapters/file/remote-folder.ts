/**
 * A folder on a server, the same to the file source and the file writer whether it is reached
 * over SFTP (ssh2-sftp-client; the host key pinned by its SHA-256 fingerprint) or FTPS
 * (basic-ftp; explicit TLS required, the certificate checked against `ca` or pinned by its SHA-256
 * fingerprint). Plain FTP is not offered: PHI never crosses the network unencrypted.
 */
import { createHash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
// the clients are imported when a connection is made: a gateway without SFTP or FTPS never loads them (BENCHMARKS.md)
import type { Client as FtpClient } from 'basic-ftp';
import type SftpClient from 'ssh2-sftp-client';

export interface SftpConnection {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  passphrase?: string;
  hostKeySha256: string;
  schedule: string;
}
export interface FtpsConnection {
  host: string;
  port: number;
  username: string;
  password?: string;
  ca?: string;
  certSha256: string;
  schedule: string;
}

export interface RemoteEntry {
  name: string;
  size: number;
  mtime: number;
  file: boolean;
}

export interface RemoteFolder {
  list(dir: string): Promise<RemoteEntry[]>;
  /** Writes the remote file into `dest` (ended by the caller). */
  download(remote: string, dest: Writable): Promise<void>;
  put(data: Buffer, remote: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Replaces `to` if it exists (atomically where the server can). */
  replace(from: string, to: string): Promise<void>;
  remove(remote: string): Promise<void>;
  mkdir(remote: string): Promise<void>;
  exists(remote: string): Promise<boolean>;
  close(): Promise<void>;
}

/** ssh2's refused login: `level: 'client-authentication'` (ssh2-sftp-client keeps it, or only the message). */
function isAuthRefusal(e: unknown): boolean {
  const x = e as { level?: unknown; message?: unknown } | undefined;
  return x?.level === 'client-authentication' || /authentication methods failed/i.test(String(x?.message ?? ''));
}

/** `SHA256:<base64, no padding>` of a host key blob, as OpenSSH prints fingerprints. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export async function connectSftp(c: SftpConnection): Promise<RemoteFolder & { raw: SftpClient }> {
  if (!c.hostKeySha256)
    throw new Error(
      "sftp.hostKeySha256 is required (the server's key fingerprint, from `ssh-keygen -lf` on its host key); the gateway does not trust a server it cannot identify",
    );
  const { default: Sftp } = await import('ssh2-sftp-client');
  const client = new Sftp('eyewear-gateway');
  let seen = '';
  try {
    await client.connect({
      host: c.host,
      port: c.port,
      username: c.username,
      password: c.password,
      privateKey: c.privateKey,
      passphrase: c.passphrase,
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => {
        seen = sshFingerprint(key);
        return seen === c.hostKeySha256;
      },
    } as SftpClient.ConnectOptions);
  } catch (e) {
    if (seen && seen !== c.hostKeySha256)
      throw Object.assign(
        new Error(
          `the SFTP server's host key is ${seen}, not the pinned ${c.hostKeySha256}: refused (a different server, or its key changed — check with the practice before updating the fingerprint)`,
        ),
        { code: 'ERR_SSH_HOST_KEY' },
      );
    // ssh2 marks a refused login by its level; the host key was the pinned one (checked first)
    if (seen === c.hostKeySha256 && isAuthRefusal(e))
      throw Object.assign(
        new Error(
          `the SFTP server (host key ${seen}, the pinned one) refused the login of ${c.username}: its password or key was probably changed on the server; update sftp.password or sftp.privateKey in the config`,
        ),
        { code: 'ERR_SSH_AUTH' },
      );
    throw e;
  }
  return {
    raw: client,
    async list(dir) {
      return (await client.list(dir)).map((f) => ({ name: f.name, size: f.size, mtime: f.modifyTime, file: f.type === '-' }));
    },
    async download(remote, dest) {
      // get ends dest when the remote stream ends (the caller's done() then waits for the disk)
      await client.get(remote, dest);
    },
    async put(data, remote) {
      await client.put(data, remote);
    },
    async rename(from, to) {
      await client.rename(from, to);
    },
    async replace(from, to) {
      try {
        await client.posixRename(from, to);
      } catch {
        if (await client.exists(to)) await client.delete(to);
        await client.rename(from, to);
      }
    },
    async remove(remote) {
      await client.delete(remote);
    },
    async mkdir(remote) {
      await client.mkdir(remote, true).catch(() => undefined);
    },
    async exists(remote) {
      return Boolean(await client.exists(remote));
    },
    async close() {
      await client.end().catch(() => undefined);
    },
  };
}

class PinMismatch extends Error {}

const colonHex = (b64OrHex: string) =>
  b64OrHex
    .replace(/^sha256:/i, '')
    .replace(/:/g, '')
    .toUpperCase();

export async function connectFtps(c: FtpsConnection): Promise<RemoteFolder & { raw: FtpClient }> {
  if (!c.ca && !c.certSha256)
    throw new Error(
      "ftps needs `ca` (the CA that signed the server's certificate) or `certSha256` (its fingerprint): the gateway does not trust a server it cannot identify",
    );
  const { Client } = await import('basic-ftp');
  const client = new Client(15_000);
  try {
    // step by step, so the certificate is checked before the password is sent: connect, AUTH TLS, check, log in
    await client.connect(c.host, c.port);
    if (c.certSha256) {
      await client.useTLS({ rejectUnauthorized: false });
      // a pinned certificate must be exactly this one (practices often run self-signed FTPS)
      const seen = (client.ftp.socket as TLSSocket).getPeerCertificate().fingerprint256 ?? '';
      if (colonHex(seen) !== colonHex(c.certSha256))
        throw new PinMismatch(`the FTPS server's certificate is ${seen}, not the pinned ${c.certSha256}: refused`);
    } else {
      await client.useTLS({ ca: c.ca, servername: c.host === '127.0.0.1' ? 'localhost' : c.host });
    }
    await client.login(c.username, c.password);
    await client.useDefaultSettings();
  } catch (e) {
    client.close();
    throw e;
  }
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return {
    raw: client,
    async list(dir) {
      return (await client.list(dir)).map((f) => ({ name: f.name, size: f.size, mtime: f.modifiedAt?.getTime() ?? 0, file: f.isFile }));
    },
    async download(remote, dest) {
      await client.downloadTo(dest, remote);
    },
    async put(data, remote) {
      await client.uploadFrom(Readable.from(data), remote);
    },
    async rename(from, to) {
      await client.rename(from, to);
    },
    async replace(from, to) {
      if ((await client.list(parent(to))).some((f) => f.name === base(to))) await client.remove(to);
      await client.rename(from, to);
    },
    async remove(remote) {
      await client.remove(remote);
    },
    async mkdir(remote) {
      try {
        await client.send(`MKD ${remote}`);
      } catch {
        /* exists */
      }
    },
    async exists(remote) {
      return (await client.list(parent(remote))).some((f) => f.name === base(remote));
    },
    async close() {
      client.close();
    },
  };
}
