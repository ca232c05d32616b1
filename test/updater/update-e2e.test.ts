/**
 * Signed remote updates end to end, with real executables (issue 16 "Proof"): three single
 * executables built by `npm run build:binary` from this code as 1.0.0 and 1.0.1, and from a copy of
 * it patched so that it never becomes ready, as 1.0.2. A real mosquitto, the reference cloud on it,
 * and its release server on loopback.
 *
 * Hand-over (Linux), under steady MLLP load (a sender that resends what was not acknowledged, as a
 * PMS interface does):
 * - a signed `gateway.update` command takes 1.0.0 to 1.0.1: the old process hands its data folder
 *   to the new one, which passes its health gate; the old one exits 0;
 * - the broken 1.0.2 fails its gate and is rolled back by itself: the file is 1.0.1 again and the
 *   1.0.1 process runs its gateway again;
 * - a manifest signed by a key that is not pinned is refused, and nothing stops;
 * and every message acknowledged with AA at any point reached the cloud.
 *
 * Restart mode (Windows' way, where the service wrapper owns the process; here the test restarts the
 * executable on a non-zero exit as systemd's Restart=on-failure and WinSW's onfailure do): the old
 * version exits 75 with the new file in place; the new one judges its own gate; the broken one puts
 * the previous file back and exits 1, and the restarted previous version reports the rollback.
 *
 * Staged rollout across three gateways that trust the release key built into the executable
 * (`build:binary --release-keys`), with none in their config: the broken release stops at the first
 * stage's failure (the later stages never hear of it); the good one reaches all three, stage by stage.
 */
import { buildExecutable, patchedSourceCopy, sha256File, sourceRoot } from '../support/release-builds.ts';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CompactSign } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { connectMllp, readAck, type MllpClient } from '../../adapters/hl7v2/mllp-client.ts';
import { pidAlive, readDataLease } from '../../gateway/data-lease.ts';
import { makeReleaseKey, signManifest, startReleaseServer, type ReleaseKey, type ReleaseServer } from '../reference-cloud/releases.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { rollout } from '../reference-cloud/rollout.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { freePort, waitFor } from '../support/net.ts';
import { readHistory } from '../../updater/update-state.ts';

const root = sourceRoot;
const build = (src: string, version: string, out: string) => buildExecutable(src, version, out, { releaseKeys: releaseKeyFile });

const sha256 = sha256File;

interface Load {
  acked: string[];
  /** Messages acknowledged since the last mark. */
  sinceMark(): number;
  mark(): void;
  stop(): Promise<void>;
}

