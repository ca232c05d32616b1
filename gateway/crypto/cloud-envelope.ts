/**
 * Payloads to the cloud are JWE (RFC 7516) compact serialisations encrypted to the cloud's public
 * key, so neither the broker nor a proxy can read PHI. EC keys use ECDH-ES+A256KW, RSA keys
 * RSA-OAEP-256; content is A256GCM. One JWE per batch: one key agreement per batch, not per record.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';

export interface CloudEnvelope {
  encrypt(plaintext: Uint8Array, header?: Record<string, string>): Promise<string>;
}

export function algFor(key: KeyObject): 'ECDH-ES+A256KW' | 'RSA-OAEP-256' {
  const t = key.asymmetricKeyType;
  if (t === 'ec' || t === 'x25519') return 'ECDH-ES+A256KW';
  if (t === 'rsa') return 'RSA-OAEP-256';
  throw new Error(`unsupported cloud key type ${String(t)}: use EC P-256 or RSA`);
}

export function createCloudEnvelope(publicKeyPem: string): CloudEnvelope {
  const key = createPublicKey(publicKeyPem);
  const alg = algFor(key);
  return {
    encrypt(plaintext, header = {}) {
      return new CompactEncrypt(plaintext).setProtectedHeader({ ...header, alg, enc: 'A256GCM', cty: 'application/json' }).encrypt(key);
    },
  };
}

/** The cloud side (reference receiver, tests): decrypt with the private key. */
export async function openCloudEnvelope(jwe: string, privateKey: KeyObject): Promise<{ plaintext: Uint8Array; header: Record<string, unknown> }> {
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey);
  return { plaintext, header: protectedHeader as Record<string, unknown> };
}
