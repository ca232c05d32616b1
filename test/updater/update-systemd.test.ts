/**
 * A signed update under a real systemd (issue 16 point 7, "Proof": the systemd unit run under
 * systemd). systemd 252 runs as PID 1 of a sandbox (test/support/systemd-sandbox.ts: its own PID,
 * mount and network namespaces, an overlay root whose writes land in a tmpfs). In it, the real
 * single executable built as 1.0.0 is installed by its own `eyewear-gateway install` (the unit
 * installer/service/systemd-unit.ts writes, the service user, the program folder given to it), with
 * a config that pins a release key and the command key and uses the MQTT sink.
 *
 * The broker (a real mosquitto), the reference cloud on it and its release server run on this
 * machine's loopback; the sandbox has its own network, so their ports are relayed into the
 * sandbox's loopback at the same numbers (the URLs the gateway is given are the ones the servers
 * listen on). The cloud sends signed `gateway.update` commands on `down/commands`.
 *
 * - 1.0.0 → 1.0.1: the running gateway downloads and verifies the release, puts it in place (keeping
 *   `.previous`), exits 75; systemd restarts it (RestartForceExitStatus=75, RestartSec=5); 1.0.1
 *   passes its own health gate and reports `updated`.
 * - 1.0.1 → a broken 1.0.2 (never ready): 1.0.1 exits 75 the same way; 1.0.2 fails its own gate,
 *   puts 1.0.1 back and exits 1; systemd (Restart=on-failure) starts 1.0.1, which reports the
 *   rollback. Four starts in all, under the unit's StartLimitBurst=10 in 300 s.
 * - In a fresh sandbox, 1.0.0 → a 1.0.3 that exits 1 at every start (as a release refusing the
 *   config it is given would): its second start finds the probation marker's count taken, puts
 *   1.0.0 back and exits 1; systemd starts 1.0.0, which reports the rollback. Four starts again.
 *   A fresh sandbox because every start counts against StartLimitBurst (the exit-75 ones too): with
 *   the limit at 5 (as it was), the first scenario's four starts and this one's two left the unit
 *   failed with 1.0.3 in place (seen here), which is why the unit now allows 10.
 * - In another, 1.0.0 → 1.0.1 frozen (SIGSTOP) on probation, before its gate passes: the unit's
 *   watchdog (WatchdogSec=10 in the sandbox) kills it, its next start finds the marker's count
 *   taken and puts 1.0.0 back; systemd starts 1.0.0, which reports the rollback.
 */
