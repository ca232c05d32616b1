/**
 * Signed remote updates end to end, with real executables (issue 16 "Proof"): three single
 * executables built by `npm run build:binary` from this code as 1.0.0 and 1.0.1, and from a copy of
 * it patched so that it never becomes ready, as 1.0.2. A real mosquitto, the reference cloud on it,
 * and its release server on loopback. Under steady MLLP load (a sender that resends what was not
 * acknowledged, as a PMS interface does):
 * - a signed `gateway.update` command takes 1.0.0 to 1.0.1: the old process hands its data folder
 *   to the new one, which passes its health gate; the old one exits 0;
 * - the broken 1.0.2 fails its gate and is rolled back by itself: the file is 1.0.1 again and the
 *   1.0.1 process runs its gateway again;
 * - a manifest signed by a key that is not pinned is refused, and nothing stops;
 * and every message acknowledged with AA at any point reached the cloud.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CompactSign } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { connectMllp, readAck, type MllpClient } from '../../adapters/hl7v2/mllp-client.ts';
import { readDataLease } from '../../gateway/data-lease.ts';
import { makeReleaseKey, signManifest, startReleaseServer, type ReleaseKey, type ReleaseServer } from '../reference-cloud/releases.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { freePort, waitFor } from '../support/net.ts';
import { readHistory } from '../../updater/update-state.ts';

const root = new URL('../../', import.meta.url).pathname;
const GW = 'gw-upd';
const TENANT = 't-upd';

/** `npm run build:binary` for Linux from `src` (this checkout, or a patched copy of it) as `version`. */
function build(src: string, version: string, out: string): string {
  execFileSync(process.execPath, [join(src, 'installer/build-binary.ts'), '--version', version, '--out', out, '--platform', 'linux-x64'], {
    cwd: src,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 240_000,
  });
  return join(out, 'eyewear-gateway');
}

