/**
 * `keys export` / `keys import`: the key wrapped under a passphrase (a JWE jose opens), restored
 * only after it is proved to open this outbox, written atomically at 0600, never replacing a key
 * without --replace; and a restored key brings back every queued record.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../config/load.ts';
import type { GatewayConfig } from '../../../config/schema.ts';
import { runCommand, type CliIo } from '../../../cli/index.ts';
import { keyCheckValue } from '../../../gateway/crypto/key-check.ts';
import { mountSmallDisk, type SmallDisk } from '../../support/small-disk.ts';
import { copyDataDir, queuedDataDir, queuedRecords, type QueuedDataDir } from './queued-data-dir.ts';

const PASS = 'correct horse battery';
let q: QueuedDataDir;
beforeAll(async () => {
  q = await queuedDataDir(10);
}, 60_000);

function cli(dataDir: string, o: { env?: Record<string, string>; askSecret?: (p: string) => Promise<string> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const v = validateConfig({ gateway: { dataDir } });
  if (!v.ok) throw new Error('bad config');
  const io: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    readFile: (p) => readFileSync(p, 'utf8'),
    loadConfig: (): GatewayConfig => v.config,
    env: o.env ?? { PASS },
    ...(o.askSecret ? { askSecret: o.askSecret } : {}),
  };
  return { run: (...args: string[]) => runCommand(args, io), out, err };
}

describe('keys export / import', () => {
  it('export refuses an empty or short passphrase, and asks for one only on a terminal', async () => {
    const dir = copyDataDir(q.dataDir);
    const file = join(dir, 'backup.jwe');
    const short = cli(dir, { env: { P: 'short' } });
    expect(await short.run('keys', 'export', file, '--passphrase-env', 'P')).toBe(2);
    expect(short.err.join('\n')).toContain('at least 12 characters');
    const none = cli(dir, { env: { P: '' } });
    expect(await none.run('keys', 'export', file, '--passphrase-env', 'P')).toBe(2);
    const unset = cli(dir, { env: {} });
    expect(await unset.run('keys', 'export', file, '--passphrase-env', 'NOPE')).toBe(2);
    expect(unset.err.join('\n')).toContain('NOPE (--passphrase-env) is not set');
    const noTty = cli(dir, { env: {} });
    expect(await noTty.run('keys', 'export', file)).toBe(2);
    expect(noTty.err.join('\n')).toContain('--passphrase-env VAR, or run in a terminal');
    expect(existsSync(file)).toBe(false);
    // on a terminal: asked twice, without echo (the prompt function is the terminal's)
    const asked: string[] = [];
    const tty = cli(dir, {
      env: {},
      askSecret: async (p) => {
        asked.push(p);
        return PASS;
      },
    });
    expect(await tty.run('keys', 'export', file)).toBe(0);
    expect(asked).toEqual(['Passphrase: ', 'Passphrase again: ']);
  });

  it('export writes a 0600 JWE (PBES2-HS512+A256KW, 600,000 iterations, A256GCM) that does not hold the key in the clear', async () => {
    const dir = copyDataDir(q.dataDir);
    const file = join(dir, 'backup.jwe');
    const c = cli(dir);
    expect(await c.run('keys', 'export', file, '--passphrase-env', 'PASS')).toBe(0);
    const key = readFileSync(join(dir, 'keys', 'seal.key'));
    expect(c.out[0]).toContain(`key check ${keyCheckValue(key).slice(0, 12)}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8').trim();
    expect(decodeProtectedHeader(text)).toMatchObject({
      alg: 'PBES2-HS512+A256KW',
      enc: 'A256GCM',
      p2c: 600_000,
      cty: 'ewml-seal-key+json',
    });
    for (const enc of ['base64url', 'base64', 'hex'] as const) expect(text).not.toContain(key.toString(enc));
    // never over an existing file
    expect(await c.run('keys', 'export', file, '--passphrase-env', 'PASS')).toBe(1);
  });

  it('a deleted key restored from its backup opens every queued record again', async () => {
    const dir = copyDataDir(q.dataDir);
    const file = join(dir, 'backup.jwe');
    const keyFile = join(dir, 'keys', 'seal.key');
    const c = cli(dir);
    expect(await c.run('keys', 'export', file, '--passphrase-env', 'PASS')).toBe(0);
    const key = readFileSync(keyFile);
    rmSync(keyFile);
    expect(await c.run('keys', 'import', file, '--passphrase-env', 'PASS')).toBe(0);
    expect(readFileSync(keyFile).equals(key)).toBe(true);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(queuedRecords(join(dir, 'outbox.db'), readFileSync(keyFile))).toEqual(q.records);
    expect(readdirSync(join(dir, 'keys'))).toEqual(['seal.key']);
  });

  it('a wrong passphrase or a damaged backup is GW_KEY_IMPORT and writes nothing', async () => {
    const dir = copyDataDir(q.dataDir);
    const file = join(dir, 'backup.jwe');
    expect(await cli(dir).run('keys', 'export', file, '--passphrase-env', 'PASS')).toBe(0);
    rmSync(join(dir, 'keys', 'seal.key'));
    const wrong = cli(dir, { env: { PASS: 'not the passphrase' } });
    expect(await wrong.run('keys', 'import', file, '--passphrase-env', 'PASS')).toBe(1);
    expect(wrong.err.join('\n')).toContain('error GW_KEY_IMPORT: the backup could not be opened');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, 40) + (text[40] === 'A' ? 'B' : 'A') + text.slice(41));
    expect(await cli(dir).run('keys', 'import', file, '--passphrase-env', 'PASS')).toBe(1);
    expect(existsSync(join(dir, 'keys', 'seal.key'))).toBe(false);
  });

  it("another gateway's backup is refused when it does not open this outbox; a key in place is replaced only with --replace", async () => {
    const other = copyDataDir(q.dataDir);
    writeFileSync(join(other, 'keys', 'seal.key'), randomBytes(32));
    const foreign = join(other, 'foreign.jwe');
    expect(await cli(other).run('keys', 'export', foreign, '--passphrase-env', 'PASS')).toBe(0);
    const dir = copyDataDir(q.dataDir);
    const keyFile = join(dir, 'keys', 'seal.key');
    const key = readFileSync(keyFile);
    const c = cli(dir);
    expect(await c.run('keys', 'import', foreign, '--passphrase-env', 'PASS', '--replace')).toBe(1);
    expect(c.err.join('\n')).toContain(`does not open the outbox ${join(dir, 'outbox.db')} (10 sealed row(s))`);
    expect(readFileSync(keyFile).equals(key)).toBe(true);
    // the right backup over a wrong key: refused without --replace, done with it (the old key kept beside)
    const mine = join(dir, 'mine.jwe');
    expect(await c.run('keys', 'export', mine, '--passphrase-env', 'PASS')).toBe(0);
    writeFileSync(keyFile, randomBytes(32));
    const d = cli(dir);
    expect(await d.run('keys', 'import', mine, '--passphrase-env', 'PASS')).toBe(1);
    expect(d.err.join('\n')).toContain('a different key is already at');
    expect(await d.run('keys', 'import', mine, '--passphrase-env', 'PASS', '--replace')).toBe(0);
    expect(readFileSync(keyFile).equals(key)).toBe(true);
    expect(readdirSync(join(dir, 'keys')).filter((f) => f.startsWith('seal.key.replaced-'))).toHaveLength(1);
  });

  describe('on a full disk', () => {
    let disk: SmallDisk | undefined;
    afterAll(() => disk?.unmount());

    it('an import that cannot be written leaves no key and no partial file behind, and works once there is room', async () => {
      const dir = copyDataDir(q.dataDir);
      const backup = join(dir, 'backup.jwe');
      expect(await cli(dir).run('keys', 'export', backup, '--passphrase-env', 'PASS')).toBe(0);
      disk = mountSmallDisk(64 * 1024);
      // fill the disk completely
      try {
        writeFileSync(join(disk.dir, 'filler'), Buffer.alloc(128 * 1024));
      } catch {
        /* ENOSPC: full, as wanted */
      }
      const c = cli(disk.dir);
      expect(await c.run('keys', 'import', backup, '--passphrase-env', 'PASS')).toBe(1);
      expect(c.err.join('\n')).toContain(
        `error GW_KEY_IMPORT: could not write ${join(disk.dir, 'keys', 'seal.key')} (ENOSPC); no key was written`,
      );
      expect(existsSync(join(disk.dir, 'keys', 'seal.key'))).toBe(false);
      expect(readdirSync(join(disk.dir, 'keys'))).toEqual([]);
      rmSync(join(disk.dir, 'filler'), { force: true });
      expect(await cli(disk.dir).run('keys', 'import', backup, '--passphrase-env', 'PASS')).toBe(0);
      expect(readFileSync(join(disk.dir, 'keys', 'seal.key')).equals(readFileSync(join(dir, 'keys', 'seal.key')))).toBe(true);
    });
  });
});
