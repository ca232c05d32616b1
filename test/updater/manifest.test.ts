import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../gateway/errors.ts';
import {
  canonicalJson,
  compareVersions,
  inCohort,
  MANIFEST_TYPE,
  type ManifestSigned,
  verifyManifest,
  verifyTargetFile,
} from '../../updater/manifest.ts';
import { makeReleaseKey, signManifest } from '../reference-cloud/releases.ts';

const NOW = Date.parse('2026-12-02T12:00:00Z');
const ctx = { installedVersion: '0.1.0', platform: 'linux-x64', now: NOW };
const body = Buffer.from('new executable bytes');
const sha = createHash('sha256').update(body).digest('hex');
const base = (): ManifestSigned => ({
  _type: MANIFEST_TYPE,
  version: '0.2.0',
  expires: '2026-12-09T00:00:00Z',
  minVersion: '0.1.0',
  targets: {
    'linux-x64': { url: 'https://updates.example.test/0.2.0/eyewear-gateway', sha256: sha, size: body.length },
    'win32-x64': { url: 'https://updates.example.test/0.2.0/eyewear-gateway.exe', sha256: 'a'.repeat(64), size: 10 },
  },
});
const k1 = makeReleaseKey();
const k2 = makeReleaseKey();
const stranger = makeReleaseKey();

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isGatewayError(e, 'GW_UPDATE_REFUSED')) return e.message;
    throw e;
  }
  throw new Error('not refused');
}

