/**
 * Payloads to the cloud are JWE (RFC 7516) compact serialisations encrypted to the cloud's public
 * key, so neither the broker nor a proxy can read PHI. EC keys use ECDH-ES+A256KW, RSA keys
 * RSA-OAEP-256; content is A256GCM (RFC 7518). One JWE per batch: one key agreement per batch.
 *
 * Encryption is written on node:crypto directly (jose's JavaScript base64 cost ~5% of relay CPU on
 * 150 KB batches); decryption — the cloud's side, and our tests' — uses jose, so every test that
 * opens a batch checks this implementation against an independent one.
 */
import { createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { compactDecrypt } from 'jose';

export interface CloudEnvelope {
  encrypt(plaintext: Uint8Array, header?: Record<string, string>): Promise<string>;
}

export function algFor(key: KeyObject): 'ECDH-ES+A256KW' | 'RSA-OAEP-256' {
  const t = key.asymmetricKeyType;
  if (t === 'ec') return 'ECDH-ES+A256KW';
  if (t === 'rsa') return 'RSA-OAEP-256';
  throw new Error(`unsupported cloud key type ${String(t)}: use EC (P-256, P-384, P-521) or RSA`);
}

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };

/** Concat KDF (NIST SP 800-56A, as RFC 7518 §4.6.2 uses it) for a 256-bit key wrapping key; apu/apv empty. */
function concatKdf(z: Buffer, alg: string): Buffer {
  const algId = Buffer.from(alg, 'ascii');
  const otherInfo = Buffer.concat([u32(algId.length), algId, u32(0), u32(0), u32(256)]);
  return createHash('sha256').update(u32(1)).update(z).update(otherInfo).digest();
}

/** The EC curve name Node uses for a key, from its JWK `crv`. */
const NODE_CURVE: Record<string, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

export function createCloudEnvelope(publicKeyPem: string): CloudEnvelope {
  const key = createPublicKey(publicKeyPem);
  const alg = algFor(key);
  const crv = alg === 'ECDH-ES+A256KW' ? String(key.export({ format: 'jwk' }).crv) : '';
  if (alg === 'ECDH-ES+A256KW' && !NODE_CURVE[crv]) throw new Error(`unsupported EC curve ${crv}`);
  return {
    async encrypt(plaintext, header = {}) {
      const cek = randomBytes(32);
      const protectedHeader: Record<string, unknown> = { ...header, alg, enc: 'A256GCM', cty: 'application/json' };
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

/** The cloud side (reference receiver, tests): decrypt with the private key (jose). */
export async function openCloudEnvelope(jwe: string, privateKey: KeyObject): Promise<{ plaintext: Uint8Array; header: Record<string, unknown> }> {
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey);
  return { plaintext, header: protectedHeader as Record<string, unknown> };
}
