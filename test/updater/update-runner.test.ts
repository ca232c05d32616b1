/**
 * The updater's decisions before and after a switch-over, on real files and a real HTTP release
 * server (the switch-over itself runs with real executables in update-e2e.test.ts): what a check
 * answers for each manifest it can meet, what it audits, how a start judges an undecided switch-over
 * (probation.ts), and that a rollback puts the previous file back byte for byte.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../config/load.ts';
import { createEventBus } from '../../gateway/event-bus.ts';
import { markInterrupted, selfGate, startVerdict } from '../../updater/probation.ts';
import { restore, UPDATE_FROM_ENV } from '../../updater/switch-over.ts';
import { createUpdateRunner, switchMode, type UpdateHost } from '../../updater/update-runner.ts';
import { appendHistory, readHistory, readUpdateState, writeUpdateState, type UpdateState } from '../../updater/update-state.ts';
import { makeReleaseKey, signManifest, startReleaseServer, type ReleaseServer } from '../reference-cloud/releases.ts';

const release = makeReleaseKey();
let server: ReleaseServer;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ewml-runner-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  server = await startReleaseServer();
});
afterAll(async () => {
  await server.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A manifest for `version` whose linux-x64 target is `file`, signed by the pinned key unless told. */
function publish(
  name: string,
  version: string,
  file: string,
  o: { cohort?: { gateways?: string[]; percent?: number }; expires?: string } = {},
) {
  server.putFile(`exe-${version}`, file);
  const signed = {
    _type: 'eyewear-gateway-release' as const,
    version,
    expires: o.expires ?? new Date(Date.now() + 3600_000).toISOString(),
    targets: {
      'linux-x64': {
        url: `${server.url}/exe-${version}`,
        sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
        size: statSync(file).size,
      },
    },
    ...(o.cohort ? { cohort: o.cohort } : {}),
  };
  server.putText(name, JSON.stringify(signManifest(signed, [release])));
  return `${server.url}/${name}`;
}

function host(dataDir: string, over: Partial<UpdateHost> = {}, configOver: Record<string, unknown> = {}) {
  const bus = createEventBus();
  const events: Array<Record<string, unknown>> = [];
  bus.on('update.outcome', (e) => events.push({ ...e }));
  bus.on('command.outcome', (e) => events.push({ command: e.commandId, status: e.status, ...(e.code ? { code: e.code } : {}) }));
  const v = validateConfig({ gateway: { id: 'gw-runner', dataDir }, cloud: { releaseKeys: [release.publicPem] }, ...configOver });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const config = v.config;
  const logs: string[] = [];
  const h: UpdateHost = {
    config,
    dataDir,
    version: '2.0.0',
    gatewayId: 'gw-runner',
    executable: undefined,
    platform: 'linux-x64',
    bus: () => bus,
    sinkConnected: () => false,
    adminToken: () => undefined,
    stopGateway: async () => {
      throw new Error('the test does not switch over');
    },
    handOver: () => 'token',
    resumeGateway: async () => undefined,
    exitAfterUpdate: () => undefined,
    exitForRestart: () => undefined,
    exitAfterRollback: () => undefined,
    ready: () => ({ ready: true, reasons: [] }),
    args: [],
    env: {},
    log: (level, fields, msg) => logs.push(`${level} ${String(fields.code ?? '')} ${msg}`),
    ...over,
  };
  return { h, events, logs };
}

