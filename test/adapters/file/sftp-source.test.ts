/**
 * Export files on a real OpenSSH sshd (127.0.0.1, key auth, generated host key): picked up on
 * the cron schedule, imported exactly once, moved to processed/ on the server; a server with
 * another host key is refused before authenticating.
 */
import { chownSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSftp } from '../../../adapters/file/remote-folder.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startSshd, SFTP_USER, type SshServer } from '../../support/sshd.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();
let sshd: SshServer;
let cloud: HttpReferenceCloud;
let h: Harness;
let exportDir: string;

function put(name: string, text: string): void {
  const p = join(exportDir, name);
  writeFileSync(p, text);
  const uid = Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' }));
  chownSync(p, uid, uid);
}

beforeAll(async () => {
  sshd = await startSshd();
  exportDir = sshd.mkdir('export');
  cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  h = await startHarness(
    {
      hl7: { enabled: false },
      relay: { sink: 'https' },
      https: { url: cloud.url },
      cloud: { publicKey: keys.publicPem },
      files: [
        {
          id: 'ecw',
          source: 'sftp',
          dir: exportDir,
          profile: 'eclinicalworks',
          stableMs: 0,
          sftp: {
            host: '127.0.0.1',
            port: sshd.port,
            username: sshd.user,
            privateKey: sshd.clientKey,
            hostKeySha256: sshd.hostKeySha256,
            schedule: '* * * * * *',
          },
        },
      ] as never,
    },
    { logLevel: 'info' },
  );
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await cloud?.stop();
  await sshd?.stop();
});

describe('file sources: SFTP', () => {
  it('imports an eClinicalWorks export from the server and moves it to processed/ there', async () => {
    put(
      'patients_1125.csv',
      'PatientID,AccountNo,LastName,FirstName,DOB,Sex,HomePhone,Email\n501,A-501,Sample,Gia,03/09/1977,female,555-0105,g@example.test\n502,A-502,Fixture,Hal,11/30/1969,male,,\n',
    );
    put(
      'appt_1125.csv',
      'EncounterID,PatientID,ApptDate,ApptStartTime,Status,VisitType,Reason,DoctorID\nE9,501,12/02/2026,2:15 PM,PEN,EYE-EXAM,Blurry vision,D3\n',
    );
    await waitFor(() => cloud.store.records.size >= 3, 15_000, 'three records');
    const recs = [...cloud.store.records.values()];
    expect(recs.find((r) => r.source.sourceId === 'patients/501')!.data).toMatchObject({
      identifiers: [
        { system: 'ECW', value: '501' },
        { system: 'ECW-ACCOUNT', value: 'A-501' },
      ],
      birthDate: '1977-03-09',
      sex: 'female',
    });
    expect(recs.find((r) => r.source.sourceId === 'appointments/E9')!.data).toMatchObject({
      start: '2026-12-02T14:15:00Z',
      status: 'pending',
      reason: 'Blurry vision',
    });
    await waitFor(
      () => existsSync(join(exportDir, 'processed')) && readdirSync(join(exportDir, 'processed')).length === 2,
      10_000,
      'moved on the server',
    );
    expect(readdirSync(exportDir).filter((f) => f.endsWith('.csv'))).toEqual([]);
  });

  it('puts a file that cannot be read into error/ on the server with the reason', async () => {
    put('patients_bad.csv', 'PatientID,LastName\n"unterminated\n');
    const reason = join(exportDir, 'error', 'patients_bad.csv.reason.txt');
    await waitFor(() => existsSync(reason) && readFileSync(reason, 'utf8').length > 0, 15_000, 'reason file on the server');
    expect(readFileSync(join(exportDir, 'error', 'patients_bad.csv.reason.txt'), 'utf8')).toContain('GW_PARSE_FAILED');
  });

  it('refuses a server whose host key is not the pinned one, before authenticating', async () => {
    await expect(
      connectSftp({
        host: '127.0.0.1',
        port: sshd.port,
        username: sshd.user,
        privateKey: sshd.clientKey,
        hostKeySha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        schedule: '',
      }),
    ).rejects.toThrow(/host key is SHA256:.* not the pinned SHA256:AAAA.*refused/);
    await expect(
      connectSftp({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKey: sshd.clientKey, hostKeySha256: '', schedule: '' }),
    ).rejects.toThrow(/hostKeySha256 is required/);
    const ok = await connectSftp({
      host: '127.0.0.1',
      port: sshd.port,
      username: sshd.user,
      privateKey: sshd.clientKey,
      hostKeySha256: sshd.hostKeySha256,
      schedule: '',
    });
    await ok.close();
  });
});
