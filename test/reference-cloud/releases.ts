/** The reference cloud's release signing: what the cloud team's release tooling does to publish a manifest (updater/manifest.ts checks it). */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { canonicalJson, keyIdOf, type ManifestSigned, type SignedManifest } from '../../updater/manifest.ts';

export interface ReleaseKey {
  privateKey: KeyObject;
  publicPem: string;
  keyid: string;
}

export function makeReleaseKey(): ReleaseKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), keyid: keyIdOf(publicKey) };
}

/** Signs the canonical JSON of `signed` with each key. */
export function signManifest(signed: ManifestSigned, keys: readonly ReleaseKey[]): SignedManifest {
  const bytes = Buffer.from(canonicalJson(signed), 'utf8');
  return { signed, signatures: keys.map((k) => ({ keyid: k.keyid, sig: sign(null, bytes, k.privateKey).toString('base64') })) };
}