/** A copy of the tracked sources with one change (node_modules linked, not copied). */
function patchedCopy(dir: string, file: string, from: string, to: string): string {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    if (f.startsWith('test/') || f.startsWith('docs/')) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    try {
      copyFileSync(join(root, f), join(dir, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // deleted in the working tree
    }
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const text = readFileSync(join(dir, file), 'utf8');
  if (!text.includes(from)) throw new Error(`the patch for the broken build no longer applies to ${file}`);
  writeFileSync(join(dir, file), text.replace(from, to));
  return dir;
}

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

interface Load {
  acked: string[];
  /** Messages acknowledged since the last mark. */
  sinceMark(): number;
  mark(): void;
  stop(): Promise<void>;
}

/** One message at a time; an unacknowledged one is resent on a new connection (bounded: at most 20,000 messages). */
function startLoad(port: number): Load {
  const acked: string[] = [];
  let stopped = false;
  let marked = 0;
  const run = (async () => {
    let client: MllpClient | undefined;
    for (let i = 0; !stopped && i < 20_000; ) {
      try {
        client ??= await connectMllp('127.0.0.1', port);
        const id = `UPD${i}`;
        const ack = readAck(await client.send(adtA04({ id, mrn: `MU${i}` }), 5000));
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

describe('signed updates with real executables', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-update-e2e-'));
  const keys = makeCloudKeys();
  const commandKeys = generateKeyPairSync('ed25519');
  let release: ReleaseKey;
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let releases: ReleaseServer;
  let watcher: MqttClient;
  let exe: string;
  let cfg: string;
  let hl7Port: number;
  let adminPort: number;
  let v100: string;
  let v101: string;
  let v102: string;
  let first: ChildProcess;
  let firstExit: Promise<number | null>;
  let load: Load;
  const output: string[] = [];
  const status: Array<Record<string, unknown>> = [];
  const dataDir = join(dir, 'data');

  const ready = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    return r ? ((await r.json()) as { ready: boolean; version: string; pid: number; reasons: string[] }) : undefined;
  };
  const sign = (payload: Record<string, unknown>, key: KeyObject = commandKeys.privateKey) =>
    new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
  const command = async (id: string, manifest: string) => {
    const now = Math.floor(Date.now() / 1000);
    const jws = await sign({
      id,
      type: 'gateway.update',
      gatewayId: GW,
      iat: now,
      exp: now + 600,
      manifestUrl: `${releases.url}/${manifest}`,
    });
    await cloud.client.publishAsync(`ewml/v1/${TENANT}/${GW}/down/commands`, jws, { qos: 1 });
  };
  const publishRelease = (version: string, file: string, signer: ReleaseKey = release) => {
    releases.putFile(`eyewear-gateway-${version}`, file);
    const signed = {
      _type: 'eyewear-gateway-release' as const,
      version,
      expires: new Date(Date.now() + 3600_000).toISOString(),
      targets: { 'linux-x64': { url: `${releases.url}/eyewear-gateway-${version}`, sha256: sha256(file), size: statSync(file).size } },
    };
    releases.putText(`manifest-${version}.json`, JSON.stringify(signManifest(signed, [signer])));
    return `manifest-${version}.json`;
  };
  /** On a failure: what the gateways printed and what came on up/status, to read why. */
  const explainFailure = () =>
    onTestFailed(() => {
      console.log(`gateway output (last 12,000 characters):\n${output.join('').slice(-12_000)}`);
      console.log(`up/status: ${JSON.stringify(status.slice(-20))}`);
    });
  const outcomes = (type: string, key: string, value: string) => status.filter((m) => m.type === type && m[key] === value);

  beforeAll(async () => {
    const t0 = Date.now();
    v100 = build(root, '1.0.0', join(dir, 'build-100'));
    v101 = build(root, '1.0.1', join(dir, 'build-101'));
    const broken = patchedCopy(
      join(dir, 'src-broken'),
      'gateway/status-report.ts',
      "if (!s.startedAt()) reasons.push('gateway not running');",
      "if (!s.startedAt()) reasons.push('gateway not running');\n    reasons.push('this build is broken on purpose (the rollback test)');",
    );
    v102 = build(broken, '1.0.2', join(dir, 'build-102'));
    console.log(`built 1.0.0, 1.0.1 and a broken 1.0.2 in ${Math.round((Date.now() - t0) / 1000)} s`);

    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    releases = await startReleaseServer();
    release = makeReleaseKey();
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    watcher.on('message', (_t, p) => {
      try {
        status.push(JSON.parse(p.toString()) as Record<string, unknown>);
      } catch {
        // the retained online/offline status is JSON too; anything else is not ours
      }
    });
    await watcher.subscribeAsync(`ewml/v1/${TENANT}/${GW}/up/status`, { qos: 1 });

    // the installed executable, as `install` lays it out: a folder the gateway's service account may write
    exe = join(dir, 'opt', 'eyewear-gateway');
    mkdirSync(dirname(exe), { recursive: true });
    copyFileSync(v100, exe);
    execFileSync('chmod', ['755', exe]);
    hl7Port = await freePort();
    adminPort = await freePort();
    writeFileSync(join(dir, 'pub.pem'), keys.publicPem);
    writeFileSync(join(dir, 'command.pem'), commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    writeFileSync(join(dir, 'release.pem'), release.publicPem);
    cfg = join(dir, 'gateway.yaml');
    writeFileSync(
      cfg,
      [
        'gateway:',
        `  id: ${GW}`,
        `  tenantId: ${TENANT}`,
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
        `  url: ${broker.url}`,
        'cloud:',
        '  publicKey: ${file:pub.pem}',
        '  commandPublicKey: ${file:command.pem}',
        '  releaseKeys: ["${file:release.pem}"]',
        'updates:',
        '  healthWindowSeconds: 30',
        `  executable: ${exe}`,
        '',
      ].join('\n'),
    );
    first = spawn(exe, ['start', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [first.stdout!, first.stderr!]) s.setEncoding('utf8').on('data', (d: string) => output.push(d));
    firstExit = new Promise((r) => first.once('exit', (code) => r(code)));
    await waitFor(async () => (await ready())?.ready === true, 30_000, 'the 1.0.0 gateway ready');
    load = startLoad(hl7Port);
    await waitFor(() => load.acked.length >= 20, 30_000, 'the first messages acknowledged');
  }, 600_000);

  afterAll(async () => {
    await load?.stop();
    const holder = readDataLease(dataDir);
    if (holder) {
      try {
        process.kill(holder.pid, 'SIGTERM');
        await waitFor(() => readDataLease(dataDir) === undefined, 20_000, 'the gateway stopped').catch(() =>
          process.kill(holder.pid, 'SIGKILL'),
        );
      } catch {
        // gone already
      }
    }
    first?.kill('SIGKILL');
    await watcher?.endAsync();
    await releases?.stop();
    await cloud?.stop();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let updatedPid = 0;

  it('a signed gateway.update takes 1.0.0 to 1.0.1 under load: the new process takes the lease and passes its gate, the old one exits 0', async () => {
    explainFailure();
    const oldPid = first.pid!;
    expect((await ready())!.version).toBe('1.0.0');
    load.mark();
    await command('upd-1', publishRelease('1.0.1', v101));
    await waitFor(() => outcomes('update-outcome', 'outcome', 'updated').length > 0, 120_000, 'update-outcome updated on up/status');
    expect(outcomes('update-outcome', 'outcome', 'updated')[0]).toMatchObject({ from: '1.0.0', to: '1.0.1', commandId: 'upd-1' });
    expect(outcomes('command-outcome', 'commandId', 'upd-1').map((m) => m.status)).toEqual(['accepted', 'done']);
    expect(await firstExit).toBe(0);
    const r = (await ready())!;
    expect([r.ready, r.version]).toEqual([true, '1.0.1']);
    expect(r.pid).not.toBe(oldPid);
    updatedPid = r.pid;
    expect(readDataLease(dataDir)?.pid).toBe(updatedPid);
    expect(execFileSync(exe, ['version'], { encoding: 'utf8' }).trim()).toBe('1.0.1');
    expect(execFileSync(`${exe}.previous`, ['version'], { encoding: 'utf8' }).trim()).toBe('1.0.0');
    expect(readHistory(dataDir).map((e) => [e.event, e.from, e.to])).toEqual([['applied', '1.0.0', '1.0.1']]);
    // the new version takes messages too
    load.mark();
    await waitFor(() => load.sinceMark() >= 20, 30_000, 'messages acknowledged by 1.0.1');
  }, 240_000);

  it('the broken 1.0.2 fails its health gate and is rolled back by itself: the file is 1.0.1 again and 1.0.1 runs on', async () => {
    explainFailure();
    await command('upd-2', publishRelease('1.0.2', v102));
    await waitFor(() => outcomes('update-outcome', 'outcome', 'rolled-back').length > 0, 180_000, 'update-outcome rolled-back');
    const rolled = outcomes('update-outcome', 'outcome', 'rolled-back')[0];
    expect(rolled).toMatchObject({ from: '1.0.1', to: '1.0.2', commandId: 'upd-2' });
    expect(String(rolled.reason)).toContain('this build is broken on purpose');
    const cmd = outcomes('command-outcome', 'commandId', 'upd-2');
    expect(cmd.map((m) => m.status)).toEqual(['accepted', 'failed']);
    expect(cmd[1].code).toBe('GW_UPDATE_ROLLED_BACK');
    await waitFor(async () => (await ready())?.ready === true, 30_000, '1.0.1 ready again');
    const r = (await ready())!;
    expect([r.version, r.pid]).toEqual(['1.0.1', updatedPid]);
    expect(execFileSync(exe, ['version'], { encoding: 'utf8' }).trim()).toBe('1.0.1');
    expect(sha256(exe)).toBe(sha256(v101));
    expect(readHistory(dataDir).map((e) => [e.event, e.from, e.to])).toEqual([
      ['applied', '1.0.0', '1.0.1'],
      ['rolled-back', '1.0.1', '1.0.2'],
    ]);
    load.mark();
    await waitFor(() => load.sinceMark() >= 20, 30_000, 'messages acknowledged after the rollback');
  }, 240_000);

  it('a manifest signed by a key that is not pinned is refused and audited; nothing stops', async () => {
    const stranger = makeReleaseKey();
    await command('upd-3', publishRelease('1.0.3', v102, stranger));
    await waitFor(() => outcomes('command-outcome', 'commandId', 'upd-3').length >= 2, 30_000, 'upd-3 outcome');
    const cmd = outcomes('command-outcome', 'commandId', 'upd-3');
    expect(cmd.map((m) => [m.status, m.code])).toEqual([
      ['accepted', undefined],
      ['failed', 'GW_UPDATE_REFUSED'],
    ]);
    expect(String(cmd[1].detail)).toContain('0 valid signature(s) by pinned release keys; 1 needed');
    expect(readHistory(dataDir).at(-1)).toMatchObject({ event: 'refused', from: '1.0.1', code: 'GW_UPDATE_REFUSED' });
    expect((await ready())!.pid).toBe(updatedPid);
  }, 60_000);

  it('every message acknowledged with AA before, during and after the switch-overs reached the cloud', async () => {
    await load.stop();
    const acked = [...load.acked];
    expect(acked.length).toBeGreaterThanOrEqual(60);
    const received = () => new Set([...cloud.store.records.values()].map((r) => r.source.messageId));
    await waitFor(() => acked.every((id) => received().has(id)), 60_000, 'every acknowledged message in the cloud');
    expect(acked.filter((id) => !received().has(id))).toEqual([]);
    expect(cloud.store.invalid).toEqual([]);
  }, 90_000);
});
