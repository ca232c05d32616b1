/**
 * The signed update manifest (issue 16 point 6): one TUF-style "targets" role, kept small.
 *
 *   { "signed": { "_type": "eyewear-gateway-release", "version": "0.2.0", "expires": "2026-12-09T00:00:00Z",
 *                 "minVersion": "0.1.0", "targets": { "linux-x64": { "url", "sha256", "size" }, "win32-x64": {…} },
 *                 "cohort": { "percent": 10 } | { "gateways": ["gw-a", …] } },
 *     "signatures": [ { "keyid": "<sha256 of the key's SPKI DER, hex>", "sig": "<Ed25519 over canonical JSON of signed, base64>" } ] }
 *
 * Signatures are over the canonical JSON of `signed` (keys sorted, no whitespace), so the bytes the
 * cloud signed and the bytes checked here are the same whatever a proxy or an editor did to spacing.
 * The release keys are pinned in the gateway; `threshold` distinct pinned keys must have signed
 * (a signature by an unknown key, or a second one by the same key, counts for nothing).
 *
 * Refused, each with GW_UPDATE_REFUSED and the reason: no or too few valid signatures, an expired
 * manifest (freeze attack: an old manifest replayed to keep a gateway on a vulnerable version), a
 * version not above the installed one (rollback attack), an installed version below `minVersion`,
 * no target for this platform, a malformed target, and — once downloaded — a file whose size or
 * SHA-256 differs (checked streaming: the executable is never read whole).
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { GatewayError } from '../gateway/errors.ts';

export const MANIFEST_TYPE = 'eyewear-gateway-release';

export interface UpdateTarget {
  url: string;
  sha256: string;
  size: number;
}

export interface ManifestSigned {
  _type: typeof MANIFEST_TYPE;
  version: string;
  expires: string;
  minVersion?: string;
  targets: Record<string, UpdateTarget>;
  cohort?: { percent?: number; gateways?: string[] };
}

export interface SignedManifest {
  signed: ManifestSigned;
  signatures: { keyid: string; sig: string }[];
}

export interface ReleaseKeys {
  /** Pinned Ed25519 public keys (PEM). */
  publicKeysPem: readonly string[];
  /** How many distinct pinned keys must have signed (default 1). */
  threshold?: number;
}

export interface VerifyContext {
  installedVersion: string;
  /** `${process.platform}-${process.arch}`, e.g. `linux-x64`, `win32-x64`. */
  platform: string;
  now: number;
}

export interface VerifiedUpdate {
  version: string;
  target: UpdateTarget;
  expires: string;
  cohort?: ManifestSigned['cohort'];
  /** The pinned keys that signed, by keyid. */
  signedBy: string[];
}

const refuse = (why: string): GatewayError => new GatewayError('GW_UPDATE_REFUSED', why);

/** JSON with object keys sorted and no whitespace: the bytes a manifest's signatures cover. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw refuse('manifest holds a number JSON cannot carry');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/** A key's id: SHA-256 of its SPKI DER, hex (what a signature names). */
export function keyIdOf(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

function pinnedKeys(keys: ReleaseKeys): Map<string, KeyObject> {
  const m = new Map<string, KeyObject>();
  for (const pem of keys.publicKeysPem) {
    const k = createPublicKey(pem);
    if (k.asymmetricKeyType !== 'ed25519') throw new GatewayError('GW_CONFIG_INVALID', 'a pinned release key is not an Ed25519 public key');
    m.set(keyIdOf(k), k);
  }
  const threshold = keys.threshold ?? 1;
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > m.size)
    throw new GatewayError('GW_CONFIG_INVALID', `release key threshold ${threshold} cannot be met by ${m.size} distinct pinned key(s)`);
  return m;
}

const SEMVER = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/;