describe('update manifest (signed, TUF-style targets role)', () => {
  it('accepts a manifest signed by the pinned key and returns this platform’s target', () => {
    const text = JSON.stringify(signManifest(base(), [k1]));
    const v = verifyManifest(text, { publicKeysPem: [k1.publicPem] }, ctx);
    expect(v.version).toBe('0.2.0');
    expect(v.target).toEqual({ url: 'https://updates.example.test/0.2.0/eyewear-gateway', sha256: sha, size: body.length });
    expect(v.signedBy).toEqual([k1.keyid]);
  });

  it('verifies the canonical bytes: re-spacing and re-ordering the JSON keeps it valid', () => {
    const m = signManifest(base(), [k1]);
    const reordered = { signatures: m.signatures, signed: Object.fromEntries(Object.entries(m.signed).reverse()) };
    expect(verifyManifest(JSON.stringify(reordered, null, 4), { publicKeysPem: [k1.publicPem] }, ctx).version).toBe('0.2.0');
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1, y: undefined } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"z":1}}');
  });

  it('refuses unsigned, wrongly signed, tampered and unknown-key manifests', () => {
    const keys = { publicKeysPem: [k1.publicPem] };
    expect(refusal(() => verifyManifest(JSON.stringify({ signed: base(), signatures: [] }), keys, ctx))).toBe('manifest is unsigned');
    const bad = signManifest(base(), [k1]);
    bad.signatures[0].sig = Buffer.alloc(64, 7).toString('base64');
    expect(refusal(() => verifyManifest(JSON.stringify(bad), keys, ctx))).toMatch(/^manifest carries 0 valid signature\(s\)/);
    const tampered = signManifest(base(), [k1]);
    tampered.signed.targets['linux-x64'].url = 'https://evil.example.test/x';
    expect(refusal(() => verifyManifest(JSON.stringify(tampered), keys, ctx))).toMatch(/^manifest carries 0 valid/);
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(base(), [stranger])), keys, ctx))).toMatch(/^manifest carries 0 valid/);
    expect(refusal(() => verifyManifest('{not json', keys, ctx))).toBe('manifest is not JSON');
  });

  it('needs the threshold of distinct pinned keys: one key signing twice counts once', () => {
    const keys = { publicKeysPem: [k1.publicPem, k2.publicPem], threshold: 2 };
    expect(verifyManifest(JSON.stringify(signManifest(base(), [k1, k2])), keys, ctx).signedBy.sort()).toEqual([k1.keyid, k2.keyid].sort());
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(base(), [k1, k1])), keys, ctx))).toMatch(
      /^manifest carries 1 valid .*2 needed/,
    );
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(base(), [k1, stranger])), keys, ctx))).toMatch(
      /^manifest carries 1 valid/,
    );
    expect(() => verifyManifest('{}', { publicKeysPem: [k1.publicPem], threshold: 2 }, ctx)).toThrow(/threshold 2 cannot be met by 1/);
  });

  it('refuses an expired manifest (freeze attack) and an older or equal version (rollback attack)', () => {
    const keys = { publicKeysPem: [k1.publicPem] };
    const expired = { ...base(), expires: '2026-12-01T00:00:00Z' };
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(expired, [k1])), keys, ctx))).toBe(
      'manifest expired at 2026-12-01T00:00:00Z (an old manifest replayed: freeze attack)',
    );
    const older = { ...base(), version: '0.0.9' };
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(older, [k1])), keys, ctx))).toBe(
      'manifest offers 0.0.9, not newer than the installed 0.1.0 (rollback attack)',
    );
    const same = { ...base(), version: '0.1.0' };
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(same, [k1])), keys, ctx))).toMatch(
      /not newer than the installed 0\.1\.0/,
    );
    const tooOld = { ...base(), minVersion: '0.1.5' };
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(tooOld, [k1])), keys, ctx))).toMatch(
      /below the manifest's minimum 0\.1\.5/,
    );
  });

  it('refuses a manifest without a target for this platform, and a malformed target', () => {
    const keys = { publicKeysPem: [k1.publicPem] };
    const text = JSON.stringify(signManifest(base(), [k1]));
    expect(refusal(() => verifyManifest(text, keys, { ...ctx, platform: 'darwin-arm64' }))).toBe(
      'manifest has no target for darwin-arm64 (targets: linux-x64, win32-x64)',
    );
    const noHash = base();
    noHash.targets['linux-x64'].sha256 = 'xyz';
    expect(refusal(() => verifyManifest(JSON.stringify(signManifest(noHash, [k1])), keys, ctx))).toMatch(/has no SHA-256/);
  });

  it('checks the downloaded file’s size and SHA-256 streaming', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-upd-'));
    const good = join(dir, 'good');
    writeFileSync(good, body);
    await verifyTargetFile(good, { url: 'https://x.test/a', sha256: sha, size: body.length });
    const longer = join(dir, 'longer');
    writeFileSync(longer, Buffer.concat([body, Buffer.from('!')]));
    await expect(verifyTargetFile(longer, { url: 'https://x.test/a', sha256: sha, size: body.length })).rejects.toThrow(
      /larger than the manifest's 20 bytes/,
    );
    const flipped = join(dir, 'flipped');
    const f = Buffer.from(body);
    f[0] ^= 1;
    writeFileSync(flipped, f);
    await expect(verifyTargetFile(flipped, { url: 'https://x.test/a', sha256: sha, size: body.length })).rejects.toThrow(
      /SHA-256 .* differs/,
    );
    await expect(verifyTargetFile(good, { url: 'https://x.test/a', sha256: sha, size: body.length + 5 })).rejects.toThrow(
      'downloaded file is 20 bytes, the manifest says 25',
    );
  });

  it('orders versions numerically and places gateways in a cohort', () => {
    expect(compareVersions('0.10.0', '0.9.9')).toBe(1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(() => compareVersions('1.0.0-beta', '1.0.0')).toThrow(/not of the form x\.y\.z/);
    expect(inCohort('gw-a', '0.2.0', { gateways: ['gw-a'] })).toBe(true);
    expect(inCohort('gw-b', '0.2.0', { gateways: ['gw-a'] })).toBe(false);
    expect(inCohort('gw-b', '0.2.0', undefined)).toBe(true);
    const ids = Array.from({ length: 1000 }, (_, i) => `gw-${i}`);
    const inTen = ids.filter((id) => inCohort(id, '0.2.0', { percent: 10 })).length;
    expect(inTen).toBeGreaterThan(60);
    expect(inTen).toBeLessThan(140);
    expect(ids.filter((id) => inCohort(id, '0.2.0', { percent: 0 })).length).toBe(0);
    expect(ids.filter((id) => inCohort(id, '0.2.0', { percent: 100 })).length).toBe(1000);
  });
});
