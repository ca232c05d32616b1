/**
 * Key custody at start, on the real gateway: a first run makes the key; a missing, damaged or
 * different key beside queued records is a hard, explained stop (GW_KEY_MISSING with the path),
 * never a silent new key; an outbox with nothing sealed in it takes a new key.
 */
import { DatabaseSync } from 'node:sqlite';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../config/load.ts';
import { createGateway } from '../../../gateway/create-gateway.ts';
import { isGatewayError } from '../../../gateway/errors.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { startHarness } from '../../support/gateway-harness.ts';
import { copyDataDir, queuedDataDir, rowCount, type QueuedDataDir } from './queued-data-dir.ts';

const root = new URL('../../../', import.meta.url).pathname;
const N = 20;
let q: QueuedDataDir;
beforeAll(async () => {
  q = await queuedDataDir(N);
}, 60_000);

function build(dataDir: string, over: Record<string, unknown> = {}) {
  const v = validateConfig({
    gateway: { dataDir, timezone: 'UTC' },
    hl7: { port: 0 },
    admin: { port: 0 },
    log: { level: 'silent' },
    ...over,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return createGateway({ config: v.config, logger: createLogger({ level: 'silent' }) });
}

const caught = async (f: () => Promise<unknown>) => {
  try {
    await f();
    return undefined;
  } catch (e) {
    return e;
  }
};

describe('seal key custody', () => {
  it('a first run makes the key (32 bytes, 0600) and binds the new outbox to it', async () => {
    const h = await startHarness({}, { logLevel: 'warn' });
    expect(h.gw.status().alerts).toEqual({});
    await h.stop();
    const key = readFileSync(join(h.dataDir, 'keys', 'seal.key'));
    expect(key.length).toBe(32);
    expect(statSync(join(h.dataDir, 'keys', 'seal.key')).mode & 0o777).toBe(0o600);
    const d = new DatabaseSync(join(h.dataDir, 'outbox.db'), { readOnly: true });
    expect((d.prepare('SELECT kcv FROM seal_key_check').get() as { kcv: string }).kcv).toMatch(/^[0-9a-f]{64}$/);
    d.close();
  });

  it('a deleted key beside queued records stops the start with GW_KEY_MISSING, the path and what to restore; no key is made', async () => {
    expect(q.rows).toBe(N);
    const dir = copyDataDir(q.dataDir);
    const keyFile = join(dir, 'keys', 'seal.key');
    rmSync(keyFile);
    const err = await caught(() => build(dir));
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain(
      `the seal key ${keyFile} is missing, and the outbox ${join(dir, 'outbox.db')} holds ${N} sealed row(s)`,
    );
    expect((err as Error).message).toContain('eyewear-gateway keys import BACKUP');
    expect(existsSync(keyFile)).toBe(false);
    expect(rowCount(join(dir, 'outbox.db'))).toBe(N);
  });

  it('a damaged key (wrong length) is GW_KEY_MISSING and is never overwritten', async () => {
    const dir = copyDataDir(q.dataDir);
    const keyFile = join(dir, 'keys', 'seal.key');
    writeFileSync(keyFile, readFileSync(keyFile).subarray(0, 31));
    const err = await caught(() => build(dir));
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain(`the seal key ${keyFile} is damaged (31 bytes instead of 32)`);
    expect(readFileSync(keyFile).length).toBe(31);
  });

  it('another key is caught by the key check value before anything is accepted: GW_KEY_MISSING at start, nothing listening', async () => {
    const dir = copyDataDir(q.dataDir);
    const keyFile = join(dir, 'keys', 'seal.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const gw = await build(dir);
    const err = await gw.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain(
      `the seal key ${keyFile} is not the key the outbox ${join(dir, 'outbox.db')} was written with`,
    );
    expect(gw.parts.adapters[0].health().status).not.toBe('up');
    expect(rowCount(join(dir, 'outbox.db'))).toBe(N);
  });

  it('the outbound outbox counts too: a deleted key beside queued outbound rows is GW_KEY_MISSING naming outbound.db', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-outbound-'));
    const d = new DatabaseSync(join(dir, 'outbound.db'));
    d.exec("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id TEXT, payload BLOB); INSERT INTO outbox (id, payload) VALUES ('c1', x'01')");
    d.close();
    const err = await caught(() => build(dir, { outbound: { enabled: true } }));
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain(`the outbox ${join(dir, 'outbound.db')} holds 1 sealed row(s)`);
  });

  it('a deleted key beside an outbox with nothing sealed left (all delivered) is replaced by a new one and the gateway starts', async () => {
    const h = await startHarness({}, { logLevel: 'warn' });
    await h.stop();
    rmSync(join(h.dataDir, 'keys', 'seal.key'));
    const again = await startHarness({}, { dataDir: h.dataDir, logLevel: 'warn' });
    expect(again.gw.status().alerts).toEqual({});
    await again.stop();
    expect(readFileSync(join(h.dataDir, 'keys', 'seal.key')).length).toBe(32);
  });

  it('a deleted key beside file-sink output sealed under it is GW_KEY_MISSING too: a new key would leave those files unreadable', async () => {
    const h = await startHarness({}, { logLevel: 'warn' });
    await h.stop();
    const sinkDir = join(h.dataDir, 'outbound');
    writeFileSync(join(sinkDir, 'records-2026-01-01.ndjson'), '{"id":"x"}\n');
    rmSync(join(h.dataDir, 'keys', 'seal.key'));
    const err = await caught(() => build(h.dataDir));
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain(`${sinkDir} holds 1 file(s) of records sealed under it`);
    expect(existsSync(join(h.dataDir, 'keys', 'seal.key'))).toBe(false);
  });

  it('the command line says the code, the path and what to do, exit 1, without a stack or SQLite text', () => {
    const dir = copyDataDir(q.dataDir);
    rmSync(join(dir, 'keys', 'seal.key'));
    const cfg = join(dir, 'gateway.yaml');
    writeFileSync(cfg, `gateway:\n  dataDir: ${dir}\n  timezone: UTC\nhl7:\n  port: 0\nadmin:\n  enabled: false\nlog:\n  level: warn\n`);
    const r = spawnSync(process.execPath, [join(root, 'bin/eyewear-gateway.js'), 'start', '--config', cfg], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`error GW_KEY_MISSING: the seal key ${join(dir, 'keys', 'seal.key')} is missing`);
    expect(r.stderr).toContain('what to do: Restore `<dataDir>/keys/seal.key` from its backup');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
