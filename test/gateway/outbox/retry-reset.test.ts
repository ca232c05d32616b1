/** A retry time is not sealed: a damaged one (a flipped byte) must not hold its row, and its patient's later rows, for ever. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';

describe('retry times after a restart', () => {
  it("a row whose retry time was set centuries ahead (damage) is claimable again after the outbox opens, and its patient's next row behind it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ewml-retry-reset-')), 'outbox.db');
    const key = randomBytes(32);
    const clock = createManualClock();
    const open = () => createSqliteOutbox({ file, maxBytes: 1 << 30, clock, writer: 'inline', sealKey: key });
    let box = open();
    await box.open();
    for (const id of ['r1', 'r2'])
      expect(await box.enqueue({ records: [{ id, type: 'patient', partitionKey: 'p1', plain: `{"id":"${id}"}` }] })).toBe('accepted');
    const first = box.claim(10);
    expect(first.rows.map((r) => r.id)).toEqual(['r1', 'r2']);
    await box.retryLater(['r1', 'r2'], clock.now() + 60_000, 'GW_SINK_UNREACHABLE');
    expect(box.claim(10).rows).toEqual([]);
    await box.close();
    // the damage: r1's retry time flipped to the year 285,000
    const d = new DatabaseSync(file);
    d.prepare("UPDATE outbox SET next_attempt_at = 9007199254740991 WHERE id = 'r1'").run();
    d.close();
    box = open();
    await box.open();
    expect(box.claim(10).rows.map((r) => r.id)).toEqual(['r1', 'r2']);
    expect(box.stats().waitingRetry).toBe(0);
    await box.close();
  });
});
