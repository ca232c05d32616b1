/**
 * Keys and values the outbox keeps about its sources, as they are stored (ARCHITECTURE rule 4: no
 * identifier taken from a source is stored in plaintext).
 *
 *  - Resend-log keys (`intake_log.key`, e.g. `MSH-3|MSH-4|MSH-10`: a message control id) and
 *    cursor keys (`source_cursors.key`, e.g. a file source's `file:<source>:<sha256>`) are only
 *    ever looked up by equality, never listed, so a keyed hash serves as well as the key: an
 *    HMAC-SHA256 under a key derived from the seal key (HKDF, its own label, as the partition keyer
 *    does), written `h:<base64url>`. A key already hashed is left as it is, so hashing twice is
 *    harmless.
 *  - Cursor values are read back (a file's ledger entry: its name, size, rows committed; a
 *    database stream's position, which can hold a row key), so they are sealed instead (AES-GCM
 *    under the seal key, the stored key as associated data), written `s1:<base64url>`.
 *
 * Without a seal key (unit tests of sealed records only) keys and values are kept as they are.
 * Rows written before this (plaintext) are rewritten once at open (`hashPlainKeys`).
 *
 * Source row keys (`source_rows.pk`) are not covered: delete detection walks them in key order
 * (`listSourceRows`), which a hash would scramble.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { createRecordSealer, type RecordSealer } from '../crypto/record-sealer.ts';

const HASHED = 'h:';
const SEALED = 's1:';
/** The HKDF label of the lookup-key HMAC key: its own, so it is no other key derived from the seal key. */
const LOOKUP_KEY_LABEL = 'ewml/outbox-lookup-key/v1';

export interface StoredKeys {
  /** The stored form of a looked-up key (resend log, cursor): a keyed hash. */
  key(plain: string): string;
  /** A cursor value as stored under `storedKey`. */
  sealValue(storedKey: string, value: string): string;
  /** A stored cursor value as it was given (a value from before sealing is returned as it is). */
  openValue(storedKey: string, stored: string): string;
}

const asIs: StoredKeys = { key: (k) => k, sealValue: (_k, v) => v, openValue: (_k, v) => v };

export function createStoredKeys(sealKey: Uint8Array | undefined): StoredKeys {
  if (!sealKey) return asIs;
  // KeyObjects made once: raw bytes would be imported again on every call
  const hmacKey: KeyObject = createSecretKey(Buffer.from(hkdfSync('sha256', sealKey, Buffer.alloc(0), LOOKUP_KEY_LABEL, 32)));
  const sealer: RecordSealer = createRecordSealer(sealKey);
  return {
    key: (plain) => (plain.startsWith(HASHED) ? plain : `${HASHED}${createHmac('sha256', hmacKey).update(plain).digest('base64url')}`),
    sealValue: (storedKey, value) => `${SEALED}${sealer.seal(`cursor|${storedKey}`, value).toString('base64url')}`,
    openValue: (storedKey, stored) =>
      stored.startsWith(SEALED)
        ? sealer.open(`cursor|${storedKey}`, Buffer.from(stored.slice(SEALED.length), 'base64url')).toString('utf8')
        : stored,
  };
}

/**
 * Rewrites resend-log and cursor rows stored in plaintext (before keys were hashed) into their
 * stored forms, in one transaction, once: migration 7 leaves a marker that this removes. Without a
 * seal key nothing is rewritten and the marker stays (the first start with a key does it).
 * Runs before any writer opens the file. With `secure_delete` on, the old cells are zeroed.
 */
export function hashPlainKeys(db: DatabaseSync, keys: StoredKeys, hasSealKey: boolean): { resendKeys: number; cursors: number } {
  const counts = { resendKeys: 0, cursors: 0 };
  if (!hasSealKey) return counts;
  const marker = db.prepare('SELECT COUNT(*) AS n FROM plain_keys_pending').get() as { n: number | bigint };
  if (Number(marker.n) === 0) return counts;
  db.exec('BEGIN IMMEDIATE');
  try {
    const putLog = db.prepare('INSERT OR IGNORE INTO intake_log (key, hash, seen_at) VALUES (?, ?, ?)');
    const delLog = db.prepare('DELETE FROM intake_log WHERE rowid = ?');
    // in rowid order, so the resend log's pruning (oldest rowids first) meets them in age order
    for (const r of db
      .prepare("SELECT rowid AS id, key, hash, seen_at AS seenAt FROM intake_log WHERE key NOT LIKE 'h:%' ORDER BY rowid")
      .all() as Array<{ id: number; key: string; hash: string; seenAt: number }>) {
      delLog.run(r.id);
      putLog.run(keys.key(r.key), r.hash, r.seenAt);
      counts.resendKeys++;
    }
    const putCursor = db.prepare('INSERT OR REPLACE INTO source_cursors (key, value, updated_at) VALUES (?, ?, ?)');
    const delCursor = db.prepare('DELETE FROM source_cursors WHERE key = ?');
    for (const r of db.prepare("SELECT key, value, updated_at AS updatedAt FROM source_cursors WHERE key NOT LIKE 'h:%'").all() as Array<{
      key: string;
      value: string;
      updatedAt: number;
    }>) {
      delCursor.run(r.key);
      const stored = keys.key(r.key);
      putCursor.run(stored, keys.sealValue(stored, r.value), r.updatedAt);
      counts.cursors++;
    }
    db.exec('DELETE FROM plain_keys_pending');
    db.exec('COMMIT');
  } catch (e) {
    db.exec('ROLLBACK');
    throw e;
  }
  return counts;
}
