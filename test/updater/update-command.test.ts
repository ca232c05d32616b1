/** `eyewear-gateway update verify` as a person runs it: the real CLI, a config pinning release keys, a local release server. */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayVersion } from '../../gateway/version.ts';
import { MANIFEST_TYPE, type ManifestSigned } from '../../updater/manifest.ts';
import { makeReleaseKey, signManifest } from '../reference-cloud/releases.ts';
import { appendHistory, writeUpdateState } from '../../updater/update-state.ts';

const root = join(import.meta.dirname, '..', '..');
const exe = Buffer.from('#!/bin/sh\necho v0.2.0\n'.repeat(1000));
let server: Server;
let base = '';
const dir = mkdtempSync(join(tmpdir(), 'ewml-updcmd-'));
const key = makeReleaseKey();
const other = makeReleaseKey();

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], { cwd: dir });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

const manifest = (over: Partial<ManifestSigned> = {}): ManifestSigned => ({
  _type: MANIFEST_TYPE,
  version: '99.0.0',
  expires: new Date(Date.now() + 86_400_000).toISOString(),
  targets: {
    [`${process.platform}-${process.arch}`]: {
      url: `${base}/99.0.0/eyewear-gateway`,
      sha256: createHash('sha256').update(exe).digest('hex'),
      size: exe.length,
    },
  },
  ...over,
});

beforeAll(async () => {
  server = createServer((_req, res) => res.end(exe));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(join(dir, 'release-1.pem'), key.publicPem);
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `gateway:\n  id: gw-upd\ncloud:\n  releaseKeys:\n    - \${file:${join(dir, 'release-1.pem')}}\n`,
  );
  writeFileSync(join(dir, 'no-keys.yaml'), 'gateway:\n  id: gw-upd\n');
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('eyewear-gateway update verify', () => {
  it('verifies a signed manifest, downloads the target and checks it', async () => {
    writeFileSync(join(dir, 'good.json'), JSON.stringify(signManifest(manifest({ cohort: { gateways: ['gw-upd'] } }), [key])));
    const r = await run(['update', 'verify', 'good.json', '-c', 'gateway.yaml', '--download', 'staged']);
    expect(r.err).toContain('downloading: 100%');
    expect(r.out.split('\n')[0]).toMatch(
      new RegExp(
        `^manifest valid: ${gatewayVersion().replace(/\./g, '\\.')} -> 99\\.0\\.0 for ${process.platform}-${process.arch}, signed by 1 pinned key\\(s\\)`,
      ),
    );
    expect(r.out).toContain('cohort: this gateway (gw-upd) is in it');
    expect(r.out).toContain(`downloaded and verified: staged/eyewear-gateway-99.0.0`);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'staged', 'eyewear-gateway-99.0.0')).equals(exe)).toBe(true);
  });

  it('refuses a manifest signed by another key, an older version and a wrong hash, exit 1 with the reason', async () => {
    writeFileSync(join(dir, 'other.json'), JSON.stringify(signManifest(manifest(), [other])));
    const a = await run(['update', 'verify', 'other.json', '-c', 'gateway.yaml']);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/^error GW_UPDATE_REFUSED: manifest carries 0 valid signature\(s\) by pinned release keys; 1 needed/);
    expect(a.err).toContain('what to do: Check the pinned release keys');
    writeFileSync(join(dir, 'old.json'), JSON.stringify(signManifest(manifest({ version: '0.0.1' }), [key])));
    const b = await run(['update', 'verify', 'old.json', '-c', 'gateway.yaml']);
    expect(b.code).toBe(1);
    expect(b.err).toContain('manifest offers 0.0.1, not newer than the installed');
    const bad = manifest();
    const t = Object.values(bad.targets)[0];
    t.sha256 = 'f'.repeat(64);
    writeFileSync(join(dir, 'badhash.json'), JSON.stringify(signManifest(bad, [key])));
    const c = await run(['update', 'verify', 'badhash.json', '-c', 'gateway.yaml', '--download', 'staged2']);
    expect(c.code).toBe(1);
    expect(c.err).toContain(`differs from the manifest's ${'f'.repeat(64)}`);
  });

  it('says no update can be accepted when no release key is pinned (exit 3)', async () => {
    const r = await run(['update', 'verify', 'good.json', '-c', 'no-keys.yaml']);
    expect(r.code).toBe(3);
    expect(r.err).toContain('no release key is pinned (none built into this executable, cloud.releaseKeys empty)');
  });

  it('check-config names a release key that is not Ed25519 and a threshold above the keys pinned', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'ec.pem'), publicKey.export({ type: 'spki', format: 'pem' }).toString());
    writeFileSync(
      join(dir, 'bad-keys.yaml'),
      `gateway:\n  id: gw-upd\ncloud:\n  releaseKeyThreshold: 2\n  releaseKeys:\n    - \${file:${join(dir, 'ec.pem')}}\n`,
    );
    const r = await run(['check-config', 'bad-keys.yaml']);
    expect(r.code).toBe(3);
    const text = r.out + r.err;
    expect(text).toContain('cloud.releaseKeys[0]');
    expect(text).toContain('cloud.releaseKeys[0]: expected a PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----); found an ec key');
    expect(text).toContain('cloud.releaseKeyThreshold');
    expect(text).toContain('at most the number of release keys (1)');
  });
});

