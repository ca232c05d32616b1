/**
 * A running gateway reloads its config: validate → plan → apply. A config that does not validate
 * changes nothing; a changed source is started again with its new settings, an added one started, a
 * removed one stopped; `log.level` applies at once; a field that needs a restart says so.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { createGateway, type Gateway } from '../../gateway/create-gateway.ts';
import { createLogger } from '../../gateway/logger.ts';
import { freePort } from '../support/net.ts';

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-reload-'));
  const drops = { a: join(dir, 'drop-a'), b: join(dir, 'drop-b') };
  mkdirSync(drops.a);
  mkdirSync(drops.b);
  const file = join(dir, 'gateway.yaml');
  const write = (o: {
    hl7Port: number;
    files: Array<[string, string]>;
    level?: string;
    maxBytes?: number;
    extra?: string;
    profile?: string;
  }) =>
    writeFileSync(
      file,
      [
        'version: 2',
        `gateway:\n  dataDir: ${join(dir, 'data')}\n  timezone: UTC`,
        `log:\n  level: ${o.level ?? 'silent'}`,
        `hl7:\n  port: ${o.hl7Port}${o.profile ? `\n  profile: ${o.profile}` : ''}`,
        'admin:\n  port: 0',
        `outbox:\n  maxBytes: ${o.maxBytes ?? 1073741824}`,
        o.files.length
          ? `files:\n${o.files.map(([id, d]) => `  - id: ${id}\n    dir: ${d}\n    profile: hl7v2\n    polling: true\n    pollMs: 100`).join('\n')}`
          : '',
        o.extra ?? '',
      ].join('\n'),
    );
  return { dir, drops, file, write };
}

describe('config reload while running', () => {
  it('re-creates the changed listener, adds and removes file sources, applies log.level, and names what waits for a restart', async () => {
    const s = setup();
    const [p1, p2] = [await freePort(), await freePort()];
    s.write({ hl7Port: p1, files: [['drop-a', s.drops.a]] });
    const logger = createLogger({ level: 'silent' });
    gw = await createGateway({
      config: loadConfig({ file: s.file, env: {} }),
      logger,
      loadConfig: () => loadConfig({ file: s.file, env: {} }),
    });
    await gw.start();
    expect(await listening(p1)).toBe(true);
    expect(gw.parts.adapters.map((a) => a.id)).toEqual(['hl7v2', 'drop-a']);

    s.write({ hl7Port: p2, files: [['drop-b', s.drops.b]], level: 'debug', maxBytes: 2147483648 });
    const app = gw.parts.admin!.app;
    const auth = { authorization: `Bearer ${gw.parts.token}` };
    const r = await app.inject({ method: 'POST', url: '/config/reload', headers: auth });
    expect(r.statusCode).toBe(200);
    const body = r.json() as {
      applied: { live: string[]; adapters: { add: string[]; remove: string[]; recreate: string[] }; restart: string[] };
      restartRequired: boolean;
      waitingForRestart: string[];
    };
    expect(body.applied.adapters).toEqual({ add: ['drop-b'], remove: ['drop-a'], recreate: ['hl7v2'] });
    expect(body.applied.live).toEqual(['log.level']);
    expect([body.restartRequired, body.waitingForRestart]).toEqual([true, ['outbox.maxBytes']]);
    expect(logger.level).toBe('debug');
    expect(gw.parts.adapters.map((a) => a.id)).toEqual(['hl7v2', 'drop-b']);
    expect(await listening(p2)).toBe(true);
    expect(await listening(p1)).toBe(false);
    expect([gw.parts.sources.state('hl7v2'), gw.parts.sources.state('drop-b'), gw.parts.sources.state('drop-a')]).toEqual([
      'running',
      'running',
      undefined,
    ]);
    expect((gw.status() as { config?: { waitingForRestart: string[] } }).config?.waitingForRestart).toEqual(['outbox.maxBytes']);

    // a config that does not validate changes nothing
    s.write({ hl7Port: p1, files: [['drop-a', s.drops.a]], extra: 'relay:\n  batchSize: many' });
    const bad = await app.inject({ method: 'POST', url: '/config/reload', headers: auth });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ code: 'GW_CONFIG_INVALID', problems: [expect.objectContaining({ path: 'relay.batchSize' })] });
    expect(gw.parts.adapters.map((a) => a.id)).toEqual(['hl7v2', 'drop-b']);
    expect(await listening(p2)).toBe(true);
    expect(await listening(p1)).toBe(false);

    // the same config again: only the field still waiting for its restart differs from what runs
    s.write({ hl7Port: p2, files: [['drop-b', s.drops.b]], level: 'debug', maxBytes: 2147483648 });
    const same = await app.inject({ method: 'POST', url: '/config/reload', headers: auth });
    expect(same.json()).toMatchObject({
      applied: { live: [], adapters: { add: [], remove: [], recreate: [] }, restart: ['outbox.maxBytes'] },
      changes: [{ path: 'outbox.maxBytes', kind: 'changed', restart: true }],
      waitingForRestart: ['outbox.maxBytes'],
    });
    // put back as it runs: nothing waits any more
    s.write({ hl7Port: p2, files: [['drop-b', s.drops.b]], level: 'debug' });
    const back = await app.inject({ method: 'POST', url: '/config/reload', headers: auth });
    expect(back.json()).toMatchObject({ changes: [], waitingForRestart: [] });
  });

  it('keeps a field that needs a restart (hl7.profile) at its running value: the listener is not started again with it', async () => {
    const s = setup();
    const p = await freePort();
    s.write({ hl7Port: p, files: [] });
    gw = await createGateway({
      config: loadConfig({ file: s.file, env: {} }),
      logger: createLogger({ level: 'silent' }),
      loadConfig: () => loadConfig({ file: s.file, env: {} }),
    });
    await gw.start();
    s.write({ hl7Port: p, files: [], profile: 'epic' });
    const r = await gw.reloadConfig();
    expect(r).toMatchObject({ ok: true, waitingForRestart: ['hl7.profile'] });
    expect(r.ok && r.plan.apply.adapters.recreate).toEqual([]);
    // a second change beside it re-creates the listener, still with the running profile
    s.write({ hl7Port: await freePort(), files: [], profile: 'epic' });
    const r2 = await gw.reloadConfig();
    expect(r2).toMatchObject({ ok: true, waitingForRestart: ['hl7.profile'] });
    expect(r2.ok && r2.plan.apply.adapters.recreate).toEqual(['hl7v2']);
    expect((gw.status() as { config?: { waitingForRestart: string[] } }).config?.waitingForRestart).toEqual(['hl7.profile']);
  });

  it('runs two reloads at once one after the other: a source added once, not twice', async () => {
    const s = setup();
    s.write({ hl7Port: 0, files: [] });
    gw = await createGateway({
      config: loadConfig({ file: s.file, env: {} }),
      logger: createLogger({ level: 'silent' }),
      loadConfig: () => loadConfig({ file: s.file, env: {} }),
    });
    await gw.start();
    s.write({ hl7Port: 0, files: [['drop-a', s.drops.a]] });
    const [a, b] = await Promise.all([gw.reloadConfig(), gw.reloadConfig()]);
    expect([a.ok && a.plan.apply.adapters.add, b.ok && b.plan.apply.adapters.add]).toEqual([['drop-a'], []]);
    expect(gw.parts.adapters.map((x) => x.id)).toEqual(['hl7v2', 'drop-a']);
    expect(gw.parts.sources.ids()).toEqual(['hl7v2', 'drop-a']);
  });

  it('keeps a paused source paused when a reload re-creates it', async () => {
    const s = setup();
    s.write({ hl7Port: 0, files: [['drop-a', s.drops.a]] });
    gw = await createGateway({
      config: loadConfig({ file: s.file, env: {} }),
      logger: createLogger({ level: 'silent' }),
      loadConfig: () => loadConfig({ file: s.file, env: {} }),
    });
    await gw.start();
    await gw.parts.sources.pause('drop-a');
    s.write({ hl7Port: 0, files: [['drop-a', s.drops.b]] });
    const r = await gw.reloadConfig();
    expect(r.ok && r.plan.apply.adapters.recreate).toEqual(['drop-a']);
    expect(gw.parts.sources.state('drop-a')).toBe('paused');
    await gw.parts.sources.resume('drop-a');
    expect(gw.parts.sources.state('drop-a')).toBe('running');
  });

  it('answers 409 when the gateway has no config file to read again, and the route needs the token', async () => {
    const s = setup();
    s.write({ hl7Port: 0, files: [] });
    gw = await createGateway({ config: loadConfig({ file: s.file, env: {} }), logger: createLogger({ level: 'silent' }) });
    await gw.start();
    const app = gw.parts.admin!.app;
    expect((await app.inject({ method: 'POST', url: '/config/reload' })).statusCode).toBe(401);
    const r = await app.inject({ method: 'POST', url: '/config/reload', headers: { authorization: `Bearer ${gw.parts.token}` } });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ code: 'GW_RELOAD_UNAVAILABLE' });
  });
});
