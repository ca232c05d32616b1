/**
 * The seal step's one home: every key the gateway derives from its seal key, made once from the key
 * custody hands over, and handed to the parts as one object.
 *
 * - `sealer` (AES-256-GCM, record-sealer.ts): seals and opens records, dead letters and commands.
 *   Who calls it: the outbox's writer (every row, before it is written — ARCHITECTURE rule 4), the
 *   pipeline (an input kept as a dead letter), the relay (the refused part of a bundle), the
 *   command processor (a command taken), `unseal`.
 * - `partitionKeyer` (HMAC, partition-keyer.ts): what the outbox stores instead of a partition key.
 * - `key`: the raw key, for the outbox alone — it checks it against the file's key check value and
 *   hands it to its writer thread (a KeyObject does not cross threads), which derives the same
 *   sealer and its lookup keys (outbox/stored-keys.ts) there.
 */
import type { SealKeyCustody } from './key-custody.ts';
import { createPartitionKeyer, type PartitionKeyer } from './partition-keyer.ts';
import { createRecordSealer, type RecordSealer } from './record-sealer.ts';

export interface Keyring {
  readonly sealer: RecordSealer;
  readonly partitionKeyer: PartitionKeyer;
  /** For the outbox (its key check and writer thread) only. */
  readonly key: Buffer;
  /** The key was made on this start (nothing sealed under another can be here). */
  readonly created: boolean;
}

export function createKeyring(custody: SealKeyCustody): Keyring {
  return {
    sealer: createRecordSealer(custody.key),
    partitionKeyer: createPartitionKeyer(custody.key),
    key: custody.key,
    created: custody.created,
  };
}