/** One message at a time; an unacknowledged one is resent on a new connection (bounded: at most 20,000 messages). */
function startLoad(port: number, prefix: string): Load {
  const acked: string[] = [];
  let stopped = false;
  let marked = 0;
  const run = (async () => {
    let client: MllpClient | undefined;
    for (let i = 0; !stopped && i < 20_000; ) {
      try {
        client ??= await connectMllp('127.0.0.1', port);
        const id = `${prefix}${i}`;
        const ack = readAck(await client.send(adtA04({ id, mrn: `M${prefix}${i}` }), 5000));
        if (ack.code === 'AA' && ack.controlId === id) {
          acked.push(id);
          i++;
        }
        await new Promise((r) => setTimeout(r, 5));
      } catch {
        await client?.close().catch(() => undefined);
        client = undefined;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await client?.close().catch(() => undefined);
  })();
  return {
    acked,
    sinceMark: () => acked.length - marked,
    mark: () => {
      marked = acked.length;
    },
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

interface Ready {
  ready: boolean;
  version: string;
  pid: number;
  reasons: string[];
}

/** What every scenario shares: the three builds, the broker, the cloud, its release server and keys, and up/status as seen by the cloud. */
const fx = {
  dir: mkdtempSync(join(tmpdir(), 'ewml-update-e2e-')),
  keys: makeCloudKeys(),
  commandKeys: generateKeyPairSync('ed25519'),
  release: makeReleaseKey(),
  status: [] as Array<Record<string, unknown> & { gatewayId: string }>,
  output: [] as string[],
} as {
  dir: string;
  keys: ReturnType<typeof makeCloudKeys>;
  commandKeys: ReturnType<typeof generateKeyPairSync>;
  release: ReleaseKey;
  status: Array<Record<string, unknown> & { gatewayId: string }>;
  output: string[];
  v100: string;
  v101: string;
  v102: string;
  v103: string;
  broker: Broker;
  cloud: MqttReferenceCloud;
  releases: ReleaseServer;
  watcher: MqttClient;
};

const signCommand = (payload: Record<string, unknown>, key: KeyObject = fx.commandKeys.privateKey) =>
  new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA' }).sign(key);

/** Publishes a release (its executable and a manifest signed by `signer`, for an optional cohort); returns the manifest's URL. */
function publishRelease(version: string, file: string, o: { signer?: ReleaseKey; cohort?: readonly string[]; name?: string } = {}): string {
  fx.releases.putFile(`eyewear-gateway-${version}`, file);
  const signed = {
    _type: 'eyewear-gateway-release' as const,
    version,
    expires: new Date(Date.now() + 3600_000).toISOString(),
    targets: { 'linux-x64': { url: `${fx.releases.url}/eyewear-gateway-${version}`, sha256: sha256(file), size: statSync(file).size } },
    ...(o.cohort ? { cohort: { gateways: [...o.cohort] } } : {}),
  };
  const name = o.name ?? `manifest-${version}.json`;
  fx.releases.putText(name, JSON.stringify(signManifest(signed, [o.signer ?? fx.release])));
  return `${fx.releases.url}/${name}`;
}

/** The release key built into every executable (the rollout's gateways pin nothing in their config). */
let releaseKeyFile = '';

beforeAll(async () => {
  const t0 = Date.now();
  releaseKeyFile = join(fx.dir, 'release-keys.pem');
  writeFileSync(releaseKeyFile, fx.release.publicPem);
  fx.v100 = build(root, '1.0.0', join(fx.dir, 'build-100'));
  fx.v101 = build(root, '1.0.1', join(fx.dir, 'build-101'));
  const broken = patchedSourceCopy(
    join(fx.dir, 'src-broken'),
    'gateway/status-report.ts',
    "if (!s.startedAt()) reasons.push('gateway not running');",
    "if (!s.startedAt()) reasons.push('gateway not running');\n    reasons.push('this build is broken on purpose (the rollback test)');",
  );
  fx.v102 = build(broken, '1.0.2', join(fx.dir, 'build-102'));
  // and one that exits at every start, after the launch guard and before it reads its config (a release that cannot start)
  const crashing = patchedSourceCopy(
    join(fx.dir, 'src-crashing'),
    'cli/commands/start.ts',
    '  const config = io.loadConfig(configFile);',
    "  if (process.env.PATH !== '') process.exit(3);\n  const config = io.loadConfig(configFile);",
  );
  fx.v103 = build(crashing, '1.0.3', join(fx.dir, 'build-103'));
  console.log(`built 1.0.0, 1.0.1, a broken 1.0.2 and a crashing 1.0.3 in ${Math.round((Date.now() - t0) / 1000)} s`);
  fx.broker = await startMosquitto();
  fx.cloud = await startMqttReferenceCloud({ url: fx.broker.url, privateKey: fx.keys.privateKey });
  fx.releases = await startReleaseServer();
  fx.watcher = await mqtt.connectAsync(fx.broker.url, { protocolVersion: 5 });
  fx.watcher.on('message', (topic, p) => {
    try {
      fx.status.push({ ...(JSON.parse(p.toString()) as Record<string, unknown>), gatewayId: topic.split('/')[3] });
    } catch {
      // not JSON: not ours
    }
  });
  await fx.watcher.subscribeAsync('ewml/v1/+/+/up/status', { qos: 1 });
}, 600_000);

afterAll(async () => {
  await fx.watcher?.endAsync();
  await fx.releases?.stop();
  await fx.cloud?.stop();
  await fx.broker?.stop();
  rmSync(fx.dir, { recursive: true, force: true });
});

/**
 * One installed gateway (its own folder, ports and identity) running `version`'s executable, as a
 * service manager runs it: with `restartOnFailure`, a non-zero exit starts the executable again
 * (at most 10 starts), as systemd's Restart=on-failure and WinSW's onfailure do.
 */
async function installGateway(
  id: string,
  o: { mode: 'hand-over' | 'restart'; windowSeconds: number; restartOnFailure: boolean; keysInConfig?: boolean },
) {
  const home = join(fx.dir, id);
  const exe = join(home, 'opt', 'eyewear-gateway');
  mkdirSync(dirname(exe), { recursive: true });
  copyFileSync(fx.v100, exe);
  execFileSync('chmod', ['755', exe]);
  const hl7Port = await freePort();
  const adminPort = await freePort();
  const dataDir = join(home, 'data');
  writeFileSync(join(home, 'pub.pem'), fx.keys.publicPem);
  writeFileSync(join(home, 'command.pem'), fx.commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  writeFileSync(join(home, 'release.pem'), fx.release.publicPem);
  const cfg = join(home, 'gateway.yaml');
  writeFileSync(
    cfg,
    [
      'gateway:',
      `  id: ${id}`,
      `  tenantId: t-${id}`,
      `  dataDir: ${dataDir}`,
      'log:',
      '  level: info',
      'hl7:',
      `  port: ${hl7Port}`,
      'admin:',
      `  port: ${adminPort}`,
      'relay:',
      '  sink: mqtt',
      '  idlePollMs: 100',
      'mqtt:',
      `  url: ${fx.broker.url}`,
      'cloud:',
      '  publicKey: ${file:pub.pem}',
      '  commandPublicKey: ${file:command.pem}',
      ...(o.keysInConfig === false ? [] : ['  releaseKeys: ["${file:release.pem}"]']),
      'updates:',
      `  healthWindowSeconds: ${o.windowSeconds}`,
      `  mode: ${o.mode}`,
      `  executable: ${exe}`,
      '',
    ].join('\n'),
  );
  const exits: Array<number | null> = [];
  let starts = 0;
  let stopping = false;
  let current: ChildProcess | undefined;
  const launch = () => {
    starts++;
    const c = spawn(exe, ['start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [c.stdout!, c.stderr!]) s.setEncoding('utf8').on('data', (d: string) => fx.output.push(`[${id}] ${d}`));
    c.once('exit', (code) => {
      exits.push(code);
      if (!stopping && o.restartOnFailure && code !== 0 && starts < 10) setTimeout(launch, 200);
    });
    current = c;
  };
  const ready = async (): Promise<Ready | undefined> => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    return r ? ((await r.json()) as Ready) : undefined;
  };
  launch();
  await waitFor(async () => (await ready())?.ready === true, 30_000, `${id} (1.0.0) ready`);
  return {
    id,
    exe,
    dataDir,
    hl7Port,
    exits,
    starts: () => starts,
    firstPid: current!.pid!,
    ready,
    command: async (commandId: string, manifestUrl: string) => {
      const now = Math.floor(Date.now() / 1000);
      const jws = await signCommand({ id: commandId, type: 'gateway.update', gatewayId: id, iat: now, exp: now + 600, manifestUrl });
      await fx.cloud.client.publishAsync(`ewml/v1/t-${id}/${id}/down/commands`, jws, { qos: 1 });
    },
    outcomes: (type: string, key: string, value: string) =>
      fx.status.filter((m) => m.gatewayId === id && m.type === type && m[key] === value),
    version: () => execFileSync(exe, ['version'], { encoding: 'utf8' }).trim(),
    /** Stops whichever process holds the data folder now (SIGTERM, then SIGKILL). */
    stop: async () => {
      stopping = true;
      const holder = readDataLease(dataDir);
      for (const pid of [holder?.pid, current?.pid]) {
        if (!pid) continue;
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          continue; // gone already
        }
        await waitFor(() => !pidAlive(pid), 20_000, `${id} pid ${pid} stopped`).catch(() => process.kill(pid, 'SIGKILL'));
      }
    },
  };
}
type Installed = Awaited<ReturnType<typeof installGateway>>;

/** On a failure: what the gateways printed and what came on up/status, to read why. */
const explainFailure = () =>
  onTestFailed(() => {
    console.log(`gateway output (last 12,000 characters):\n${fx.output.join('').slice(-12_000)}`);
    console.log(`up/status: ${JSON.stringify(fx.status.slice(-30))}`);
  });

/** Every message the load had acknowledged reached the cloud (the cloud keeps the first copy of each record). */
async function expectAllAckedInCloud(load: Load): Promise<void> {
  await load.stop();
  const acked = [...load.acked];
  const received = () => new Set([...fx.cloud.store.records.values()].map((r) => r.source.messageId));
  await waitFor(() => acked.every((id) => received().has(id)), 60_000, 'every acknowledged message in the cloud');
  expect(acked.filter((id) => !received().has(id))).toEqual([]);
  expect(fx.cloud.store.invalid).toEqual([]);
}

describe('hand-over (Linux): the old process starts the new one and judges its gate', () => {
  let gw: Installed;
  let load: Load;
  let updatedPid = 0;
  beforeAll(async () => {
    gw = await installGateway('gw-upd', { mode: 'hand-over', windowSeconds: 30, restartOnFailure: false });
    load = startLoad(gw.hl7Port, 'UPD');
    await waitFor(() => load.acked.length >= 20, 30_000, 'the first messages acknowledged');
  }, 120_000);
  afterAll(async () => {
    await load?.stop();
    await gw?.stop();
  });

  it('a signed gateway.update takes 1.0.0 to 1.0.1 under load: the new process takes the lease and passes its gate, the old one exits 0', async () => {
    explainFailure();
    expect((await gw.ready())!.version).toBe('1.0.0');
    await gw.command('upd-1', publishRelease('1.0.1', fx.v101));
    await waitFor(() => gw.outcomes('update-outcome', 'outcome', 'updated').length > 0, 120_000, 'update-outcome updated on up/status');
    expect(gw.outcomes('update-outcome', 'outcome', 'updated')[0]).toMatchObject({ from: '1.0.0', to: '1.0.1', commandId: 'upd-1' });
    expect(gw.outcomes('command-outcome', 'commandId', 'upd-1').map((m) => m.status)).toEqual(['accepted', 'done']);
    await waitFor(() => gw.exits.length === 1, 10_000, 'the old process exits');
    expect(gw.exits).toEqual([0]);
    const r = (await gw.ready())!;
    expect([r.ready, r.version]).toEqual([true, '1.0.1']);
    expect(r.pid).not.toBe(gw.firstPid);
    updatedPid = r.pid;
    expect(readDataLease(gw.dataDir)?.pid).toBe(updatedPid);
    expect(gw.version()).toBe('1.0.1');
    expect(execFileSync(`${gw.exe}.previous`, ['version'], { encoding: 'utf8' }).trim()).toBe('1.0.0');
    expect(readHistory(gw.dataDir).map((e) => [e.event, e.from, e.to])).toEqual([['applied', '1.0.0', '1.0.1']]);
    // the new version takes messages too
    load.mark();
    await waitFor(() => load.sinceMark() >= 20, 30_000, 'messages acknowledged by 1.0.1');
  }, 240_000);

  it('the broken 1.0.2 fails its health gate and is rolled back by itself: the file is 1.0.1 again and 1.0.1 runs on', async () => {
    explainFailure();
    await gw.command('upd-2', publishRelease('1.0.2', fx.v102));
    await waitFor(() => gw.outcomes('update-outcome', 'outcome', 'rolled-back').length > 0, 180_000, 'update-outcome rolled-back');
    const rolled = gw.outcomes('update-outcome', 'outcome', 'rolled-back')[0];
    expect(rolled).toMatchObject({ from: '1.0.1', to: '1.0.2', commandId: 'upd-2' });
    expect(String(rolled.reason)).toContain('this build is broken on purpose');
    const cmd = gw.outcomes('command-outcome', 'commandId', 'upd-2');
    expect(cmd.map((m) => [m.status, m.code])).toEqual([
      ['accepted', undefined],
      ['failed', 'GW_UPDATE_ROLLED_BACK'],
    ]);
    await waitFor(async () => (await gw.ready())?.ready === true, 30_000, '1.0.1 ready again');
    const r = (await gw.ready())!;
    expect([r.version, r.pid]).toEqual(['1.0.1', updatedPid]);
    expect(gw.version()).toBe('1.0.1');
    expect(sha256(gw.exe)).toBe(sha256(fx.v101));
    expect(readHistory(gw.dataDir).map((e) => [e.event, e.from, e.to])).toEqual([
      ['applied', '1.0.0', '1.0.1'],
      ['rolled-back', '1.0.1', '1.0.2'],
    ]);
    load.mark();
    await waitFor(() => load.sinceMark() >= 20, 30_000, 'messages acknowledged after the rollback');
  }, 240_000);

  it('a manifest signed by a key that is not pinned is refused and audited; nothing stops', async () => {
    explainFailure();
    await gw.command('upd-3', publishRelease('1.0.3', fx.v102, { signer: makeReleaseKey() }));
    await waitFor(() => gw.outcomes('command-outcome', 'commandId', 'upd-3').length >= 2, 30_000, 'upd-3 outcome');
    const cmd = gw.outcomes('command-outcome', 'commandId', 'upd-3');
    expect(cmd.map((m) => [m.status, m.code])).toEqual([
      ['accepted', undefined],
      ['failed', 'GW_UPDATE_REFUSED'],
    ]);
    expect(String(cmd[1].detail)).toContain('0 valid signature(s) by pinned release keys; 1 needed');
    expect(readHistory(gw.dataDir).at(-1)).toMatchObject({ event: 'refused', from: '1.0.1', code: 'GW_UPDATE_REFUSED' });
    expect((await gw.ready())!.pid).toBe(updatedPid);
  }, 60_000);

  it('every message acknowledged with AA before, during and after the switch-overs reached the cloud', async () => {
    expect(load.acked.length).toBeGreaterThanOrEqual(60);
    await expectAllAckedInCloud(load);
  }, 90_000);
});

describe("restart mode (Windows' way): the service manager starts the new version, which judges its own gate", () => {
  let gw: Installed;
  let load: Load;
  beforeAll(async () => {
    gw = await installGateway('gw-rst', { mode: 'restart', windowSeconds: 15, restartOnFailure: true });
    load = startLoad(gw.hl7Port, 'RST');
    await waitFor(() => load.acked.length >= 20, 30_000, 'the first messages acknowledged');
  }, 120_000);
  afterAll(async () => {
    await load?.stop();
    await gw?.stop();
  });

  it('1.0.0 exits 75 with 1.0.1 in place; the restarted 1.0.1 passes its own gate and reports updated', async () => {
    explainFailure();
    await gw.command('rst-1', publishRelease('1.0.1', fx.v101));
    await waitFor(() => gw.outcomes('update-outcome', 'outcome', 'updated').length > 0, 120_000, 'update-outcome updated');
    expect(gw.outcomes('update-outcome', 'outcome', 'updated')[0]).toMatchObject({ from: '1.0.0', to: '1.0.1', commandId: 'rst-1' });
    expect(gw.outcomes('command-outcome', 'commandId', 'rst-1').map((m) => m.status)).toEqual(['accepted', 'done']);
    expect(gw.exits).toEqual([75]);
    expect([(await gw.ready())!.version, gw.starts()]).toEqual(['1.0.1', 2]);
    expect(readHistory(gw.dataDir).map((e) => [e.event, e.from, e.to])).toEqual([['applied', '1.0.0', '1.0.1']]);
  }, 180_000);

  it('the broken 1.0.2 fails its own gate, puts 1.0.1 back and exits 1; the restarted 1.0.1 reports the rollback', async () => {
    explainFailure();
    await gw.command('rst-2', publishRelease('1.0.2', fx.v102));
    await waitFor(() => gw.outcomes('update-outcome', 'outcome', 'rolled-back').length > 0, 180_000, 'update-outcome rolled-back');
    const rolled = gw.outcomes('update-outcome', 'outcome', 'rolled-back')[0];
    expect(rolled).toMatchObject({ from: '1.0.1', to: '1.0.2', commandId: 'rst-2' });
    expect(String(rolled.reason)).toContain('this build is broken on purpose');
    expect(gw.exits).toEqual([75, 75, 1]);
    await waitFor(async () => (await gw.ready())?.ready === true, 30_000, '1.0.1 ready again');
    expect([(await gw.ready())!.version, gw.starts(), gw.version()]).toEqual(['1.0.1', 4, '1.0.1']);
    expect(readHistory(gw.dataDir).map((e) => [e.event, e.from, e.to])).toEqual([
      ['applied', '1.0.0', '1.0.1'],
      ['rolled-back', '1.0.1', '1.0.2'],
    ]);
  }, 240_000);

  it('a release that exits at every start is put back by its own second start, before it reads its config; 1.0.1 reports the rollback', async () => {
    explainFailure();
    await gw.command('rst-3', publishRelease('1.0.3', fx.v103));
    await waitFor(() => gw.outcomes('update-outcome', 'commandId', 'rst-3').length > 0, 120_000, 'update-outcome for rst-3');
    const rolled = gw.outcomes('update-outcome', 'commandId', 'rst-3')[0];
    expect(rolled).toMatchObject({ outcome: 'rolled-back', from: '1.0.1', to: '1.0.3' });
    expect(String(rolled.reason)).toBe(
      '1.0.3 did not reach its health gate: its last start ended (it exited, hung or was stopped) before it was judged',
    );
    // 1.0.1 exits 75, 1.0.3 exits 3, its second start restores 1.0.1 and exits 1, 1.0.1 runs
    expect(gw.exits).toEqual([75, 75, 1, 75, 3, 1]);
    await waitFor(async () => (await gw.ready())?.ready === true, 30_000, '1.0.1 ready again');
    expect([(await gw.ready())!.version, gw.version()]).toEqual(['1.0.1', '1.0.1']);
    expect(existsSync(`${gw.exe}.probation.json`)).toBe(false);
    expect(readHistory(gw.dataDir).map((e) => [e.event, e.to])).toEqual([
      ['applied', '1.0.1'],
      ['rolled-back', '1.0.2'],
      ['rolled-back', '1.0.3'],
    ]);
    await expectAllAckedInCloud(load);
  }, 240_000);
});

describe('staged rollout across a cohort of three gateways (their release key is the one built into the executable; their config pins none)', () => {
  const gws: Installed[] = [];
  beforeAll(async () => {
    for (const id of ['gw-ra', 'gw-rb', 'gw-rc'])
      gws.push(await installGateway(id, { mode: 'hand-over', windowSeconds: 15, restartOnFailure: false, keysInConfig: false }));
  }, 180_000);
  afterAll(async () => {
    for (const g of gws) await g.stop();
  });
  const stages = [['gw-ra'], ['gw-rb', 'gw-rc']];

  it('the broken release stops at its first stage: gw-ra rolls back, gw-rb and gw-rc never hear of it', async () => {
    explainFailure();
    const progress: string[] = [];
    const r = await rollout({
      cloud: fx.cloud,
      tenantOf: (g) => `t-${g}`,
      stages,
      manifestFor: (cohort) => publishRelease('1.0.2', fx.v102, { cohort, name: `broken-${cohort.length}.json` }),
      signCommand: (p) => signCommand(p),
      onProgress: (l) => progress.push(l),
    });
    expect(r.updated).toEqual([[]]);
    expect(r.stoppedAt).toMatchObject({ stage: 1, gatewayId: 'gw-ra', outcome: 'rolled-back' });
    expect(progress[0]).toBe('stage 1/2: gw-ra');
    expect(fx.releases.requests.filter((q) => q.startsWith('broken-'))).toEqual(['broken-1.json']);
    for (const g of gws) expect([g.id, (await g.ready())!.version]).toEqual([g.id, '1.0.0']);
    // and the gateway enforces the cohort itself: gw-rb asked with the stage-1 manifest declines
    await gws[1].command('outside-1', `${fx.releases.url}/broken-1.json`);
    await waitFor(() => gws[1].outcomes('update-outcome', 'commandId', 'outside-1').length > 0, 30_000, 'gw-rb answers');
    expect(gws[1].outcomes('update-outcome', 'commandId', 'outside-1')[0].outcome).toBe('not-in-cohort');
  }, 240_000);

  it('the good release goes stage by stage to all three', async () => {
    explainFailure();
    const r = await rollout({
      cloud: fx.cloud,
      tenantOf: (g) => `t-${g}`,
      stages,
      manifestFor: (cohort) => publishRelease('1.0.1', fx.v101, { cohort, name: `good-${cohort.length}.json` }),
      signCommand: (p) => signCommand(p),
    });
    expect(r).toEqual({ updated: [['gw-ra'], ['gw-rb', 'gw-rc']] });
    for (const g of gws) expect([g.id, (await g.ready())!.version, g.version()]).toEqual([g.id, '1.0.1', '1.0.1']);
  }, 300_000);
});
