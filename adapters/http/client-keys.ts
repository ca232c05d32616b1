/**
 * The key pair a remote API source signs its SMART client assertions with (SMART App Launch 2.2,
 * Backend Services: RS384 or ES384). Made on the gateway the first time a source needs it, so the
 * private key never leaves the practice: the private JWK is kept sealed in the data folder (through
 * the gateway's SecretStore), and the public JWKS beside it in plain text, for registration with the
 * vendor (`eyewear-gateway fhir jwks`) or to be served at a URL for vendors that fetch it.
 *
 * Two processes making a key at once (the gateway and `fhir jwks`) cannot end with two keys: the
 * sealed file is created exclusively, and the loser reads the winner's.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { SecretStore } from '../contracts.ts';

export type { SecretStore } from '../contracts.ts';

export const ClientKeyAlg = { RS384: 'RS384', ES384: 'ES384' } as const;
export type ClientKeyAlg = (typeof ClientKeyAlg)[keyof typeof ClientKeyAlg];

export interface ClientKey {
  alg: ClientKeyAlg;
  kid: string;
  privateKey: CryptoKey;
  /** `{ keys: [public JWK with kid, alg, use: 'sig'] }` */
  jwks: { keys: JWK[] };
}

const secretName = (alg: ClientKeyAlg) => `client-key-${alg.toLowerCase()}.jwk`;
const JWKS_FILE = 'jwks.json';

/**
 * The public members of a key (RFC 7518 §6.2.1 for EC, §6.3.1 for RSA), copied by name: an
 * allow-list, so a member this code does not know (a private one from another tool, `oth`,
 * `key_ops`, a vendor's extension) never reaches the published JWKS. kid/alg/use are added by
 * the caller.
 */
function publicPart(jwk: JWK): JWK {
  const names = jwk.kty === 'RSA' ? (['kty', 'n', 'e'] as const) : jwk.kty === 'EC' ? (['kty', 'crv', 'x', 'y'] as const) : undefined;
  if (!names) throw new Error(`the client key is of type ${String(jwk.kty)}, not RSA or EC`);
  const pub: JWK = {};
  for (const k of names) {
    const v = jwk[k];
    if (typeof v !== 'string' || v === '') throw new Error(`the client key (${jwk.kty}) has no ${k}`);
    pub[k] = v;
  }
  return pub;
}

async function fromPrivateJwk(jwk: JWK, alg: ClientKeyAlg): Promise<ClientKey> {
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart(jwk)));
  const privateKey = (await importJWK({ ...jwk, alg }, alg)) as CryptoKey;
  return { alg, kid, privateKey, jwks: { keys: [{ ...publicPart(jwk), kid, alg, use: 'sig' }] } };
}

/** The source's key of `alg`, made and stored the first time; the public JWKS file is rewritten when missing or stale. */
export async function loadOrCreateClientKey(store: SecretStore, alg: ClientKeyAlg): Promise<ClientKey & { created: boolean }> {
  let created = false;
  let text = store.readSecret(secretName(alg));
  if (!text) {
    const pair = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS384' ? { modulusLength: 3072 } : {}) });
    const jwk = await exportJWK(pair.privateKey);
    jwk.kid = await calculateJwkThumbprint(publicPart(jwk));
    created = store.createSecret(secretName(alg), Buffer.from(JSON.stringify(jwk), 'utf8'));
    text = created ? Buffer.from(JSON.stringify(jwk), 'utf8') : store.readSecret(secretName(alg));
    if (!text) throw new Error('the client key could not be stored');
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(text.toString('utf8')) as JWK;
  } catch (e) {
    throw new Error(`the stored client key (${alg}) is not a JWK`, { cause: e });
  }
  const key = await fromPrivateJwk(jwk, alg);
  const jwksText = `${JSON.stringify(key.jwks, null, 2)}\n`;
  if (store.readPublic(JWKS_FILE) !== jwksText) store.writePublic(JWKS_FILE, jwksText);
  return { ...key, created };
}

/** The public JWKS as last written, without opening any secret (for `fhir jwks` and the JWKS URL). */
export function readPublicJwks(store: Pick<SecretStore, 'readPublic'>): { keys: JWK[] } | undefined {
  const t = store.readPublic(JWKS_FILE);
  return t ? (JSON.parse(t) as { keys: JWK[] }) : undefined;
}