describe('an update check', () => {
  it('answers up-to-date for the installed version, and not-in-cohort outside the cohort, without downloading', async () => {
    const d = tmp();
    const exe = join(d, 'new-exe');
    writeFileSync(exe, 'new executable bytes');
    const { h, events } = host(d);
    const runner = createUpdateRunner(h);
    expect(await runner.check({ manifestUrl: publish('same.json', '2.0.0', exe) })).toEqual({ result: 'up-to-date', version: '2.0.0' });
    expect(
      await runner.check({ manifestUrl: publish('other.json', '2.1.0', exe, { cohort: { gateways: ['gw-else'] } }), commandId: 'c1' }),
    ).toEqual({
      result: 'not-in-cohort',
      version: '2.1.0',
    });
    expect(events).toEqual([
      { outcome: 'up-to-date', from: '2.0.0', to: '2.0.0' },
      { command: 'c1', status: 'done' },
      { outcome: 'not-in-cohort', from: '2.0.0', to: '2.1.0', commandId: 'c1' },
    ]);
    expect(server.requests.filter((r) => r.startsWith('exe-'))).toEqual([]);
    // neither is a refusal: nothing audited
    expect(readHistory(d)).toEqual([]);
  });

  it('refuses, audits and reports: an older version (rollback), an expired manifest (freeze), no URL, plain http to another host, the TypeScript sources', async () => {
    const d = tmp();
    const exe = join(d, 'e');
    writeFileSync(exe, 'x');
    const { h, events } = host(d);
    const runner = createUpdateRunner(h);
    const results = [
      await runner.check({ manifestUrl: publish('old.json', '1.9.9', exe), commandId: 'r1' }),
      await runner.check({ manifestUrl: publish('stale.json', '2.2.0', exe, { expires: '2020-01-01T00:00:00Z' }) }),
      await runner.check({}),
      await runner.check({ manifestUrl: 'http://192.0.2.1/manifest.json' }),
      await runner.check({ manifestUrl: publish('fine.json', '2.2.0', exe) }),
    ];
    expect(results.map((r) => [r.result, 'reason' in r ? r.reason : ''])).toEqual([
      ['refused', 'manifest offers 1.9.9, not newer than the installed 2.0.0 (rollback attack)'],
      ['refused', 'manifest expired at 2020-01-01T00:00:00Z (an old manifest replayed: freeze attack)'],
      ['refused', 'no manifest URL: set updates.manifestUrl, or send it in the gateway.update command'],
      ['refused', 'http://192.0.2.1 is not allowed: the manifest and targets are fetched over https (http only from this machine)'],
      [
        'refused',
        'this gateway runs from the TypeScript sources, not the packaged executable: there is no file to replace (set updates.executable)',
      ],
    ]);
    expect(readHistory(d).map((e) => [e.event, e.code])).toEqual([
      ['refused', 'GW_UPDATE_REFUSED'],
      ['refused', 'GW_UPDATE_REFUSED'],
      ['refused', undefined],
      ['refused', undefined],
      ['refused', undefined],
    ]);
    expect(events.filter((e) => 'command' in e)).toEqual([{ command: 'r1', status: 'failed', code: 'GW_UPDATE_REFUSED' }]);
  });

  it('a target whose bytes do not match the signed hash is refused and nothing is left beside the executable', async () => {
    const d = tmp();
    const signedFile = join(d, 'signed');
    writeFileSync(signedFile, 'the bytes the release key signed');
    const url = publish('tampered.json', '2.3.0', signedFile);
    // the server now serves other bytes of the same length under the signed name
    const other = join(d, 'other');
    writeFileSync(other, 'the bytes an attacker put there!');
    server.putFile('exe-2.3.0', other);
    const installed = join(d, 'eyewear-gateway');
    writeFileSync(installed, 'installed');
    const { h } = host(d, { executable: installed });
    const r = await createUpdateRunner(h).check({ manifestUrl: url });
    expect(r.result).toBe('refused');
    expect('reason' in r && r.reason).toMatch(/SHA-256/);
    expect(readFileSync(installed, 'utf8')).toBe('installed');
    expect(() => statSync(`${installed}.staged`)).toThrow();
    expect(() => statSync(`${installed}.staged.part`)).toThrow();
  });

  it('a version that failed its gate here is skipped until a newer one comes', async () => {
    const d = tmp();
    const exe = join(d, 'e');
    writeFileSync(exe, 'x');
    const { h } = host(d);
    appendHistory(d, { at: 'then', event: 'rolled-back', from: '2.0.0', to: '2.4.0', reason: 'not ready' });
    const r = await createUpdateRunner(h).check({ manifestUrl: publish('failed.json', '2.4.0', exe) });
    expect(r).toEqual({
      result: 'skipped',
      version: '2.4.0',
      reason: '2.4.0 failed its health gate here before (not ready); waiting for a newer release',
    });
  });

  it('a switch-over cut short by a crash or power cut is recorded as interrupted, and the release is tried again', async () => {
    const d = tmp();
    const exe = join(d, 'e');
    writeFileSync(exe, 'x');
    const s: UpdateState = { phase: 'switching', from: '2.0.0', to: '2.5.0', executable: exe, previous: `${exe}.previous`, at: 'then' };
    markInterrupted(d, s, Date.now());
    expect(readHistory(d).map((e) => [e.event, e.to])).toEqual([['interrupted', '2.5.0']]);
    // not skipped: it gets as far as the executable (none: running from the sources)
    const r = await createUpdateRunner(host(d).h).check({ manifestUrl: publish('again.json', '2.5.0', exe) });
    expect(r).toMatchObject({ result: 'refused', reason: expect.stringContaining('TypeScript sources') });
  });

  it('one check at a time: a request while one runs is refused as busy', async () => {
    const d = tmp();
    const exe = join(d, 'e');
    writeFileSync(exe, 'x');
    const { h } = host(d);
    const runner = createUpdateRunner(h);
    const first = runner.check({ manifestUrl: publish('slow.json', '2.0.0', exe) });
    expect(runner.request({ commandId: 'c2' })).toBe(
      'an update check is already running; send a new gateway.update command once it is done',
    );
    await first;
    expect(runner.request({ commandId: 'c3', manifestUrl: `${server.url}/slow.json` })).toBeUndefined();
  });
});