describe('eyewear-gateway update status', () => {
  it('says there was no switch-over, then shows what state.json and history.jsonl hold, in text and JSON', async () => {
    const cfg = join(dir, 'status.yaml');
    const dataDir = join(dir, 'status-data');
    writeFileSync(cfg, `gateway:\n  id: gw-upd\n  dataDir: ${dataDir}\nupdates:\n  manifestUrl: https://releases.example/manifest.json\n`);
    const empty = await run(['update', 'status', '--config', cfg]);
    expect([empty.code, empty.out.split('\n')]).toEqual([
      0,
      [
        `installed: ${gatewayVersion()}`,
        'manifest: https://releases.example/manifest.json, checked every 360 min',
        'release keys: 0 (none: no update can be accepted), 1 needed',
        'last switch-over: none',
        'history: empty',
        '',
      ],
    ]);
    writeUpdateState(dataDir, {
      phase: 'rolled-back',
      outcome: 'rolled-back',
      from: '1.0.0',
      to: '1.1.0',
      executable: '/opt/eyewear-gateway/eyewear-gateway',
      previous: '/opt/eyewear-gateway/eyewear-gateway.previous',
      at: '2026-12-03T10:00:00.000Z',
      reason: 'it did not pass its health gate within 120 s: not ready: outbox writer restarting',
    });
    appendHistory(dataDir, { at: '2026-12-03T10:00:00.000Z', event: 'rolled-back', from: '1.0.0', to: '1.1.0', reason: 'not ready' });
    appendHistory(dataDir, {
      at: '2026-12-03T10:05:00.000Z',
      event: 'refused',
      from: '1.0.0',
      code: 'GW_UPDATE_REFUSED',
      reason: 'unsigned',
    });
    const shown = await run(['update', 'status', '--config', cfg]);
    expect(shown.out.split('\n').slice(3)).toEqual([
      'last switch-over: 1.0.0 -> 1.1.0, rolled-back at 2026-12-03T10:00:00.000Z (it did not pass its health gate within 120 s: not ready: outbox writer restarting)',
      'history (last 10):',
      '  2026-12-03T10:00:00.000Z rolled-back 1.0.0 -> 1.1.0: not ready',
      '  2026-12-03T10:05:00.000Z refused GW_UPDATE_REFUSED: unsigned',
      '',
    ]);
    const j = JSON.parse((await run(['update', 'status', '--json', '--config', cfg])).out) as {
      state: { outcome: string };
      history: unknown[];
    };
    expect([j.state.outcome, j.history.length]).toEqual(['rolled-back', 2]);
  });
});