/** Compares two `x.y.z` versions; anything else is refused (a pre-release tag would make "newer" ambiguous). */
export function compareVersions(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (!pa || !pb) throw refuse(`version ${JSON.stringify(pa ? b : a)} is not of the form x.y.z`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Parses and verifies a manifest for this gateway; throws GW_UPDATE_REFUSED naming the first reason. */
export function verifyManifest(text: string, keys: ReleaseKeys, ctx: VerifyContext): VerifiedUpdate {
  const pinned = pinnedKeys(keys);
  const threshold = keys.threshold ?? 1;
  let m: SignedManifest;
  try {
    m = JSON.parse(text) as SignedManifest;
  } catch {
    throw refuse('manifest is not JSON');
  }
  if (m === null || typeof m !== 'object' || m.signed === null || typeof m.signed !== 'object') throw refuse('manifest has no signed part');
  if (!Array.isArray(m.signatures) || m.signatures.length === 0) throw refuse('manifest is unsigned');
  const bytes = Buffer.from(canonicalJson(m.signed), 'utf8');
  const signedBy = new Set<string>();
  for (const s of m.signatures) {
    if (s === null || typeof s !== 'object' || typeof s.keyid !== 'string' || typeof s.sig !== 'string') continue;
    const key = pinned.get(s.keyid);
    if (!key || signedBy.has(s.keyid)) continue;
    if (verify(null, bytes, key, Buffer.from(s.sig, 'base64'))) signedBy.add(s.keyid);
  }
  if (signedBy.size < threshold)
    throw refuse(
      `manifest carries ${signedBy.size} valid signature(s) by pinned release keys; ${threshold} needed (unsigned, wrongly signed or signed by unknown keys)`,
    );
  const s = m.signed;
  if (s._type !== MANIFEST_TYPE) throw refuse(`manifest is of type ${JSON.stringify(s._type)}, not ${MANIFEST_TYPE}`);
  const expires = Date.parse(s.expires);
  if (typeof s.expires !== 'string' || Number.isNaN(expires)) throw refuse('manifest has no valid expiry');
  if (expires <= ctx.now) throw refuse(`manifest expired at ${s.expires} (an old manifest replayed: freeze attack)`);
  if (typeof s.version !== 'string') throw refuse('manifest has no version');
  if (compareVersions(s.version, ctx.installedVersion) <= 0)
    throw refuse(`manifest offers ${s.version}, not newer than the installed ${ctx.installedVersion} (rollback attack)`);
  if (s.minVersion !== undefined && compareVersions(ctx.installedVersion, s.minVersion) < 0)
    throw refuse(
      `installed ${ctx.installedVersion} is below the manifest's minimum ${s.minVersion}: install an intermediate release first`,
    );
  const t = s.targets?.[ctx.platform];
  if (!t) throw refuse(`manifest has no target for ${ctx.platform} (targets: ${Object.keys(s.targets ?? {}).join(', ') || 'none'})`);
  if (typeof t.url !== 'string' || !/^https?:\/\//.test(t.url)) throw refuse(`target for ${ctx.platform} has no http(s) url`);
  if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256))
    throw refuse(`target for ${ctx.platform} has no SHA-256 (64 hex digits)`);
  if (!Number.isSafeInteger(t.size) || t.size <= 0) throw refuse(`target for ${ctx.platform} has no size`);
  return {
    version: s.version,
    target: { url: t.url, sha256: t.sha256, size: t.size },
    expires: s.expires,
    cohort: s.cohort,
    signedBy: [...signedBy],
  };
}

/** Whether this gateway is in the manifest's cohort: listed by id, or in the first `percent` of a hash bucket (stable per gateway and version). */
export function inCohort(gatewayId: string, version: string, cohort: ManifestSigned['cohort']): boolean {
  if (!cohort) return true;
  if (Array.isArray(cohort.gateways)) return cohort.gateways.includes(gatewayId);
  if (typeof cohort.percent === 'number') {
    const bucket = createHash('sha256').update(`${version}|${gatewayId}`).digest().readUInt32BE(0) % 100;
    return bucket < cohort.percent;
  }
  return true;
}

/** Checks a downloaded file against its target, reading it as a stream; throws GW_UPDATE_REFUSED on a size or hash mismatch. */
export async function verifyTargetFile(path: string, target: UpdateTarget): Promise<void> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    size += (chunk as Buffer).length;
    if (size > target.size) throw refuse(`downloaded file is larger than the manifest's ${target.size} bytes`);
    h.update(chunk as Buffer);
  }
  if (size !== target.size) throw refuse(`downloaded file is ${size} bytes, the manifest says ${target.size}`);
  const got = h.digest('hex');
  if (got !== target.sha256) throw refuse(`downloaded file's SHA-256 ${got} differs from the manifest's ${target.sha256}`);
}