describe('the switch-over mode', () => {
  it('restart under systemd (NOTIFY_SOCKET) and on Windows, hand-over for a gateway nobody restarts; an explicit mode stands', () => {
    expect(switchMode('auto', { NOTIFY_SOCKET: '/run/systemd/notify' }, 'linux')).toBe('restart');
    expect(switchMode('auto', {}, 'win32')).toBe('restart');
    expect(switchMode('auto', {}, 'linux')).toBe('hand-over');
    expect(switchMode('hand-over', {}, 'win32')).toBe('hand-over');
    expect(switchMode('restart', {}, 'linux')).toBe('restart');
  });
});

describe('a start with an undecided switch-over (probation)', () => {
  const state = (d: string, over: Partial<UpdateState> = {}): UpdateState => ({
    phase: 'probation',
    from: '1.0.0',
    to: '1.1.0',
    executable: join(d, 'eyewear-gateway'),
    previous: join(d, 'eyewear-gateway.previous'),
    at: 'then',
    ...over,
  });

  it('tells the new version started by the service manager, the one a live old process judges, the one whose judge died, and the old version started again', () => {
    const d = tmp();
    const alive = (pid: number) => pid === 4242;
    writeUpdateState(d, state(d, { mode: 'restart' }));
    expect(startVerdict(d, '1.1.0', {}, alive).kind).toBe('self-gate');
    writeUpdateState(d, state(d, { mode: 'hand-over', supervisorPid: 4242 }));
    expect(startVerdict(d, '1.1.0', { [UPDATE_FROM_ENV]: '1.0.0' }, alive).kind).toBe('supervised');
    writeUpdateState(d, state(d, { mode: 'hand-over', supervisorPid: 999_999 }));
    expect(startVerdict(d, '1.1.0', { [UPDATE_FROM_ENV]: '1.0.0' }, alive).kind).toBe('self-gate');
    expect(startVerdict(d, '1.0.0', {}, alive).kind).toBe('interrupted');
    writeUpdateState(d, state(d, { phase: 'committed', outcome: 'updated' }));
    expect(startVerdict(d, '1.1.0', {}, alive).kind).toBe('none');
  });

  it('a new version that is never ready puts the previous file back, byte for byte, and records why', async () => {
    const d = tmp();
    const s = state(d, { mode: 'restart' });
    writeFileSync(s.executable, 'new version bytes');
    writeFileSync(s.previous, 'previous version bytes');
    writeUpdateState(d, s);
    const r = await selfGate({
      dataDir: d,
      state: s,
      windowMs: 300,
      pollMs: 20,
      ready: () => ({ ready: false, reasons: ['outbox writer restarting'] }),
    });
    expect(r).toEqual({ passed: false, reason: 'it did not pass its health gate within 0 s: not ready: outbox writer restarting' });
    expect(existsSync(`${s.executable}.failed`)).toBe(false);
    expect(readFileSync(s.executable, 'utf8')).toBe('previous version bytes');
    expect(() => statSync(s.previous)).toThrow();
    expect(readUpdateState(d)).toMatchObject({ phase: 'rolled-back', outcome: 'rolled-back', reported: false });
    expect(readHistory(d).map((e) => [e.event, e.from, e.to])).toEqual([['rolled-back', '1.0.0', '1.1.0']]);
  });

  it('a new version ready twice in a row is committed; the files stay as they are', async () => {
    const d = tmp();
    const s = state(d, { mode: 'restart' });
    writeFileSync(s.executable, 'new');
    writeFileSync(s.previous, 'old');
    let n = 0;
    const r = await selfGate({
      dataDir: d,
      state: s,
      windowMs: 1500,
      pollMs: 10,
      ready: () => (n++ === 0 ? { ready: false, reasons: ['starting'] } : { ready: true, reasons: [] }),
    });
    expect(r).toEqual({ passed: true });
    // it stayed ready for the hold (a third of the window) before it passed: many looks, not two
    expect(n).toBeGreaterThan(10);
    expect([readFileSync(s.executable, 'utf8'), readFileSync(s.previous, 'utf8')]).toEqual(['new', 'old']);
    expect(readUpdateState(d)).toMatchObject({ phase: 'committed', outcome: 'updated', reported: false });
  });

  it('atStart reports an outcome once: a second start does not report it again', async () => {
    const d = tmp();
    writeUpdateState(d, state(d, { phase: 'committed', outcome: 'updated', reported: false, commandId: 'u-9' }));
    const a = host(d, { version: '1.1.0' }, { relay: { sink: 'file' } });
    createUpdateRunner(a.h).atStart();
    expect(a.events).toEqual([
      { outcome: 'updated', from: '1.0.0', to: '1.1.0', commandId: 'u-9' },
      { command: 'u-9', status: 'done' },
    ]);
    const b = host(d, { version: '1.1.0' }, { relay: { sink: 'file' } });
    createUpdateRunner(b.h).atStart();
    expect(b.events).toEqual([]);
  });
});