import { buildExecutable, patchedSourceCopy, sha256File, sourceRoot } from '../support/release-builds.ts';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { readHistory, readUpdateState } from '../../updater/update-state.ts';
import { makeReleaseKey, type ReleaseKey, type ReleaseServer, signManifest, startReleaseServer } from '../reference-cloud/releases.ts';
import { type MqttReferenceCloud, startMqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { type Broker, startMosquitto } from '../support/mosquitto.ts';
import { waitFor } from '../support/net.ts';
import { type SystemdSandbox, startSystemdSandbox, systemdSandboxProblem } from '../support/systemd-sandbox.ts';

const root = sourceRoot;
const build = buildExecutable;
const UNIT = 'eyewear-gateway.service';
const EXE = '/opt/eyewear-gateway/eyewear-gateway';
const DATA = '/var/lib/eyewear-gateway';

// mosquitto is not a reason to skip: startMosquitto installs it or says what to install (test/support/services.ts)
const problem = systemdSandboxProblem();
if (problem) console.log(`signed update under a real systemd skipped: ${problem}`);

const sha256 = sha256File;
/** A PEM as a YAML block scalar under a key indented by `indent - 2`. */
const yamlBlock = (pem: string, indent: number) =>
  `|\n${pem
    .trim()
    .split('\n')
    .map((l) => `${' '.repeat(indent)}${l}`)
    .join('\n')}`;

describe.skipIf(problem !== undefined)('a signed update under a real systemd (PID 1 of a sandbox)', () => {
  const work = mkdtempSync(join(tmpdir(), 'ewml-update-systemd-'));
  const keys = makeCloudKeys();
  const commandKeys = generateKeyPairSync('ed25519');
  const release: ReleaseKey = makeReleaseKey();
  const status: Array<Record<string, unknown> & { gatewayId: string }> = [];
  let sandbox: SystemdSandbox;
  /** The gateway in the current sandbox. */
  let GW = '';
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let releases: ReleaseServer;
  let watcher: MqttClient;
  let v100 = '';
  let v101 = '';
  let v102 = '';
  let v103 = '';
  let firstPid = '';
  let updatedPid = '';
  const t0 = Date.now();
  const phase = (what: string) => console.log(`[${Math.round((Date.now() - t0) / 1000)} s] ${what}`);

  /** The sandbox's files, seen from here through systemd's root. */
  const inside = (p: string) => `/proc/${sandbox.pid1}/root${p}`;
  const show = (...props: string[]) => sandbox.show(UNIT, ...props);
  const journal = () => sandbox.run(['journalctl', '-u', UNIT, '-o', 'cat', '--no-pager']).stdout;
  const versionOf = (file: string) => sandbox.run([file, 'version']).stdout.trim();
  /** GET /ready on the gateway's admin port, from inside the sandbox. */
  const ready = (): { status: number; ready: boolean; version: string; pid: number; reasons: string[] } | undefined => {
    const r = sandbox.run(
      [
        process.execPath,
        '-e',
        "fetch('http://127.0.0.1:8480/ready', { signal: AbortSignal.timeout(2000) }).then(async (r) => console.log(JSON.stringify({ status: r.status, ...(await r.json()) })), () => console.log('{}'))",
      ],
      10_000,
    );
    const body = JSON.parse(r.stdout.trim() || '{}') as { status?: number };
    return body.status === undefined ? undefined : (body as ReturnType<typeof ready>);
  };
  const outcomes = (type: string, key: string, value: string) =>
    status.filter((m) => m.gatewayId === GW && m.type === type && m[key] === value);
  const command = async (commandId: string, manifestUrl: string, key: KeyObject = commandKeys.privateKey) => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { id: commandId, type: 'gateway.update', gatewayId: GW, iat: now, exp: now + 600, manifestUrl };
    const jws = await new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
    await cloud.client.publishAsync(`ewml/v1/t-${GW}/${GW}/down/commands`, jws, { qos: 1 });
  };
  const publishRelease = (version: string, file: string): string => {
    releases.putFile(`eyewear-gateway-${version}`, file);
    const signed = {
      _type: 'eyewear-gateway-release' as const,
      version,
      expires: new Date(Date.now() + 3600_000).toISOString(),
      targets: { 'linux-x64': { url: `${releases.url}/eyewear-gateway-${version}`, sha256: sha256(file), size: statSync(file).size } },
    };
    releases.putText(`manifest-${version}.json`, JSON.stringify(signManifest(signed, [release])));
    return `${releases.url}/manifest-${version}.json`;
  };
  /** Polls every 500 ms (each look at /ready runs a process in the sandbox), bounded. */
  const poll = async (what: string, ok: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const explainFailure = () =>
    onTestFailed(() => {
      console.log(`the unit's journal (last 12,000 characters):\n${journal().slice(-12_000)}`);
      console.log(`systemctl show: ${JSON.stringify(show('ActiveState', 'SubState', 'Result', 'NRestarts', 'MainPID', 'ExecMainStatus'))}`);
      console.log(`up/status: ${JSON.stringify(status.slice(-20))}`);
    });

  beforeAll(async () => {
    v100 = build(root, '1.0.0', join(work, 'build-100'));
    v101 = build(root, '1.0.1', join(work, 'build-101'));
    const broken = patchedSourceCopy(
      join(work, 'src-broken'),
      'gateway/status-report.ts',
      "if (!s.startedAt()) reasons.push('gateway not running');",
      "if (!s.startedAt()) reasons.push('gateway not running');\n    reasons.push('this build is broken on purpose (the rollback test)');",
    );
    v102 = build(broken, '1.0.2', join(work, 'build-102'));
    // one that exits 1 at every start, as a release that refuses the config it is given would
    const noStart = patchedSourceCopy(
      join(work, 'src-no-start'),
      'cli/commands/start.ts',
      'const config = io.loadConfig(configFile);',
      "const config = io.loadConfig(configFile);\n  if (config) {\n    io.err('this build cannot start on purpose (the start guard test)');\n    return 1;\n  }",
    );
    v103 = build(noStart, '1.0.3', join(work, 'build-103'));
    phase('built 1.0.0, 1.0.1, a broken 1.0.2 and a 1.0.3 that cannot start');
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    releases = await startReleaseServer();
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    watcher.on('message', (topic, p) => {
      try {
        status.push({ ...(JSON.parse(p.toString()) as Record<string, unknown>), gatewayId: topic.split('/')[3] ?? '' });
      } catch {
        // not JSON: not ours
      }
    });
    await watcher.subscribeAsync('ewml/v1/+/+/up/status', { qos: 1 });
  }, 600_000);

  /** A fresh systemd sandbox for gateway `id`, the builds shared into it, the broker and release server relayed to the same loopback ports in it. */
  const boot = async (id: string) => {
    GW = id;
    sandbox = await startSystemdSandbox({ share: [work] });
    await sandbox.forward(broker.port);
    await sandbox.forward(Number(new URL(releases.url).port));
    phase(`systemd running in a sandbox for ${id}`);
  };

  afterAll(async () => {
    await watcher?.endAsync();
    await releases?.stop();
    await cloud?.stop();
    await broker?.stop();
    rmSync(work, { recursive: true, force: true });
    phase('done');
  });

  /** `eyewear-gateway install` of the real 1.0.0 in the sandbox: active, ready, its program folder its own. */
  const install = (healthWindowSeconds = 20) => {
    const cfg = join(sandbox.dir, 'config.yaml');
    writeFileSync(
      cfg,
      [
        'gateway:',
        `  id: ${GW}`,
        `  tenantId: t-${GW}`,
        `  dataDir: ${DATA}`,
        '  timezone: UTC',
        'relay:',
        '  sink: mqtt',
        '  idlePollMs: 100',
        'mqtt:',
        `  url: ${broker.url}`,
        'cloud:',
        `  publicKey: ${yamlBlock(keys.publicPem, 4)}`,
        `  commandPublicKey: ${yamlBlock(commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 4)}`,
        '  releaseKeys:',
        `    - ${yamlBlock(release.publicPem, 6)}`,
        'updates:',
        `  healthWindowSeconds: ${healthWindowSeconds}`,
        '',
      ].join('\n'),
    );
    const inst = sandbox.run([v100, 'install', '--exec', v100, '--config', cfg]);
    expect(inst.stderr).toBe('');
    expect(inst.status).toBe(0);
    expect(inst.stdout.split('\n').at(-2)).toMatch(/^installed and running\. Status: systemctl status eyewear-gateway/);
    const s = show('ActiveState', 'SubState', 'User', 'NRestarts', 'MainPID', 'ExecMainPID');
    expect([s.ActiveState, s.SubState, s.User, s.NRestarts]).toEqual(['active', 'running', 'eyewear-gateway', '0']);
    firstPid = s.ExecMainPID ?? '';
    expect(s.MainPID).toBe(firstPid);
    expect(sandbox.run(['stat', '-c', '%U %a', '/opt/eyewear-gateway', EXE]).stdout).toBe('eyewear-gateway 755\neyewear-gateway 755\n');
    expect(versionOf(EXE)).toBe('1.0.0');
    expect(sha256(inside(EXE))).toBe(sha256(v100));
    phase('1.0.0 installed and running under systemd');
  };

  describe('1.0.0 → 1.0.1, then a broken 1.0.2 rolled back', () => {
    beforeAll(() => boot('gw-systemd-upd'), 60_000);
    afterAll(() => sandbox?.stop());

    it('install puts the real 1.0.0 executable under systemd: active, ready, its program folder its own', () => {
      explainFailure();
      install();
    }, 120_000);

    it('a signed gateway.update to 1.0.1: 1.0.0 exits 75 with 1.0.1 in place, systemd starts it, it passes its own gate', async () => {
      explainFailure();
      // ready includes the MQTT sink connected (through the relay): the command can reach it
      await poll('1.0.0 ready (sink connected)', () => ready()?.ready === true, 60_000);
      expect(ready()?.version).toBe('1.0.0');
      await command('sd-1', publishRelease('1.0.1', v101));
      await waitFor(() => outcomes('update-outcome', 'outcome', 'updated').length > 0, 180_000, 'update-outcome updated on up/status');
      phase('1.0.1 reported updated');
      expect(outcomes('update-outcome', 'outcome', 'updated')[0]).toMatchObject({ from: '1.0.0', to: '1.0.1', commandId: 'sd-1' });
      expect(outcomes('command-outcome', 'commandId', 'sd-1').map((m) => m.status)).toEqual(['accepted', 'done']);
      // systemd restarted it: once, a new main process, up and ready
      // the status line systemd shows is the one of the last watchdog ping (every 5 s): wait for the first after ready
      await poll('StatusText=ready', () => show('StatusText').StatusText === 'ready', 30_000);
      const s = show('ActiveState', 'SubState', 'NRestarts', 'MainPID', 'ExecMainPID', 'StatusText');
      expect([s.ActiveState, s.SubState, s.NRestarts, s.StatusText]).toEqual(['active', 'running', '1', 'ready']);
      expect(s.ExecMainPID).not.toBe(firstPid);
      updatedPid = s.ExecMainPID ?? '';
      const r = ready();
      expect([r?.status, r?.ready, r?.version, String(r?.pid)]).toEqual([200, true, '1.0.1', updatedPid]);
      const j = journal();
      expect(j).toContain('eyewear-gateway 1.0.0: the new version is in place; exiting (75) for the service manager to start it');
      expect(j).toContain('eyewear-gateway.service: Scheduled restart job, restart counter is at 1.');
      // the files: 1.0.1 in place (written by the service user), 1.0.0 kept beside it
      expect(versionOf(EXE)).toBe('1.0.1');
      expect(sha256(inside(EXE))).toBe(sha256(v101));
      expect(versionOf(`${EXE}.previous`)).toBe('1.0.0');
      expect(sandbox.run(['stat', '-c', '%U %a', EXE]).stdout).toBe('eyewear-gateway 755\n');
      expect(readUpdateState(inside(DATA))).toMatchObject({
        phase: 'committed',
        outcome: 'updated',
        from: '1.0.0',
        to: '1.0.1',
        mode: 'restart',
        commandId: 'sd-1',
        reported: true,
      });
      expect(readHistory(inside(DATA)).map((e) => [e.event, e.from, e.to])).toEqual([['applied', '1.0.0', '1.0.1']]);
    }, 240_000);

    it('a broken 1.0.2 fails its own gate under systemd, puts 1.0.1 back and exits 1; systemd starts 1.0.1, which reports the rollback', async () => {
      explainFailure();
      await poll('1.0.1 ready', () => ready()?.ready === true, 60_000);
      await command('sd-2', publishRelease('1.0.2', v102));
      await waitFor(
        () => outcomes('update-outcome', 'outcome', 'rolled-back').length > 0,
        240_000,
        'update-outcome rolled-back on up/status',
      );
      phase('1.0.2 rolled back');
      const rolled = outcomes('update-outcome', 'outcome', 'rolled-back')[0];
      expect(rolled).toMatchObject({ from: '1.0.1', to: '1.0.2', commandId: 'sd-2' });
      expect(String(rolled?.reason)).toBe(
        'it did not pass its health gate within 20 s: not ready: this build is broken on purpose (the rollback test)',
      );
      expect(outcomes('command-outcome', 'commandId', 'sd-2').map((m) => [m.status, m.code])).toEqual([
        ['accepted', undefined],
        ['failed', 'GW_UPDATE_ROLLED_BACK'],
      ]);
      await poll('1.0.1 ready again', () => ready()?.ready === true, 60_000);
      // three restarts in all: 75 into 1.0.2, 1 back into 1.0.1; under the start limit, active again
      // the status line systemd shows is the one of the last watchdog ping (every 5 s): wait for the first after ready
      await poll('StatusText=ready', () => show('StatusText').StatusText === 'ready', 30_000);
      const s = show('ActiveState', 'SubState', 'NRestarts', 'MainPID', 'ExecMainPID', 'StatusText');
      expect([s.ActiveState, s.SubState, s.NRestarts, s.StatusText]).toEqual(['active', 'running', '3', 'ready']);
      expect([firstPid, updatedPid]).not.toContain(s.ExecMainPID);
      const r = ready();
      expect([r?.status, r?.ready, r?.version, String(r?.pid)]).toEqual([200, true, '1.0.1', s.ExecMainPID]);
      const j = journal();
      expect(j).toContain('eyewear-gateway 1.0.1: the new version is in place; exiting (75) for the service manager to start it');
      expect(j).toContain(
        'eyewear-gateway 1.0.2 failed its health gate; the previous executable is back; exiting (1) for the service manager to start it',
      );
      expect(j).toContain('eyewear-gateway.service: Main process exited, code=exited, status=1/FAILURE');
      expect(j).toContain('eyewear-gateway.service: Scheduled restart job, restart counter is at 3.');
      // the file is 1.0.1 again (the previous one moved back), nothing left beside it
      expect(versionOf(EXE)).toBe('1.0.1');
      expect(sha256(inside(EXE))).toBe(sha256(v101));
      expect(existsSync(inside(`${EXE}.previous`))).toBe(false);
      expect(readUpdateState(inside(DATA))).toMatchObject({
        phase: 'rolled-back',
        outcome: 'rolled-back',
        from: '1.0.1',
        to: '1.0.2',
        reported: true,
      });
      expect(readHistory(inside(DATA)).map((e) => [e.event, e.from, e.to])).toEqual([
        ['applied', '1.0.0', '1.0.1'],
        ['rolled-back', '1.0.1', '1.0.2'],
      ]);
    }, 360_000);
  });

  describe('a release that cannot start is put back by the start guard', () => {
    beforeAll(() => boot('gw-systemd-nostart'), 60_000);
    afterAll(() => sandbox?.stop());

    it('1.0.0 exits 75 with 1.0.3 in place; 1.0.3 exits 1 at each start; its second start puts 1.0.0 back; systemd starts 1.0.0, which reports the rollback', async () => {
      explainFailure();
      install();
      await poll('1.0.0 ready (sink connected)', () => ready()?.ready === true, 60_000);
      await command('ns-1', publishRelease('1.0.3', v103));
      await waitFor(
        () => outcomes('update-outcome', 'outcome', 'rolled-back').length > 0,
        180_000,
        'update-outcome rolled-back on up/status',
      );
      phase('1.0.3 put back by the start guard');
      const rolled = outcomes('update-outcome', 'outcome', 'rolled-back')[0];
      expect(rolled).toMatchObject({ from: '1.0.0', to: '1.0.3', commandId: 'ns-1' });
      expect(String(rolled?.reason)).toMatch(/^1\.0\.3 did not reach its health gate/);
      expect(outcomes('command-outcome', 'commandId', 'ns-1').map((m) => [m.status, m.code])).toEqual([
        ['accepted', undefined],
        ['failed', 'GW_UPDATE_ROLLED_BACK'],
      ]);
      await poll('1.0.0 ready again', () => ready()?.ready === true, 60_000);
      // 75 into 1.0.3, 1 into 1.0.3 again, 1 back into 1.0.0: three restarts, four starts, under StartLimitBurst=5
      // the status line systemd shows is the one of the last watchdog ping (every 5 s): wait for the first after ready
      await poll('StatusText=ready', () => show('StatusText').StatusText === 'ready', 30_000);
      const s = show('ActiveState', 'SubState', 'NRestarts', 'ExecMainPID', 'StatusText');
      expect([s.ActiveState, s.SubState, s.NRestarts, s.StatusText]).toEqual(['active', 'running', '3', 'ready']);
      const r = ready();
      expect([r?.status, r?.ready, r?.version, String(r?.pid)]).toEqual([200, true, '1.0.0', s.ExecMainPID]);
      const j = journal();
      expect(j.split('\n').filter((l) => l === 'this build cannot start on purpose (the start guard test)')).toHaveLength(1);
      expect(j).toContain('error GW_UPDATE_ROLLED_BACK: 1.0.3 did not reach its health gate');
      expect(j).toContain('eyewear-gateway.service: Scheduled restart job, restart counter is at 3.');
      expect(versionOf(EXE)).toBe('1.0.0');
      expect(sha256(inside(EXE))).toBe(sha256(v100));
      expect(readHistory(inside(DATA)).map((e) => [e.event, e.from, e.to])).toEqual([['rolled-back', '1.0.0', '1.0.3']]);
      expect(readUpdateState(inside(DATA))).toMatchObject({
        phase: 'rolled-back',
        outcome: 'rolled-back',
        from: '1.0.0',
        to: '1.0.3',
        reported: true,
      });
    }, 300_000);
  });

  describe('a new version that hangs on probation is killed by the watchdog and put back by the start guard', () => {
    beforeAll(() => boot('gw-systemd-hang'), 60_000);
    afterAll(() => sandbox?.stop());

    it('1.0.1 frozen (SIGSTOP) before its gate passes: WatchdogSec kills it, its next start puts 1.0.0 back, systemd starts 1.0.0, which reports the rollback', async () => {
      explainFailure();
      // a 60 s window: the gate needs readiness held 10 s, time enough to freeze it first
      install(60);
      await poll('1.0.0 ready (sink connected)', () => ready()?.ready === true, 60_000);
      const oldPid = show('ExecMainPID').ExecMainPID;
      await command('hg-1', publishRelease('1.0.1', v101));
      // 1.0.1 started by systemd and past READY=1 (the watchdog is armed from then on)
      let frozen = '';
      await poll(
        '1.0.1 started by systemd',
        () => {
          const s = show('ActiveState', 'ExecMainPID');
          if (s.ActiveState === 'active' && s.ExecMainPID !== oldPid && s.ExecMainPID !== '0') frozen = s.ExecMainPID ?? '';
          return frozen !== '';
        },
        120_000,
      );
      expect(sandbox.run(['kill', '-STOP', frozen]).status).toBe(0);
      phase(`1.0.1 (pid ${frozen}) frozen on probation`);
      expect(readUpdateState(inside(DATA))).toMatchObject({ phase: 'probation', from: '1.0.0', to: '1.0.1' });
      await waitFor(
        () => outcomes('update-outcome', 'outcome', 'rolled-back').length > 0,
        180_000,
        'update-outcome rolled-back on up/status',
      );
      phase('1.0.1 put back after the watchdog');
      const rolled = outcomes('update-outcome', 'outcome', 'rolled-back')[0];
      expect(rolled).toMatchObject({ from: '1.0.0', to: '1.0.1', commandId: 'hg-1' });
      expect(String(rolled?.reason)).toMatch(/^1\.0\.1 did not reach its health gate/);
      expect(outcomes('update-outcome', 'outcome', 'updated')).toEqual([]);
      await poll('1.0.0 ready again', () => ready()?.ready === true, 60_000);
      await poll('StatusText=ready', () => show('StatusText').StatusText === 'ready', 30_000);
      // 75 into 1.0.1, the watchdog's kill into 1.0.1 again (which puts 1.0.0 back and exits 1), 1 into 1.0.0
      const s = show('ActiveState', 'SubState', 'NRestarts', 'ExecMainPID', 'StatusText');
      expect([s.ActiveState, s.SubState, s.NRestarts, s.StatusText]).toEqual(['active', 'running', '3', 'ready']);
      expect([oldPid, frozen]).not.toContain(s.ExecMainPID);
      const r = ready();
      expect([r?.status, r?.ready, r?.version, String(r?.pid)]).toEqual([200, true, '1.0.0', s.ExecMainPID]);
      const j = journal();
      expect(j).toContain('eyewear-gateway.service: Watchdog timeout (limit 10s)!');
      expect(j).toContain('error GW_UPDATE_ROLLED_BACK: 1.0.1 did not reach its health gate');
      expect(versionOf(EXE)).toBe('1.0.0');
      expect(sha256(inside(EXE))).toBe(sha256(v100));
      expect(readHistory(inside(DATA)).map((e) => [e.event, e.from, e.to])).toEqual([['rolled-back', '1.0.0', '1.0.1']]);
    }, 300_000);
  });
});
