/**
 * Partition keys as keyed hashes (ARCHITECTURE rule 4: no identifier taken from a source is stored
 * in plaintext). A record's partition key names its patient (`patient:CLINIC|MRN`) so that one
 * patient's records are delivered in order; the outbox only needs keys that are equal for equal
 * patients, so it stores an HMAC-SHA256 of the key instead of the key. The HMAC key is derived
 * from the seal key (HKDF, its own label), so a key backup covers it and nothing new must be kept.
 *
 * Keys already hashed (`h:` prefix — a dead letter replayed, a row moved) are left as they are, so
 * a record keeps its partition however often it passes through.
 */
import { createHmac, createSecretKey, hkdfSync } from 'node:crypto';

export type PartitionKeyer = (key: string) => string;

const PREFIX = 'h:';

export function createPartitionKeyer(sealKey: Uint8Array): PartitionKeyer {
  // a KeyObject made once, as the sealer does: raw bytes would be imported again on every record
  const k = createSecretKey(Buffer.from(hkdfSync('sha256', sealKey, Buffer.alloc(0), 'ewml/partition-key/v1', 32)));
  return (key) => (key.startsWith(PREFIX) ? key : `${PREFIX}${createHmac('sha256', k).update(key).digest('base64url')}`);
}

/** For tests and tools that keep keys as they are. */
export const plainPartitionKeys: PartitionKeyer = (key) => key;
