import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createPartitionKeyer } from '../../../gateway/crypto/partition-keyer.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { createStoredKeys } from '../../../gateway/outbox/stored-keys.ts';
import { rec } from './outbox-contract.ts';

/** Recognisable, synthetic: a message control id in a resend key, a patient's name in an export file's name. */
const CONTROL_ID = 'ZQMSGCTRL7741';
const FILE_NAME = 'QUIXBYFAMILY_ZELDA_rx.csv';
const NEEDLES = [CONTROL_ID, FILE_NAME];

const tmp = () => join(mkdtempSync(join(tmpdir(), 'ewml-keys-')), 'outbox.db');

/** Where each needle is found in the outbox file, its WAL and its shared-memory file (as Latin-1 and UTF-16LE bytes). */
function scan(file: string): string[] {
  const hits: string[] = [];
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (!existsSync(f)) continue;
    const bytes = readFileSync(f);
    for (const enc of ['latin1', 'utf16le'] as const) {
      const text = bytes.toString(enc);
      for (const n of NEEDLES) if (text.includes(n)) hits.push(`${n} in ${f.slice(file.length) || '.db'} (${enc})`);
    }
  }
  return hits;
}

const dedupe = { key: `PMS|CLINIC|${CONTROL_ID}`, hash: 'h1' };
const cursor = { key: `file:exports:${FILE_NAME}`, value: JSON.stringify({ name: FILE_NAME, rows: 3, done: true }) };

/** Writes a message with its resend key and a page with its cursor, then acks every row. */
async function seed(box: ReturnType<typeof createSqliteOutbox>): Promise<void> {
  expect(await box.enqueue({ records: [rec('m1', 'h:p1')], dedupe })).toBe('accepted');
  expect(
    (
      await box.enqueuePage({
        stream: 'file:exports',
        rows: [{ pk: '1', hash: 'r', records: [rec('r1', 'h:p2')] }],
        cursor,
        trackRows: false,
      })
    ).outcome,
  ).toBe('accepted');
  const { rows } = box.claim(10);
  expect(rows.map((r) => r.id)).toEqual(['m1', 'r1']);
  await box.ack(rows.map((r) => r.id));
}

describe('outbox keys and cursors at rest', () => {
  it('keeps no resend key or file name in plaintext in the database, its WAL or shared memory, and still dedupes and resumes', async () => {
    const file = tmp();
    const sealKey = randomBytes(32);
    for (const writer of ['auto', 'thread'] as const) {
      const box = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock(), sealKey, writer });
      await box.open();
      if (writer === 'auto') await seed(box);
      // while open (the WAL holds the writes) and after every row was acked
      expect(scan(file)).toEqual([]);
      expect(await box.enqueue({ records: [rec('m1', 'h:p1')], dedupe })).toBe('duplicate');
      expect(await box.enqueue({ records: [rec('m1', 'h:p1')], dedupe: { ...dedupe, hash: 'other' } })).toBe('conflict');
      expect(box.getCursor(cursor.key)).toBe(cursor.value);
      expect(box.getCursor('file:exports:another.csv')).toBeUndefined();
      await box.close();
      expect(scan(file)).toEqual([]);
    }
  });

  it('rewrites resend keys and cursors kept in plaintext before, once, at the first open with the seal key; their old bytes are not left in free space', async () => {
    const file = tmp();
    // an outbox written without hashing (as before this change)
    const before = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock(), writer: 'inline' });
    await before.open();
    await seed(before);
    await before.close();
    // the scan can fail: the plaintext is there
    expect(scan(file).length).toBeGreaterThan(0);

    const sealKey = randomBytes(32);
    const after = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock(), sealKey, writer: 'inline' });
    await after.open();
    expect(await after.enqueue({ records: [rec('m1', 'h:p1')], dedupe })).toBe('duplicate');
    expect(after.getCursor(cursor.key)).toBe(cursor.value);
    await after.close();
    expect(scan(file)).toEqual([]);

    // a later open finds nothing left to rewrite, and answers the same
    const again = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock(), sealKey, writer: 'inline' });
    await again.open();
    expect(await again.enqueue({ records: [rec('m1', 'h:p1')], dedupe })).toBe('duplicate');
    expect(again.getCursor(cursor.key)).toBe(cursor.value);
    await again.close();
  });

  it('zeroes what a delivered row leaves behind (secure_delete): a partition key queued in plaintext before keys were hashed is not left in free space', async () => {
    const file = tmp();
    const box = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock(), sealKey: randomBytes(32), writer: 'inline' });
    await box.open();
    // rows as an outbox from before the partition keyer holds them: the key names the patient
    for (let i = 0; i < 20; i++)
      expect(await box.enqueue({ records: [rec(`old${i}`, `patient:CLINIC|${CONTROL_ID}-${i}`)] })).toBe('accepted');
    const { rows } = box.claim(100);
    expect(rows).toHaveLength(20);
    await box.ack(rows.map((r) => r.id));
    await box.close();
    expect(scan(file)).toEqual([]);
  });

  it("hashes a key once (a stored key stays as it is), under its own key: not the partition keyer's", () => {
    const sealKey = Buffer.alloc(32, 9);
    const keys = createStoredKeys(sealKey);
    const stored = keys.key(dedupe.key);
    expect(stored).toMatch(/^h:[A-Za-z0-9_-]{43}$/);
    expect(keys.key(stored)).toBe(stored);
    expect(createStoredKeys(sealKey).key(dedupe.key)).toBe(stored);
    expect(createStoredKeys(Buffer.alloc(32, 8)).key(dedupe.key)).not.toBe(stored);
    expect(createPartitionKeyer(sealKey)(dedupe.key)).not.toBe(stored);
    const sealed = keys.sealValue(stored, cursor.value);
    expect(sealed.startsWith('s1:')).toBe(true);
    expect(sealed).not.toContain(FILE_NAME);
    expect(keys.openValue(stored, sealed)).toBe(cursor.value);
    // a value from before sealing reads as it is; one moved to another key does not open
    expect(keys.openValue(stored, cursor.value)).toBe(cursor.value);
    expect(() => keys.openValue(keys.key('other'), sealed)).toThrow();
  });
});