describe('restore (a rollback) ends with an executable at its path, whatever step the switch-over reached', () => {
  it('Windows: nothing moved yet; both moved; only the first rename done', () => {
    const d = tmp();
    const exe = join(d, 'gw.exe');
    const previous = `${exe}.previous`;
    // nothing moved (place() failed at its first rename): the old file stays
    writeFileSync(exe, 'old');
    restore(exe, previous, 'win32');
    expect(readFileSync(exe, 'utf8')).toBe('old');
    // both moved: the new one goes aside, the previous comes back
    writeFileSync(previous, 'old');
    writeFileSync(exe, 'new');
    restore(exe, previous, 'win32');
    expect([readFileSync(exe, 'utf8'), readFileSync(`${exe}.failed`, 'utf8'), existsSync(previous)]).toEqual(['old', 'new', false]);
    // only the first rename (exe -> previous) done, the staged one never arrived
    rmSync(exe);
    writeFileSync(previous, 'old');
    restore(exe, previous, 'win32');
    expect(readFileSync(exe, 'utf8')).toBe('old');
  });

  it('neither file: an error that says to reinstall, not a silent success', () => {
    const d = tmp();
    expect(() => restore(join(d, 'gw'), join(d, 'gw.previous'), 'linux')).toThrow('reinstall the gateway');
  });
});
