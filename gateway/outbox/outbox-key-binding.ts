/**
 * Binds an outbox file to its seal key: the key's check value (crypto/key-check.ts) is stored in
 * the outbox on first use and compared at every open. A different key beside an outbox that holds
 * sealed rows is GW_KEY_MISSING — a hard, explained stop — because going on would accept new
 * records under the new key while every queued one became unreadable. An outbox with no sealed
 * rows simply takes the current key (nothing could be lost).
 */
import type { DatabaseSync } from 'node:sqlite';
import { createRecordSealer } from '../crypto/record-sealer.ts';
import { keyCheckMatches, keyCheckValue } from '../crypto/key-check.ts';
import { GatewayError } from '../errors.ts';
import { sampleSealedRow, sealedRowCount, storedKeyCheck } from './outbox-integrity.ts';

export type KeyBinding = 'matched' | 'stored' | 'rebound';

/** The GW_KEY_MISSING text for a key that is not the one an outbox was written with. */
export function otherKeyError(o: { file: string; keyFile: string; rows: number }): GatewayError {
  return new GatewayError(
    'GW_KEY_MISSING',
    `the seal key ${o.keyFile} is not the key the outbox ${o.file} was written with (its key check value differs), and that outbox holds ${o.rows} sealed row(s). Nothing was accepted or sent. Restore the original key: eyewear-gateway keys import BACKUP --replace (the import checks the backup opens this outbox)`,
    { details: { file: o.file, keyFile: o.keyFile, rows: o.rows } },
  );
}

/** Compares (or stores) the key's check value in an open, migrated outbox; throws GW_KEY_MISSING on another key. */
export function bindSealKey(d: DatabaseSync, key: Uint8Array, o: { file: string; keyFile: string; now: number }): KeyBinding {
  const mine = keyCheckValue(key);
  const stored = storedKeyCheck(d);
  if (stored !== undefined && keyCheckMatches(stored, mine)) return 'matched';
  const rows = sealedRowCount(d);
  if (rows > 0) {
    if (stored !== undefined) throw otherKeyError({ file: o.file, keyFile: o.keyFile, rows });
    // an outbox from before migration 6: the key is right if it opens a row
    const sample = sampleSealedRow(d);
    if (sample && !opens(key, sample)) throw otherKeyError({ file: o.file, keyFile: o.keyFile, rows });
  }
  d.prepare('INSERT OR REPLACE INTO seal_key_check (id, kcv, set_at) VALUES (1, ?, ?)').run(mine, o.now);
  return stored === undefined ? 'stored' : 'rebound';
}

/** Whether `key` opens the sealed blob (AES-GCM authenticates: a wrong key never opens). */
export function opens(key: Uint8Array, s: { aad: string; sealed: Uint8Array }): boolean {
  try {
    createRecordSealer(key).open(s.aad, s.sealed);
    return true;
  } catch {
    return false;
  }
}
