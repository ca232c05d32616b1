/**
 * A remote (SFTP) source's staging folder holds plaintext copies of export files only while one is
 * imported. A gateway killed after moving a file on the server and before removing its copy left
 * the copy behind for good (the crash-mixed reliability case found two after 50 kills): the source
 * now clears its staging folder when it starts and when it stops.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { startSshd, type SshServer } from '../../support/sshd.ts';

let sshd: SshServer;
let h: Harness | undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'ewml-staging-'));

beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);
afterAll(async () => {
  await h?.stop();
  await sshd?.stop();
});

describe('remote file sources: staging', () => {
  it('removes a copy a killed run left in its staging folder when it starts', async () => {
    const staging = join(dataDir, 'staging', 'ecw');
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'patients_1125.csv'), 'PatientID,LastName\n501,Sample\n');
    h = await startHarness(
      {
        hl7: { enabled: false },
        files: [
          {
            id: 'ecw',
            source: 'sftp',
            dir: sshd.mkdir('export'),
            profile: 'eclinicalworks',
            stableMs: 0,
            sftp: {
              host: '127.0.0.1',
              port: sshd.port,
              username: sshd.user,
              privateKey: sshd.clientKey,
              hostKeySha256: sshd.hostKeySha256,
              schedule: '0 0 0 1 1 *',
            },
          },
        ] as never,
      },
      { dataDir },
    );
    expect(existsSync(staging)).toBe(true);
    expect(readdirSync(staging)).toEqual([]);
  });

  it('leaves no staging folder behind when it stops (the PHI sweep found a copy after an orderly stop)', async () => {
    const staging = join(dataDir, 'staging', 'ecw');
    writeFileSync(join(staging, 'patients_1126.csv'), 'PatientID,LastName\n502,Sample\n');
    await h?.stop();
    h = undefined;
    expect(existsSync(staging)).toBe(false);
  });
});
