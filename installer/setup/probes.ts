/**
 * Step 3 of setup: each chosen source tested the way the gateway will use it, through the
 * project's own probes — the database through adapters/sql (connect, `SELECT 1`, then `db check`
 * on its streams), FHIR through `fhir check`, SFTP through the file adapter's pinned-host-key
 * client, the folder and the MLLP port by the same calls the sources make. A failure says what
 * failed and what to do; nothing here writes the config.
 */
import { createServer } from 'node:net';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from '../../cli/command.ts';
import { dbCheck } from '../../cli/commands/db.ts';
import { fhirCheck } from '../../cli/commands/fhir.ts';
import { connectionOf, openSqlDriver } from '../../adapters/sql/index.ts';
import { connectSftp, sshFingerprint } from '../../adapters/file/remote-folder.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { publicDir } from '../../gateway/crypto/secret-store.ts';
import type { DbEntry, FhirEntry, FolderEntry, Hl7Entry, SftpEntry, SourceEntry } from './setup-plan.ts';

export type ProbeResult =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly problem: string; readonly todo: string };

const fail = (problem: string, todo: string): ProbeResult => ({ ok: false, problem, todo });

/** An io that indents what a reused command prints, so it reads as part of the step. */
function indented(io: CliIo): CliIo {
  const pad = (s: string) =>
    s
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
  return { ...io, out: (s) => io.out(pad(s)), err: (s) => io.err(pad(s)) };
}

/** The MLLP port is free to listen on (bound and released at once, as the listener will bind it). */
export function probeHl7(e: Hl7Entry): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE')
        resolve(
          fail(
            `port ${e.port} on ${e.host} is in use (EADDRINUSE): another program listens there`,
            'stop that program (a gateway already running? see eyewear-gateway status), or choose another port and set the PMS to send there',
          ),
        );
      else if (err.code === 'EACCES')
        resolve(fail(`port ${e.port} on ${e.host} needs privileges (EACCES)`, 'choose a port above 1023 (2575 is the usual HL7 port)'));
      else if (err.code === 'EADDRNOTAVAIL')
        resolve(
          fail(
            `${e.host} is not an address of this machine (EADDRNOTAVAIL)`,
            "use this machine's LAN address, 0.0.0.0 (all), or 127.0.0.1",
          ),
        );
      else resolve(fail(`cannot listen on ${e.host}:${e.port}: ${err.code ?? err.message}`, 'choose another address or port'));
    });
    server.listen({ host: e.host, port: e.port, exclusive: true }, () => {
      server.close(() =>
        resolve({
          ok: true,
          detail: `${e.host}:${e.port} is free to listen on; set the PMS's HL7 interface to send to this machine's address, port ${e.port}`,
        }),
      );
    });
  });
}

/** Connects read-only as the gateway will (adapters/sql), then checks its streams with `db check`. */
export async function probeDatabase(e: DbEntry, config: GatewayConfig, io: CliIo): Promise<ProbeResult> {
  const c = config.databases.find((d) => d.id === e.id);
  if (!c) throw new Error(`setup: database ${e.id} is not in the candidate config`);
  try {
    const d = await openSqlDriver({ ...connectionOf(c), poolSize: 1 });
    try {
      await d.query('SELECT 1 AS ok');
    } finally {
      await d.close();
    }
  } catch (err) {
    return fail(
      `cannot connect: ${(err as Error).message}`,
      'check the host, port, database name, user and password (a read-only user is enough), and that this machine may reach the server',
    );
  }
  const code = await dbCheck(config, e.id, indented(io));
  if (code !== 0)
    return fail(
      'connected, but the Practice Studio streams have errors (listed above)',
      'check the schema name (--db-url …?schema=NAME) and that the user may read its tables',
    );
  return { ok: true, detail: 'connected read-only; every stream is ready' };
}

/** The folder exists, can be listed, and the gateway may make processed/ and error/ in it. */
export function probeFolder(e: FolderEntry): ProbeResult {
  let st;
  try {
    st = statSync(e.dir);
  } catch (err) {
    return fail(
      `no folder at ${e.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'give the folder the PMS exports into (create it, or mount the share first)',
    );
  }
  if (!st.isDirectory()) return fail(`${e.dir} is not a folder`, 'give the folder the PMS exports into, not a file');
  try {
    accessSync(e.dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    return fail(
      `${e.dir} is not readable and writable by this user (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'give the gateway read and write access to it (it moves imported files to processed/)',
    );
  }
  const n = readdirSync(e.dir, { withFileTypes: true }).filter((d) => d.isFile()).length;
  return { ok: true, detail: `readable and writable, ${n} file(s) waiting` };
}

/** The SFTP server's host key, seen without trusting it (for the technician to compare and pin). */
export async function sftpHostKey(host: string, port: number): Promise<string> {
  const { default: Sftp } = await import('ssh2-sftp-client');
  const client = new Sftp('eyewear-gateway-setup');
  let seen = '';
  try {
    await client.connect({
      host,
      port,
      username: 'host-key-probe',
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => {
        seen = sshFingerprint(key);
        return false;
      },
    } as Parameters<typeof client.connect>[0]);
  } catch (err) {
    if (!seen) throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
  return seen;
}

/** Logs in with the pinned host key (the file adapter's client) and lists the remote folder. */
export async function probeSftp(e: SftpEntry, config: GatewayConfig): Promise<ProbeResult> {
  const c = config.files.find((f) => f.id === e.id);
  if (!c) throw new Error(`setup: SFTP source ${e.id} is not in the candidate config`);
  let folder;
  try {
    // the settings as the gateway loads them (a key read back through ${file:} loses its last newline)
    folder = await connectSftp(c.sftp);
  } catch (err) {
    return fail(
      `cannot log in to ${e.host}:${e.port}: ${(err as Error).message}`,
      "check the host, port, user, the password or key, and the host key fingerprint with the practice's IT",
    );
  }
  try {
    const list = await folder.list(e.dir);
    return { ok: true, detail: `logged in (host key ${e.hostKeySha256}); ${list.filter((f) => f.file).length} file(s) in ${e.dir}` };
  } catch (err) {
    return fail(`logged in, but cannot list ${e.dir}: ${(err as Error).message}`, 'give the remote folder the PMS exports into');
  } finally {
    await folder.close();
  }
}

/** `fhir check` on the source: discovery, a token, /metadata and a page of each resource. */
export async function probeFhir(e: FhirEntry, config: GatewayConfig, io: CliIo): Promise<ProbeResult> {
  const code = await fhirCheck(config, e.id, indented(io));
  if (code === 0) return { ok: true, detail: 'discovery, token, /metadata and a page of each resource are fine' };
  if (code === 5)
    return fail(
      'connected, but some resources map with errors (listed above)',
      'keep it and fix the mapping later, or drop those resources',
    );
  const jwks = join(publicDir(config.gateway.dataDir, e.id), 'jwks.json');
  return fail(
    'the FHIR check failed (the step is listed above)',
    `check the base URL and the client id; the key pair this gateway signs with is made: register its public JWKS (${jwks}) with the vendor for client ${e.clientId}, then test again`,
  );
}

export async function probe(e: SourceEntry, config: GatewayConfig, io: CliIo): Promise<ProbeResult> {
  switch (e.kind) {
    case 'hl7':
      return probeHl7(e);
    case 'db':
      return probeDatabase(e, config, io);
    case 'folder':
      return probeFolder(e);
    case 'sftp':
      return probeSftp(e, config);
    case 'fhir':
      return probeFhir(e, config, io);
    default:
      return e satisfies never;
  }
}
