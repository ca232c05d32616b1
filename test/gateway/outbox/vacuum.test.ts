/**
 * Disk given back (issue 14): a drained outbox file shrinks by incremental-vacuum steps the writer
 * runs between commits, intake is accepted while it does, and the resend log is capped by count.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { createSqliteWriter } from '../../../gateway/outbox/sqlite-writer.ts';
import { openOutboxDatabase } from '../../../gateway/outbox/outbox-file.ts';
import { storageLogLine, VACUUM_KEEP_BYTES, VACUUM_START_BYTES, VACUUM_STEP_PAGES } from '../../../gateway/outbox/outbox-vacuum.ts';
import type { SealedRecord } from '../../../gateway/outbox/outbox.ts';
import { waitFor } from '../../support/net.ts';
import { fillDisk, mountSmallDisk } from '../../support/small-disk.ts';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'ewml-vacuum-')), 'outbox.db');
const ROWS = 20_000;
const ROW_BYTES = 2048;
const rec2k = (i: number): SealedRecord => ({ id: `r${i}`, type: 'patient', partitionKey: `p${i % 97}`, sealed: randomBytes(ROW_BYTES) });

describe('outbox vacuum', () => {
  for (const writer of ['thread', 'inline'] as const)
    it(`a drained outbox (${ROWS} rows of ${ROW_BYTES} bytes) shrinks to its live size plus the slack, accepting intake meanwhile (writer ${writer})`, async () => {
      const file = tmp();
      const box = createSqliteOutbox({ file, maxBytes: 1 << 30, clock: createManualClock(), writer });
      await box.open();
      expect(box.storage!().autoVacuum).toBe('incremental');
      for (let i = 0; i < ROWS; i += 500)
        expect(await box.enqueue({ records: Array.from({ length: 500 }, (_, k) => rec2k(i + k)) })).toBe('accepted');
      const full = box.storage!();
      // every row's payload spills to overflow pages: ~2.1 KiB of pages a row, a little over
      expect(full.liveBytes).toBeGreaterThan(ROWS * ROW_BYTES);
      let acked = 0;
      for (let guard = 0; guard < 100 && acked < ROWS; guard++) {
        const rows = box.claim(2000).rows;
        await box.ack(rows.map((r) => r.id));
        acked += rows.length;
      }
      expect(acked).toBe(ROWS);
      // intake during the vacuum: accepted
      const mid = box.storage!();
      console.log(
        `vacuum (${writer}): at the intake after the drain ${mid.freePages} pages were still free (${mid.vacuum.steps} steps so far)`,
      );
      const during = await box.enqueue({ records: [rec2k(ROWS)] });
      expect(during).toBe('accepted');
      await waitFor(
        () => {
          const s = box.storage!();
          return s.vacuum.steps > 0 && s.freePages * s.pageSize <= VACUUM_KEEP_BYTES;
        },
        60_000,
        'the vacuum steps to return the free pages',
      );
      // the last step's checkpoint cuts the file to its size; one more commit makes sure it has run
      await box.enqueue({ records: [rec2k(ROWS + 1)] });
      await waitFor(() => statSync(file).size <= box.storage!().liveBytes + VACUUM_KEEP_BYTES, 10_000, 'the checkpoint to cut the file');
      const after = box.storage!();
      console.log(
        `vacuum (${writer}): file ${full.fileBytes} bytes with ${ROWS} rows → ${after.fileBytes} after the drain ` +
          `(live ${after.liveBytes}, free pages ${after.freePages}, WAL ${after.walBytes}); ` +
          `${after.vacuum.steps} steps of ≤ ${VACUUM_STEP_PAGES} pages returned ${after.vacuum.pagesReturned} pages, last step ${after.vacuum.lastStepMs} ms`,
      );
      expect(after.vacuum.failures).toBe(0);
      expect(after.freePages * after.pageSize).toBeLessThanOrEqual(VACUUM_KEEP_BYTES);
      expect(after.fileBytes).toBeLessThanOrEqual(1.3 * after.liveBytes + VACUUM_START_BYTES);
      // the two rows taken during and after the drain are still there
      expect(box.claim(10).rows.map((r) => r.id)).toEqual([`r${ROWS}`, `r${ROWS + 1}`]);
      await box.close();
    }, 120_000);

  it('a vacuum step is bounded and runs only when due (direct call on the writer)', async () => {
    const file = tmp();
    openOutboxDatabase(file).close();
    const w = createSqliteWriter(file, { maxBytes: 1 << 30, maxDeadLetterBytes: 1 << 28, dedupeWindowMs: 86_400_000 });
    // nothing deleted: not due
    expect(w.vacuumStep()).toBeUndefined();
    w.enqueue([{ records: Array.from({ length: 4000 }, (_, i) => rec2k(i)) }], 1);
    // rows only added: the file has no free pages, nothing to do
    expect(w.vacuumStep()).toBeUndefined();
    w.ack(Array.from({ length: 4000 }, (_, i) => ({ id: `r${i}`, seq: i + 1 })));
    const steps = [];
    for (let i = 0; i < 100; i++) {
      const s = w.vacuumStep();
      if (!s) break;
      steps.push(s);
      // an intake between two steps of the vacuum is taken
      if (i === 1) expect(w.enqueue([{ records: [rec2k(5000)] }], 2)).toEqual(['accepted']);
      if (!s.more) break;
    }
    expect(w.counts().rows).toBe(1);
    expect(steps.length).toBeGreaterThan(1);
    // a step frees at most VACUUM_STEP_PAGES free pages; the file also loses the pointer-map pages
    // that mapped them (one per ~800 pages at 4 KiB), hence the + 2
    for (const s of steps) expect(s.pages).toBeLessThanOrEqual(VACUUM_STEP_PAGES + 2);
    expect(steps.every((s) => s.error === undefined)).toBe(true);
    expect(steps.at(-1)!.freePages * 4096).toBeLessThanOrEqual(VACUUM_KEEP_BYTES);
    console.log(
      `vacuum steps: ${steps.length}, pages ${steps.map((s) => s.pages).join(',')}, ms ${steps.map((s) => s.ms.toFixed(1)).join(',')}`,
    );
    expect(w.vacuumStep()).toBeUndefined();
    w.close();
  });

  it('caps the resend log by count: N + k entries leave the newest N, the oldest k forgotten', async () => {
    const N = 100;
    const K = 30;
    const box = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 26, clock: createManualClock(), writer: 'inline', dedupeMaxEntries: N });
    await box.open();
    for (let i = 0; i < N + K; i++)
      expect(await box.enqueue({ records: [rec2k(i)], dedupe: { key: `k${i}`, hash: `h${i}` } })).toBe('accepted');
    expect(box.storage!().resendLogEntries).toBe(N);
    expect(box.storage!().resendLogMaxEntries).toBe(N);
    // the newest and the oldest kept are still known resends; the one before them is forgotten
    expect(await box.enqueue({ records: [rec2k(1000)], dedupe: { key: `k${N + K - 1}`, hash: `h${N + K - 1}` } })).toBe('duplicate');
    expect(await box.enqueue({ records: [rec2k(1001)], dedupe: { key: `k${K}`, hash: `h${K}` } })).toBe('duplicate');
    expect(await box.enqueue({ records: [rec2k(1002)], dedupe: { key: `k${K - 1}`, hash: `h${K - 1}` } })).toBe('accepted');
    expect(box.storage!().resendLogEntries).toBe(N);
    await box.close();
  });

  it('an entry of the resend log costs ~190 bytes of file (the default cap bounds the log)', async () => {
    const file = tmp();
    const key = new Uint8Array(32).fill(7);
    const box = createSqliteOutbox({
      file,
      maxBytes: 1 << 26,
      clock: createManualClock(),
      writer: 'inline',
      sealKey: key,
      dedupeMaxEntries: 20_000,
    });
    await box.open();
    const before = box.storage!().liveBytes;
    // a real resend-log hash: sha256 hex, as the intake pipeline keeps it
    const hash = (i: number) => i.toString(16).padStart(64, '0');
    for (let i = 0; i < 20_000; i += 1000)
      await Promise.all(
        Array.from({ length: 1000 }, (_, k) => box.enqueue({ records: [], dedupe: { key: `APP|FAC|MSG${i + k}`, hash: hash(i + k) } })),
      );
    const s = box.storage!();
    expect(s.resendLogEntries).toBe(20_000);
    const perEntry = (s.liveBytes - before) / 20_000;
    console.log(
      `resend log: ${perEntry.toFixed(1)} bytes of file per entry; the default cap of ${250_000} ≈ ${((perEntry * 250_000) / 1e6).toFixed(1)} MB`,
    );
    expect(perEntry).toBeGreaterThan(100);
    expect(perEntry).toBeLessThan(300);
    await box.close();
  }, 60_000);

  it('converts an outbox without incremental vacuum once at open when it is small and the disk has room; reports it otherwise', async () => {
    const file = tmp();
    const a = createSqliteOutbox({ file, maxBytes: 1 << 26, clock: createManualClock(), writer: 'inline' });
    await a.open();
    await a.enqueue({ records: [rec2k(1)] });
    await a.close();
    // an outbox made before this change: auto_vacuum off
    const raw = new DatabaseSync(file);
    raw.exec('PRAGMA auto_vacuum = NONE; VACUUM;');
    expect((raw.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number }).auto_vacuum).toBe(0);
    raw.close();
    const events: string[] = [];
    const b = createSqliteOutbox({
      file,
      maxBytes: 1 << 26,
      clock: createManualClock(),
      writer: 'inline',
      freeDiskBytesForConversion: 0,
      onStorage: (e) => events.push(`${e.event}:${'outcome' in e && e.outcome.state === 'none' ? e.outcome.reason : ''}`),
    });
    await b.open();
    expect(events).toEqual(['notConverted:no-room']);
    expect(
      storageLogLine({ event: 'notConverted', outcome: { state: 'none', reason: 'too-big', liveBytes: 1, fileBytes: 2 } }).fields,
    ).toEqual({
      reason: 'too-big',
      liveBytes: 1,
      fileBytes: 2,
    });
    expect(b.storage!().autoVacuum).toBe('none');
    // no vacuum step loops on a file that cannot give pages back
    await b.ack(b.claim(10).rows.map((r) => r.id));
    await b.enqueue({ records: [rec2k(2)] });
    expect(b.storage!().vacuum.steps).toBe(0);
    await b.close();
    events.length = 0;
    const c = createSqliteOutbox({
      file,
      maxBytes: 1 << 26,
      clock: createManualClock(),
      writer: 'inline',
      onStorage: (e) => events.push(e.event),
    });
    await c.open();
    expect(events).toEqual(['converted']);
    expect(c.storage!().autoVacuum).toBe('incremental');
    expect(c.claim(10).rows.map((r) => r.id)).toEqual(['r2']);
    await c.close();
  });

  const writerOpts = { maxBytes: 1 << 30, maxDeadLetterBytes: 1 << 28, dedupeWindowMs: 86_400_000, vacuumRetryMs: 0 };
  const fillAndAck = (w: ReturnType<typeof createSqliteWriter>, rows: number) => {
    for (let i = 0; i < rows; i += 500) w.enqueue([{ records: Array.from({ length: 500 }, (_, k) => rec2k(i + k)) }], 1);
    w.ack(Array.from({ length: rows }, (_, i) => ({ id: `r${i}`, seq: i + 1 })));
  };

  it('gives the space back on a full disk (the steps reuse the WAL already there), so a full outbox frees its volume', () => {
    const disk = mountSmallDisk(40 * 1024 * 1024);
    try {
      const file = join(disk.dir, 'outbox.db');
      openOutboxDatabase(file).close();
      const w = createSqliteWriter(file, writerOpts);
      fillAndAck(w, 5000);
      const filler = join(disk.dir, 'filler');
      fillDisk(filler);
      const steps: Array<number | string> = [];
      for (let i = 0; i < 50; i++) {
        const s = w.vacuumStep();
        if (!s) break;
        steps.push(s.error ?? s.pages);
        if (!s.more) break;
      }
      console.log(
        `vacuum on a full disk: steps ${JSON.stringify(steps)}, file ${statSync(file).size} bytes, WAL ${statSync(file + '-wal').size}`,
      );
      expect(steps.every((x) => typeof x === 'number')).toBe(true);
      expect(statSync(file).size).toBeLessThanOrEqual(VACUUM_KEEP_BYTES + 128 * 1024);
      rmSync(filler);
      // and intake goes on once there is room
      expect(w.enqueue([{ records: [rec2k(9000)] }], 2)).toEqual(['accepted']);
      w.close();
    } finally {
      disk.unmount();
    }
  });

  it('a step that fails (another writer holds the lock) is reported with its code; intake goes on and the vacuum resumes', () => {
    const file = tmp();
    openOutboxDatabase(file).close();
    const w = createSqliteWriter(file, writerOpts);
    fillAndAck(w, 4000);
    const other = new DatabaseSync(file);
    other.exec('PRAGMA busy_timeout = 0; BEGIN IMMEDIATE');
    // the writer's busy_timeout (5 s) runs out: SQLITE_BUSY
    const failed = w.vacuumStep();
    other.exec('ROLLBACK');
    other.close();
    expect(failed).toMatchObject({ pages: 0, more: false, error: '5' });
    expect(storageLogLine({ event: 'vacuumFailed', step: failed! })).toMatchObject({
      level: 'warn',
      fields: { code: 'GW_OUTBOX_IO', sqlite: '5' },
    });
    expect(w.enqueue([{ records: [rec2k(9000)] }], 2)).toEqual(['accepted']);
    const next = w.vacuumStep();
    expect(next?.error).toBeUndefined();
    expect(next!.pages).toBeGreaterThan(0);
    w.close();
  }, 30_000);
});
