/**
 * Payloads to the cloud are JWE (RFC 7516) compact serialisations encrypted to the cloud's public
 * key, so neither the broker nor a proxy can read PHI. EC keys use ECDH-ES+A256KW, RSA keys
 * RSA-OAEP-256; content is A256GCM (RFC 7518). One JWE per batch: one key agreement per batch.
 *
 * The protected header holds registered parameters only (IANA "JSON Web Signature and Encryption
 * Header Parameters"), so a standard JOSE library in its strict mode accepts it: `alg`, `enc`,
 * `cty`, `kid` (the RFC 7638 thumbprint of the key encrypted to, for the cloud to pick its private
 * key across a rotation) and, for EC keys, `epk`. The batch id is inside the encrypted payload
 * (`batchId`), not in the header. docs/CLOUD-CONTRACT.md lists every parameter and what the cloud checks.
 *
 * Encryption is written on node:crypto directly (jose's JavaScript base64 was a visible share of
 * the relay's CPU on large batches); decryption — the cloud's side, and our tests' — uses
 * jose, so every test that opens a batch checks this implementation against an independent one.
 */
import {
  createCipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  constants,
  type KeyObject,
} from 'node:crypto';

/** The header parameters the gateway sets on a batch's JWE, every one registered (RFC 7516 §4.1, RFC 7518 §4.6.1.1). */
export const JWE_HEADER_PARAMETERS = ['alg', 'enc', 'cty', 'kid', 'epk'] as const;

export interface CloudEnvelope {
  /** Encrypts one batch (its id is in the payload, `batchId`; the header holds registered parameters only). */
  encrypt(plaintext: Uint8Array): Promise<string>;
  /** The `kid` every JWE carries: the RFC 7638 SHA-256 thumbprint of the cloud's public key. */
  readonly kid: string;
}

export function algFor(key: KeyObject): 'ECDH-ES+A256KW' | 'RSA-OAEP-256' {
  const t = key.asymmetricKeyType;
  if (t === 'ec') return 'ECDH-ES+A256KW';
  if (t === 'rsa') return 'RSA-OAEP-256';
  throw new Error(`unsupported cloud key type ${String(t)}: use EC (P-256, P-384, P-521) or RSA`);
}

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** Concat KDF (NIST SP 800-56A, as RFC 7518 §4.6.2 uses it) for a 256-bit key wrapping key; apu/apv empty. */
function concatKdf(z: Buffer, alg: string): Buffer {
  const algId = Buffer.from(alg, 'ascii');
  const otherInfo = Buffer.concat([u32(algId.length), algId, u32(0), u32(0), u32(256)]);
  return createHash('sha256').update(u32(1)).update(z).update(otherInfo).digest();
}

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: the required members in
 * lexicographic order, no whitespace. The cloud computes the same from its key pair.
 */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** The EC curve name Node uses for a key, from its JWK `crv`. */
const NODE_CURVE: Record<string, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

export function createCloudEnvelope(publicKeyPem: string): CloudEnvelope {
  const key = createPublicKey(publicKeyPem);
  const alg = algFor(key);
  const crv = alg === 'ECDH-ES+A256KW' ? String(key.export({ format: 'jwk' }).crv) : '';
  if (alg === 'ECDH-ES+A256KW' && !NODE_CURVE[crv]) throw new Error(`unsupported EC curve ${crv}`);
  const kid = jwkThumbprint(key);
  return {
    kid,
    async encrypt(plaintext) {
      const cek = randomBytes(32);
      const protectedHeader: Record<string, unknown> = { alg, enc: 'A256GCM', cty: 'application/json', kid };
      let encryptedKey: Buffer;
      if (alg === 'ECDH-ES+A256KW') {
        const eph = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[crv] });
        const jwk = eph.publicKey.export({ format: 'jwk' });
        protectedHeader.epk = { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
        const kek = concatKdf(diffieHellman({ privateKey: eph.privateKey, publicKey: key }), alg);
        const wrap = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
        encryptedKey = Buffer.concat([wrap.update(cek), wrap.final()]);
      } else {
        encryptedKey = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
      }
      const encodedHeader = b64u(JSON.stringify(protectedHeader));
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', cek, iv);
      c.setAAD(Buffer.from(encodedHeader, 'ascii'));
      const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
      return `${encodedHeader}.${b64u(encryptedKey)}.${b64u(iv)}.${b64u(ciphertext)}.${b64u(c.getAuthTag())}`;
    },
  };
}

/**
 * Header parameters registered for JWE (IANA "JSON Web Signature and Encryption Header Parameters":
 * RFC 7515 §4.1, RFC 7516 §4.1, RFC 7518 §4.6.1, §4.7.1, §4.8.1). A strict receiver refuses others,
 * as joserfc does by default.
 */
export const REGISTERED_JWE_HEADER_PARAMETERS: ReadonlySet<string> = new Set([
  'alg',
  'enc',
  'zip',
  'jku',
  'jwk',
  'kid',
  'x5u',
  'x5c',
  'x5t',
  'x5t#S256',
  'typ',
  'cty',
  'crit',
  'epk',
  'apu',
  'apv',
  'iv',
  'tag',
  'p2s',
  'p2c',
]);

/**
 * The cloud side (reference receiver, tests): decrypt with the private key (jose), as strictly as
 * docs/CLOUD-CONTRACT.md asks of the cloud: only registered header parameters, and a `kid` that
 * names this key pair.
 */
export async function openCloudEnvelope(
  jwe: string,
  privateKey: KeyObject,
): Promise<{ plaintext: Uint8Array; header: Record<string, unknown> }> {
  // jose only to open (the reference cloud, tests): the gateway seals with node:crypto and never loads it
  const { compactDecrypt } = await import('jose');
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey, {
    keyManagementAlgorithms: ['ECDH-ES+A256KW', 'RSA-OAEP-256'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  const header = protectedHeader as Record<string, unknown>;
  const unregistered = Object.keys(header).filter((k) => !REGISTERED_JWE_HEADER_PARAMETERS.has(k));
  if (unregistered.length)
    throw new Error(
      `JWE header parameter(s) ${unregistered.join(', ')} are not registered: a strict JOSE library refuses them (docs/CLOUD-CONTRACT.md)`,
    );
  if (header.kid !== undefined && header.kid !== jwkThumbprint(createPublicKey(privateKey)))
    throw new Error('JWE kid names another key than the one it was opened with');
  return { plaintext, header };
}
