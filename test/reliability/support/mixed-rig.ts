/**
 * Everything a mixed-source reliability case runs against, all real and all on loopback: a
 * PostgreSQL with Practice Studio's schema, an OpenSSH sshd for the SFTP folder, the reference
 * cloud over HTTPS (decrypting and validating every record), and the gateway as a child process
 * (the CLI, as a practice runs it) reading an MLLP port, a folder file drop, the SFTP folder and
 * the database at once. The child's stdout and stderr are kept (the PHI sweep reads them) and its
 * temporary files go to a folder of their own (TMPDIR).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';
import { childGateway, type ChildExit, type ChildGateway } from '../../support/child-gateway.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { freePort } from '../../support/net.ts';
import { startPostgres, type PgServer } from '../../support/postgres.ts';
import { createPracticeStudio } from '../../support/practice-studio-db.ts';
import { SFTP_USER, startSshd, type SshServer } from '../../support/sshd.ts';
import { makeTestPki } from '../../support/tls.ts';
import { markerStore, type MarkerStore } from './checker.ts';
import type { LoadTargets } from './load-driver.ts';

export interface MixedRig {
  dir: string;
  dataDir: string;
  /** The child's TMPDIR. */
  tmpDir: string;
  dropDir: string;
  sftpDir: string;
  mllpPort: number;
  adminPort: number;
  cloud: HttpReferenceCloud;
  received: MarkerStore;
  pg: PgServer;
  sshd: SshServer;
  gateway: ChildGateway;
  targets: LoadTargets;
  /** Everything the child wrote on stdout and stderr, every run (capped; see `outputBytes`). */
  output: string[];
  outputBytes(): number;
  /** Exits the test did not cause (a start-up that failed, a crash). */
  unexpectedExits: ChildExit[];
  /** GET on the admin API (bearer token), parsed; undefined when it does not answer. */
  admin(path: string): Promise<{ status: number; body: Record<string, unknown> } | undefined>;
  /** GET on the admin API, the body as text (`/metrics`). */
  adminText(path: string): Promise<string | undefined>;
  stop(): Promise<void>;
}

/** Output kept in memory; a soak at full size at info level stays far below it. */
const OUTPUT_CAP_BYTES = 64 * 1024 * 1024;

