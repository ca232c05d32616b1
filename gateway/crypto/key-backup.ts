/**
 * Seal key backups: the key wrapped under a passphrase as a JWE (RFC 7516) made by jose —
 * PBES2-HS512+A256KW (RFC 7518 §4.8: PBKDF2-HMAC-SHA512 derives the wrapping key) with A256GCM
 * for the content — rather than a format of our own. The iteration count is far above jose's
 * default and above OWASP's 210,000 for PBKDF2-HMAC-SHA512, so a stolen backup costs a guesser
 * dearly; the content carries the key's check value, so an import can prove the key opens an
 * outbox before anything is written.
 */
import { GatewayError } from '../errors.ts';
import { keyCheckValue } from './key-check.ts';
import { SEAL_KEY_BYTES } from './key-file.ts';

export const BACKUP_PBKDF2_ITERATIONS = 600_000;
export const MIN_PASSPHRASE_CHARS = 12;
const CONTENT_TYPE = 'ewml-seal-key+json';

interface BackupContent {
  v: 1;
  key: string;
  kcv: string;
}

/** The backup's text (a JWE compact serialisation). */
export async function wrapSealKey(key: Uint8Array, passphrase: string): Promise<string> {
  if (passphrase.length < MIN_PASSPHRASE_CHARS)
    throw new GatewayError('GW_USAGE', `the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters`);
  const content: BackupContent = { v: 1, key: Buffer.from(key).toString('base64url'), kcv: keyCheckValue(key) };
  // jose is imported by `keys export|import` alone, never by a running gateway
  const { CompactEncrypt } = await import('jose');
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(content)))
    .setProtectedHeader({ alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', cty: CONTENT_TYPE })
    .setKeyManagementParameters({ p2c: BACKUP_PBKDF2_ITERATIONS })
    .encrypt(new TextEncoder().encode(passphrase));
}

/** The key in a backup; GW_KEY_IMPORT when the passphrase is wrong or the file is not such a backup. */
export async function unwrapSealKey(backup: string, passphrase: string): Promise<Buffer> {
  let plaintext: Uint8Array;
  let cty: string | undefined;
  try {
    const { compactDecrypt } = await import('jose');
    const r = await compactDecrypt(backup.trim(), new TextEncoder().encode(passphrase), {
      keyManagementAlgorithms: ['PBES2-HS512+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
      maxPBES2Count: BACKUP_PBKDF2_ITERATIONS,
    });
    plaintext = r.plaintext;
    cty = r.protectedHeader.cty;
  } catch (e) {
    throw new GatewayError(
      'GW_KEY_IMPORT',
      'the backup could not be opened: wrong passphrase, or not a seal key backup made by `keys export` (damaged or foreign file)',
      { cause: e },
    );
  }
  let c: BackupContent;
  try {
    c = JSON.parse(new TextDecoder().decode(plaintext)) as BackupContent;
  } catch (e) {
    throw new GatewayError('GW_KEY_IMPORT', 'the backup opened but holds no seal key', { cause: e });
  }
  const key = typeof c.key === 'string' ? Buffer.from(c.key, 'base64url') : Buffer.alloc(0);
  if (cty !== CONTENT_TYPE || c.v !== 1 || key.length !== SEAL_KEY_BYTES || c.kcv !== keyCheckValue(key))
    throw new GatewayError('GW_KEY_IMPORT', 'the backup opened but holds no valid seal key');
  return key;
}
