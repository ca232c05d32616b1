/**
 * Export files on a real FTPS server (pure-ftpd, TLS required, 127.0.0.1): imported on the cron
 * schedule and moved to processed/ there; files for the PMS uploaded there atomically; a server
 * whose certificate is not the pinned one refused.
 */
import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileWriter } from '../../../adapters/file/file-output.ts';
import { connectFtps } from '../../../adapters/file/remote-folder.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startFtps, type FtpsServer } from '../../support/ftpd.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { SFTP_USER } from '../../support/sshd.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();
let ftps: FtpsServer;
let cloud: HttpReferenceCloud;
let h: Harness;
let exportDir: string;

beforeAll(async () => {
  ftps = await startFtps();
  exportDir = ftps.mkdir('export');
  ftps.mkdir('inbox');
  cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  h = await startHarness(
    {
      hl7: { enabled: false },
      relay: { sink: 'https' },
      https: { url: cloud.url },
      cloud: { publicKey: keys.publicPem },
      files: [
        {
          id: 'ftps',
          source: 'ftps',
          dir: '/export',
          profile: 'allscripts-legacy',
          stableMs: 0,
          ftps: { host: '127.0.0.1', port: ftps.port, username: ftps.user, password: ftps.password, ca: ftps.ca, schedule: '* * * * * *' },
        },
      ] as never,
    },
    { logLevel: 'info' },
  );
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await cloud?.stop();
  await ftps?.stop();
});

describe('file sources: FTPS', () => {
  it('imports an Allscripts pipe-delimited export (no header) and moves it to processed/ on the server', async () => {
    const p = join(exportDir, 'demographics_1125.txt');
    writeFileSync(p, 'A100|Sample|Lea|Q|19750412|F|1 Test Way||Testville|TX|75003|555-0109\nA101|Fixture|Finn||19820101|M|||||||\n');
    const uid = Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' }));
    chownSync(p, uid, uid);
    await waitFor(() => cloud.store.records.size >= 2, 15_000, 'two patients');
    const a100 = [...cloud.store.records.values()].find((r) => r.source.sourceId === 'demographics/A100')!;
    expect(a100.data).toMatchObject({
      identifiers: [{ system: 'ALLSCRIPTS', value: 'A100', type: 'MR' }],
      name: { family: 'Sample', given: ['Lea', 'Q'] },
      birthDate: '1975-04-12',
      sex: 'female',
    });
    await waitFor(() => existsSync(join(exportDir, 'processed', 'demographics_1125.txt')), 10_000, 'moved on the server');
  });

  it('uploads a file for the PMS over FTPS under its final name only when complete', async () => {
    const w = createFileWriter({
      id: 'f',
      kind: 'ftps',
      dir: '/inbox',
      csvDelimiter: ',',
      ftps: { host: '127.0.0.1', port: ftps.port, username: ftps.user, password: ftps.password, ca: ftps.ca, certSha256: '', schedule: '' },
    });
    await w.write({ name: 'status.csv', format: 'csv', rows: [{ order: 'O-9', status: 'ready' }] });
    expect(readFileSync(join(ftps.home, 'inbox', 'status.csv'), 'utf8')).toBe('order,status\r\nO-9,ready\r\n');
    expect(readdirSync(join(ftps.home, 'inbox'))).toEqual(['status.csv']);
  });

  it('accepts the server by its pinned certificate fingerprint, refuses another, and needs one of ca/pin', async () => {
    const fp = new X509Certificate(readFileSync(join(ftps.home, '..', 'cert.pem'))).fingerprint256;
    const ok = await connectFtps({
      host: '127.0.0.1',
      port: ftps.port,
      username: ftps.user,
      password: ftps.password,
      certSha256: fp,
      schedule: '',
    });
    await ok.close();
    await expect(
      connectFtps({
        host: '127.0.0.1',
        port: ftps.port,
        username: ftps.user,
        password: ftps.password,
        certSha256: 'AA:'.repeat(31) + 'AA',
        schedule: '',
      }),
    ).rejects.toThrow(/not the pinned .*refused/);
    await expect(
      connectFtps({ host: '127.0.0.1', port: ftps.port, username: ftps.user, password: ftps.password, certSha256: '', schedule: '' }),
    ).rejects.toThrow(/needs `ca`.*or `certSha256`/);
  });
});
