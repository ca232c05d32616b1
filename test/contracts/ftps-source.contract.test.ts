/**
 * The FTPS file source against the SourceAdapter contract: a real pure-ftpd on loopback
 * (test/support/ftpd.ts, explicit TLS, its throwaway CA), listed every second by its cron schedule.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createRemoteFileSource } from '../../adapters/file/remote-source.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { startFtps, type FtpsServer } from '../support/ftpd.ts';
import { SFTP_USER } from '../support/sshd.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

let server: Promise<FtpsServer> | undefined;
const ftpd = () => (server ??= startFtps());
afterAll(async () => {
  if (server) await (await server).stop();
});

let folders = 0;

function remoteSource(s: FtpsServer, remoteDir: string, stagingDir: string) {
  return createRemoteFileSource({
    id: 'ftps-contract',
    dir: remoteDir,
    extensions: ['.hl7'],
    stableMs: 0,
    marker: '',
    after: 'move',
    stagingDir,
    remote: {
      kind: 'ftps',
      ftps: { host: '127.0.0.1', port: s.port, username: s.user, password: s.password, ca: s.ca, certSha256: '', schedule: '* * * * * *' },
    },
    import: {
      adapterId: 'ftps-contract',
      profile: 'hl7v2',
      format: 'hl7v2',
      csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' },
      maxWholeFileBytes: 1 << 20,
      pageSize: 50,
      timezone: 'UTC',
      now: () => Date.now(),
    },
  });
}

sourceAdapterContract({
  name: 'FTPS file source',
  whileStopped: 'queued',
  // each listing opens a TLS control and data connection to pure-ftpd: an input takes seconds
  timeoutMs: 120_000,
  async make() {
    const s = await ftpd();
    const name = `export-${++folders}`;
    const local = s.mkdir(name);
    const scratch = mkdtempSync(join(tmpdir(), 'ewml-ftps-contract-'));
    const adapter = remoteSource(s, `/${name}`, join(scratch, 'staging'));
    const uid = Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' }));
    return {
      adapter,
      async feed(n) {
        // written under a name the source skips, then renamed: a listing never sees half a file
        const tmp = join(local, `${tagOf(n)}.hl7.part`);
        writeFileSync(tmp, adtA04({ id: tagOf(n) }));
        chownSync(tmp, uid, uid);
        execFileSync('mv', [tmp, join(local, `${tagOf(n)}.hl7`)]);
      },
      async cleanup() {
        await adapter.stop();
        rmSync(scratch, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    // the staging folder cannot be made (a file holds the name of its parent): the start rejects
    const s = await ftpd();
    const name = `export-${++folders}`;
    s.mkdir(name);
    const scratch = mkdtempSync(join(tmpdir(), 'ewml-ftps-contract-'));
    writeFileSync(join(scratch, 'data'), 'not a folder');
    const adapter = remoteSource(s, `/${name}`, join(scratch, 'data', 'staging'));
    return {
      adapter,
      async fix() {
        rmSync(join(scratch, 'data'));
      },
      async cleanup() {
        await adapter.stop();
        rmSync(scratch, { recursive: true, force: true });
      },
    };
  },
});
