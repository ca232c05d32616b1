import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { outboxContract, rec } from './outbox-contract.ts';
import { waitFor } from '../../support/net.ts';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'ewml-outbox-')), 'outbox.db');

outboxContract('sqlite (writer thread)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'thread' }));
outboxContract('sqlite (inline writer)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'inline' }));
outboxContract('sqlite (auto: inline when alone, else the thread)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'auto' }));

describe('SQLite outbox', () => {
  it('keeps its file at mode 0600', async () => {
    const file = tmp();
    const box = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock() });
    await box.open();
    await box.enqueue({ records: [rec('a')] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(file + '-wal').mode & 0o777).toBe(0o600);
    await box.close();
  });

  it('survives a reopen: unacked and in-flight rows come back, acked rows do not, bytes are recounted', async () => {
    const file = tmp();
    const clock = createManualClock();
    const a = createSqliteOutbox({ file, maxBytes: 1 << 20, clock });
    await a.open();
    await a.enqueue({ records: [rec('a'), rec('b'), rec('c')], dedupe: { key: 'k', hash: 'h' } });
    a.claim(2).rows;
    await a.ack(['a']);
    await a.close();
    const b = createSqliteOutbox({ file, maxBytes: 1 << 20, clock });
    await b.open();
    expect(b.claim(10).rows.map((r) => r.id)).toEqual(['b', 'c']);
    expect(b.stats().bytes).toBe(2 * (100 + 64));
    expect(await b.enqueue({ records: [rec('a')], dedupe: { key: 'k', hash: 'h' } })).toBe('duplicate');
    await b.close();
  });

  it('group-commits concurrent enqueues: each resolves after a commit, with fewer commits than enqueues', async () => {
    const box = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 26, clock: createManualClock() });
    await box.open();
    const before = box.stats().commits ?? 0;
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => box.enqueue({ records: [rec(`r${i}`)] })));
    expect(outcomes.every((o) => o === 'accepted')).toBe(true);
    const commits = (box.stats().commits ?? 0) - before;
    expect(commits).toBeGreaterThanOrEqual(1);
    expect(commits).toBeLessThan(20);
    expect(box.claim(1000).rows).toHaveLength(200);
    await box.close();
  });

  it('splits a group at groupCommitMaxRecords', async () => {
    const box = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 26, clock: createManualClock(), groupCommitMaxRecords: 10 });
    await box.open();
    const before = box.stats().commits ?? 0;
    await Promise.all(Array.from({ length: 50 }, (_, i) => box.enqueue({ records: [rec(`r${i}`)] })));
    // at most 10 records per commit: at least 5 commits (more when the writer sees the requests arrive in parts)
    expect((box.stats().commits ?? 0) - before).toBeGreaterThanOrEqual(5);
    await box.close();
  });

  it('auto writer: a lone intake commits on this thread, concurrent ones in the writer thread; both keep one set of counts and one cap', async () => {
    const file = tmp();
    const size = 100 + 64;
    const box = createSqliteOutbox({ file, maxBytes: 10 * size, clock: createManualClock(), writer: 'auto' });
    await box.open();
    // alone, the writer thread idle: committed inline (the thread's commit count does not move)
    const c0 = box.stats();
    expect(await box.enqueue({ records: [rec('a')] })).toBe('accepted');
    expect(await box.enqueue({ records: [rec('b')], dedupe: { key: 'k1', hash: 'h' } })).toBe('accepted');
    const c1 = box.stats();
    expect((c1.inlineCommits ?? 0) - (c0.inlineCommits ?? 0)).toBe(2);
    expect((c1.commits ?? 0) - (c0.commits ?? 0)).toBe(2);
    // together: handed to the thread as one group
    const outcomes = await Promise.all(['c', 'd', 'e', 'f'].map((id) => box.enqueue({ records: [rec(id)] })));
    expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    const c2 = box.stats();
    expect(c2.inlineCommits).toBe(c1.inlineCommits);
    // one commit, or two when the thread starts on the first before the rest arrive
    expect((c2.commits ?? 0) - (c1.commits ?? 0)).toBeGreaterThanOrEqual(1);
    expect((c2.commits ?? 0) - (c1.commits ?? 0)).toBeLessThanOrEqual(2);
    expect(box.stats()).toMatchObject({ bytes: 6 * size, pending: 6 });
    // committed in the order they arrived, whichever writer took each
    expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    await box.retryLater(['a', 'b', 'c', 'd', 'e', 'f'], 0, 'test: back to the queue');
    // a resend is recognised whichever writer took the first copy
    expect(
      await Promise.all([box.enqueue({ records: [rec('b')], dedupe: { key: 'k1', hash: 'h' } }), box.enqueue({ records: [rec('x')] })]),
    ).toEqual(['duplicate', 'accepted']);
    expect(await box.enqueue({ records: [rec('b2')], dedupe: { key: 'k1', hash: 'other' } })).toBe('conflict');
    // deletes by the thread, intakes inline: the cap sees both
    const claimed = box.claim(3).rows;
    await box.ack(claimed.map((r) => r.id));
    expect(box.stats().bytes).toBe(4 * size);
    const more = await Promise.all(Array.from({ length: 8 }, (_, i) => box.enqueue({ records: [rec(`m${i}`)] })));
    expect(more.filter((o) => o === 'accepted')).toHaveLength(6);
    expect(more.filter((o) => o === 'full')).toHaveLength(2);
    expect(await box.enqueue({ records: [rec('late')] })).toBe('full');
    expect(box.stats().bytes).toBe(10 * size);
    await box.close();
    // the counts kept in memory are the ones on disk
    const again = createSqliteOutbox({ file, maxBytes: 10 * size, clock: createManualClock(), writer: 'thread' });
    await again.open();
    expect(again.stats()).toMatchObject({ bytes: 10 * size, pending: 10 });
    await again.close();
  });

  for (const writer of ['thread', 'auto', 'inline'] as const) {
    it(`seals records handed over as JSON before writing them (${writer} writer), and refuses them without a key`, async () => {
      const key = Buffer.alloc(32, 9);
      const sealer = createRecordSealer(key);
      const file = tmp();
      const box = createSqliteOutbox({ file, maxBytes: 1 << 24, clock: createManualClock(), writer, sealKey: key });
      await box.open();
      const plain = (id: string) => ({ id, type: 'patient', partitionKey: 'p1', plain: JSON.stringify({ id, name: 'Plaintext-Marker' }) });
      expect(await box.enqueue({ records: [plain('a')] })).toBe('accepted');
      expect(await Promise.all([box.enqueue({ records: [plain('b')] }), box.enqueue({ records: [plain('c')] })])).toEqual([
        'accepted',
        'accepted',
      ]);
      expect(
        await box.enqueuePage({ stream: 's', rows: [{ pk: '1', hash: 'h1', records: [{ ...plain('d'), partitionKey: 'p2' }] }] }),
      ).toMatchObject({ outcome: 'accepted', written: 1 });
      const rows = [...box.claim(10).rows];
      expect(rows.map((r) => r.id).sort()).toEqual(['a', 'b', 'c', 'd']);
      for (const r of rows)
        expect(JSON.parse(sealer.open(r.id, r.sealed).toString('utf8'))).toEqual({ id: r.id, name: 'Plaintext-Marker' });
      // the bytes counted are the sealed bytes (29 bytes of header and tag on each)
      expect(box.stats().bytes).toBe(rows.reduce((n, r) => n + r.sealed.byteLength + 64, 0));
      await box.close();
      for (const f of [file, `${file}-wal`]) if (existsSync(f)) expect(readFileSync(f).includes('Plaintext-Marker')).toBe(false);
      const keyless = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 24, clock: createManualClock(), writer });
      await keyless.open();
      await expect(keyless.enqueue({ records: [plain('e')] })).rejects.toMatchObject({ code: 'GW_OUTBOX_IO' });
      expect(keyless.stats()).toMatchObject({ pending: 0, bytes: 0 });
      await keyless.close();
    });
  }

  for (const writer of ['thread', 'auto'] as const) {
    it(`fails writes with GW_OUTBOX_IO while the writer thread is gone, restarts it, and delivers claimed rows again (${writer} writer)`, async () => {
      let thread: import('node:worker_threads').Worker | undefined;
      const gone: number[] = [];
      let restarted: () => void = () => undefined;
      const file = tmp();
      // the restart delay runs on the outbox's clock: the test moves it
      const clock = createManualClock();
      const box = createSqliteOutbox({
        file,
        maxBytes: 1 << 20,
        clock,
        writer,
        onWriterThread: (w) => {
          thread = w;
        },
        onWriterGone: (e) => gone.push(e.restartInMs),
        onWriterRestarted: () => restarted(),
      });
      const restart = () =>
        new Promise<void>((r) => {
          restarted = r;
        });
      await box.open();
      expect(await box.enqueue({ records: [rec('a', 'p1'), rec('b', 'p1')] })).toBe('accepted');
      expect(box.claim(1).rows.map((r) => r.id)).toEqual(['a']);

      let back = restart();
      await thread!.terminate();
      await expect(Promise.all([box.enqueue({ records: [rec('c')] }), box.enqueue({ records: [rec('d')] })])).rejects.toMatchObject({
        code: 'GW_OUTBOX_IO',
      });
      expect(box.stats()).toMatchObject({ writer: 'restarting', writerRestarts: 0 });
      // the claimed row's ack fails with the writer: the row stays queued and is claimed again, first
      await expect(box.ack(['a'])).rejects.toMatchObject({ code: 'GW_OUTBOX_IO' });
      await waitFor(() => gone.length === 1, 5000, 'the writer thread reported gone');
      clock.advance(249);
      expect(box.stats()).toMatchObject({ writer: 'restarting', writerRestarts: 0 });
      clock.advance(1);
      await back;
      expect(box.stats()).toMatchObject({ writer: 'running', writerRestarts: 1 });
      expect(await box.enqueue({ records: [rec('e', 'p2')] })).toBe('accepted');
      expect(box.claim(10).rows.map((r) => r.id)).toEqual(['a', 'b', 'e']);
      await box.ack(['a', 'b']);

      // a second death in a row waits twice as long before the restart
      back = restart();
      await thread!.terminate();
      await waitFor(() => gone.length === 2, 5000, 'the writer thread reported gone again');
      clock.advance(500);
      await back;
      expect(gone).toEqual([250, 500]);
      expect(await box.enqueue({ records: [rec('f')] })).toBe('accepted');
      expect(box.stats()).toMatchObject({ writer: 'running', writerRestarts: 2 });

      // closing while a restart is pending: no writer is left behind, the file opens again
      await thread!.terminate();
      await box.close();
      const again = createSqliteOutbox({ file, maxBytes: 1 << 20, clock: createManualClock() });
      await again.open();
      expect(again.claim(10).rows.map((r) => r.id)).toEqual(['e', 'f']);
      await again.close();
    });
  }

  it('rejects enqueue before open with GW_OUTBOX_IO', async () => {
    const box = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 20, clock: createManualClock() });
    await expect(box.enqueue({ records: [rec('a')] })).rejects.toMatchObject({ code: 'GW_OUTBOX_IO' });
  });
});
