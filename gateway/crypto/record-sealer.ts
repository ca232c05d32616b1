/**
 * Sealing at rest (rule 4): every record is encrypted with AES-256-GCM before it touches the disk.
 * The 32-byte key lives in its own file (mode 0600) beside, never inside, the database, and is
 * never logged. The record id is bound as additional authenticated data, so a sealed blob cannot
 * be swapped under another id unnoticed.
 *
 * Layout: version (1 byte, 0x01) | IV (12) | tag (16) | ciphertext.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GatewayError } from '../errors.ts';

const VERSION = 0x01;

export interface RecordSealer {
  /** A string is sealed as its UTF-8 bytes. */
  seal(aad: string, plaintext: Uint8Array | string): Buffer;
  open(aad: string, sealed: Uint8Array): Buffer;
}

/** IVs drawn from a pooled random buffer: one getrandom call per 1,024 seals instead of one each. */
function createIvSource(): () => Buffer {
  let pool = Buffer.alloc(0);
  let off = 0;
  return () => {
    if (off + 12 > pool.length) {
      pool = randomBytes(12 * 1024);
      off = 0;
    }
    const iv = pool.subarray(off, off + 12);
    off += 12;
    return iv;
  };
}

export function createRecordSealer(key: Uint8Array): RecordSealer {
  if (key.byteLength !== 32) throw new GatewayError('GW_STORE_CORRUPT', 'seal key must be 32 bytes');
  // a KeyObject made once: passing raw bytes makes Node re-import the key on every call (measured: BENCHMARKS.md, "Measured design choices")
  const k = createSecretKey(key);
  const nextIv = createIvSource();
  return {
    seal(aad, plaintext) {
      const iv = nextIv();
      const c = createCipheriv('aes-256-gcm', k, iv);
      c.setAAD(Buffer.from(aad));
      const body = typeof plaintext === 'string' ? c.update(plaintext, 'utf8') : c.update(plaintext);
      c.final(); // GCM is a stream mode: final() yields no bytes, only the tag
      // one allocation for the whole blob (no intermediate concatenations)
      const out = Buffer.allocUnsafe(29 + body.length);
      out[0] = VERSION;
      iv.copy(out, 1);
      c.getAuthTag().copy(out, 13);
      body.copy(out, 29);
      return out;
    },
    open(aad, sealed) {
      const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
      if (b.length < 29 || b[0] !== VERSION) throw new GatewayError('GW_STORE_CORRUPT', 'sealed blob has an unknown layout');
      try {
        const d = createDecipheriv('aes-256-gcm', k, b.subarray(1, 13));
        d.setAAD(Buffer.from(aad));
        d.setAuthTag(b.subarray(13, 29));
        return Buffer.concat([d.update(b.subarray(29)), d.final()]);
      } catch (e) {
        throw new GatewayError('GW_STORE_CORRUPT', 'sealed blob failed authentication (wrong key or damaged data)', { cause: e });
      }
    },
  };
}

/** Reads the key file, creating it (0600, in a 0700 folder) on first run. */
export function loadOrCreateKey(file: string): Buffer {
  if (existsSync(file)) {
    const k = readFileSync(file);
    if (k.length !== 32) throw new GatewayError('GW_STORE_CORRUPT', `key file ${file} is not 32 bytes`);
    chmodSync(file, 0o600);
    return k;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const k = randomBytes(32);
  writeFileSync(file, k, { mode: 0o600, flag: 'wx' });
  return k;
}
