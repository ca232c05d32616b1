/**
 * The SFTP file source against the SourceAdapter contract: a real OpenSSH sshd on loopback
 * (test/support/sshd.ts), listed every second by its cron schedule.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createRemoteFileSource } from '../../adapters/file/remote-source.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { SFTP_USER, startSshd, type SshServer } from '../support/sshd.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

let server: Promise<SshServer> | undefined;
const sshd = () => (server ??= startSshd());
afterAll(async () => {
  if (server) await (await server).stop();
});

let folders = 0;

function remoteSource(s: SshServer, dir: string, stagingDir: string) {
  return createRemoteFileSource({
    id: 'sftp-contract',
    dir,
    extensions: ['.hl7'],
    stableMs: 0,
    marker: '',
    after: 'move',
    stagingDir,
    remote: {
      kind: 'sftp',
      sftp: {
        host: '127.0.0.1',
        port: s.port,
        username: s.user,
        privateKey: s.clientKey,
        hostKeySha256: s.hostKeySha256,
        schedule: '* * * * * *',
      },
    },
    import: {
      adapterId: 'sftp-contract',
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
  name: 'SFTP file source',
  whileStopped: 'queued',
  // the first case starts sshd (and may install it, as .ci/run would)
  timeoutMs: 90_000,
  async make() {
    const s = await sshd();
    const dir = s.mkdir(`export-${++folders}`);
    const local = mkdtempSync(join(tmpdir(), 'ewml-sftp-contract-'));
    const adapter = remoteSource(s, dir, join(local, 'staging'));
    const uid = Number(execFileSync('id', ['-u', SFTP_USER], { encoding: 'utf8' }));
    return {
      adapter,
      async feed(n) {
        // written under a name the source skips, then renamed: a listing never sees half a file
        const tmp = join(dir, `${tagOf(n)}.hl7.part`);
        writeFileSync(tmp, adtA04({ id: tagOf(n) }));
        chownSync(tmp, uid, uid);
        execFileSync('mv', [tmp, join(dir, `${tagOf(n)}.hl7`)]);
      },
      async cleanup() {
        await adapter.stop();
        rmSync(local, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    // the staging folder cannot be made (a file holds the name of its parent): the start rejects
    const s = await sshd();
    const dir = s.mkdir(`export-${++folders}`);
    const local = mkdtempSync(join(tmpdir(), 'ewml-sftp-contract-'));
    writeFileSync(join(local, 'data'), 'not a folder');
    const adapter = remoteSource(s, dir, join(local, 'data', 'staging'));
    return {
      adapter,
      async fix() {
        rmSync(join(local, 'data'));
      },
      async cleanup() {
        await adapter.stop();
        rmSync(local, { recursive: true, force: true });
      },
    };
  },
});