export async function startMixedRig(o: { name: string; logLevel?: string; batchSize?: number }): Promise<MixedRig> {
  const dir = mkdtempSync(join(tmpdir(), `ewml-${o.name}-`));
  const dataDir = join(dir, 'data');
  const tmpDir = join(dir, 'child-tmp');
  const dropDir = join(dir, 'drop');
  for (const d of [tmpDir, dropDir]) mkdirSync(d);
  const keys = makeCloudKeys();
  const pki = makeTestPki();
  const received = markerStore();
  const [pg, sshd, cloud] = await Promise.all([
    startPostgres(),
    startSshd(),
    startHttpReferenceCloud({ privateKey: keys.privateKey, tls: { cert: pki.cert, key: pki.key }, store: received.store }),
  ]);
  const db = await createPracticeStudio(pg, 'postgres', { patients: 0 });
  const sftpDir = sshd.mkdir('export');
  const sftpStaging = sshd.mkdir('staging');
  const [mllpPort, adminPort] = [await freePort(), await freePort()];
  const token = `rig-${process.pid}-${Date.now()}`;
  writeFileSync(join(dir, 'pub.pem'), keys.publicPem);
  writeFileSync(join(dir, 'ca.pem'), pki.ca);
  writeFileSync(join(dir, 'sftp_key'), sshd.clientKey, { mode: 0o600 });
  const config = join(dir, 'gateway.yaml');
  // JSON is YAML: no quoting to get wrong
  writeFileSync(
    config,
    JSON.stringify(
      {
        gateway: { dataDir, timezone: 'UTC' },
        log: { level: o.logLevel ?? 'info' },
        hl7: { port: mllpPort },
        admin: { port: adminPort, token },
        relay: { sink: 'https', batchSize: o.batchSize ?? 200, backoffInitialMs: 50, backoffMaxMs: 500, idlePollMs: 100 },
        https: { url: cloud.url, ca: `\${file:${join(dir, 'ca.pem')}}` },
        cloud: { publicKey: `\${file:${join(dir, 'pub.pem')}}` },
        files: [
          { id: 'drop', dir: dropDir, profile: 'optical-csv', stableMs: 200, pageSize: 100 },
          {
            id: 'sftp',
            source: 'sftp',
            dir: sftpDir,
            profile: 'optical-csv',
            stableMs: 0,
            pageSize: 100,
            sftp: {
              host: '127.0.0.1',
              port: sshd.port,
              username: sshd.user,
              privateKey: `\${file:${join(dir, 'sftp_key')}}`,
              hostKeySha256: sshd.hostKeySha256,
              schedule: '* * * * * *',
            },
          },
        ],
        databases: [
          {
            id: 'ps',
            engine: 'postgres',
            profile: 'practice-studio',
            port: pg.port,
            database: db.database,
            user: db.user,
            password: db.password,
            pageSize: 500,
            pollIntervalMs: 200,
            overlapSeconds: 2,
          },
        ],
      },
      null,
      2,
    ),
  );
  const output: string[] = [];
  let bytes = 0;
  const unexpectedExits: ChildExit[] = [];
  const gateway = childGateway(
    () => config,
    () => adminPort,
    {
      env: { TMPDIR: tmpDir },
      onOutput: (_stream, chunk) => {
        if (bytes < OUTPUT_CAP_BYTES) {
          output.push(chunk);
          bytes += chunk.length;
        }
      },
      onExit: (e) => {
        if (!e.signalledByTest) unexpectedExits.push(e);
      },
    },
  );
  const uid = Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', SFTP_USER], { encoding: 'utf8' }));
  const targets: LoadTargets = {
    mllpPort,
    dropDir,
    sftpDir,
    sftpOwner: { uid, gid },
    stagingDir: join(dir, 'drop-staging'),
    sftpStagingDir: sftpStaging,
    db: { ...pg.admin, database: db.database },
  };
  return {
    dir,
    dataDir,
    tmpDir,
    dropDir,
    sftpDir,
    mllpPort,
    adminPort,
    cloud,
    received,
    pg,
    sshd,
    gateway,
    targets,
    output,
    unexpectedExits,
    outputBytes: () => bytes,
    async admin(path) {
      try {
        const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(5000),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      } catch {
        return undefined;
      }
    },
    async adminText(path) {
      try {
        const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(5000),
        });
        return await res.text();
      } catch {
        return undefined;
      }
    },
    async stop() {
      await gateway.kill();
      await cloud.stop();
      await Promise.allSettled([pg.stop(), sshd.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits (bounded) until `/ready` answers 200; returns the last answer's reasons when it never does. */
export async function waitReady(rig: MixedRig, timeoutMs = 30_000): Promise<{ ready: boolean; reasons: string[] }> {
  const until = Date.now() + timeoutMs;
  let last: string[] = ['no answer'];
  while (Date.now() < until) {
    const r = await rig.admin('/ready');
    if (r?.status === 200) return { ready: true, reasons: [] };
    if (r) last = (r.body.reasons as string[] | undefined) ?? [`status ${r.status}`];
    if (!rig.gateway.running()) return { ready: false, reasons: ['the gateway exited', ...last] };
    await new Promise((res) => setTimeout(res, 50));
  }
  return { ready: false, reasons: last };
}

/** The alerts `/status` shows (code by key). */
export async function activeAlerts(rig: MixedRig): Promise<Record<string, string>> {
  const r = await rig.admin('/status');
  const alerts = (r?.body.alerts ?? {}) as Record<string, { code: string }>;
  return Object.fromEntries(Object.entries(alerts).map(([k, v]) => [k, v.code]));
}
