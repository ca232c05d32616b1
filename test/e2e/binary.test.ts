/**
 * The single executable: built by `npm run build:binary`, copied alone into an empty folder (no
 * node_modules, no sources), started, and one HL7 message sent through it to the file sink.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectMllp, readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { freePort, waitFor, waitForPort } from '../support/net.ts';

const root = new URL('../../', import.meta.url).pathname;

describe('single executable', () => {
  it('runs with nothing beside it and delivers one HL7 message to the file sink', { timeout: 180_000 }, async () => {
    // the Linux executable only: the Windows one has its own test (test/installer/windows-exe.test.ts)
    execFileSync(process.execPath, [join(root, 'installer/build-binary.ts'), '--platform', 'linux-x64'], {
      cwd: root,
      stdio: 'pipe',
      timeout: 150_000,
    });
    const dir = mkdtempSync(join(tmpdir(), 'ewml-bin-'));
    const exe = join(dir, 'eyewear-gateway');
    copyFileSync(join(root, 'dist/eyewear-gateway'), exe);
    execFileSync('chmod', ['755', exe]);
    expect(execFileSync(exe, ['version'], { cwd: dir, encoding: 'utf8' }).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const [mllp, admin] = [await freePort(), await freePort()];
    const child = spawn(exe, ['start'], {
      cwd: dir,
      env: { PATH: '/usr/bin:/bin', EWML__HL7__PORT: String(mllp), EWML__ADMIN__PORT: String(admin) },
      stdio: 'ignore',
    });
    try {
      await waitForPort(mllp, 20_000);
      const c = await connectMllp('127.0.0.1', mllp);
      expect(readAck(await c.send(adtA04({ id: 'BIN1' }))).code).toBe('AA');
      await c.close();
      const out = join(dir, 'data', 'outbound');
      await waitFor(
        () => {
          try {
            return readdirSync(out).length > 0;
          } catch {
            return false;
          }
        },
        10_000,
        'file sink output',
      );
      await new Promise((r) => setTimeout(r, 200));
      const text = execFileSync(exe, ['unseal', join(out, readdirSync(out)[0])], { cwd: dir, encoding: 'utf8' });
      const recs = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; source: { messageId: string } });
      expect(recs.map((r) => r.type)).toContain('patient');
      expect(recs.every((r) => r.source.messageId === 'BIN1')).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
