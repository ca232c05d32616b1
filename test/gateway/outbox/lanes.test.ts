/**
 * Outbox lanes (gateway/outbox/outbox.ts, "Lanes"): the contract for both implementations, and the
 * SQLite outbox's own cases — a file from before the lanes migrated in place with its rows, the
 * writer thread dying mid-way, and a real relay delivering urgent, then live, then backfill.
 */
import { mkdtempSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { OUTBOX_MIGRATIONS } from '../../../gateway/outbox/migrations.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { createRelayWorker } from '../../../gateway/relay/relay-worker.ts';
import type { RecordBatch, Sink } from '../../../gateway/sinks/sink.ts';
import { waitFor } from '../../support/net.ts';
import { laneContract, laneRec } from './lane-contract.ts';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'ewml-lanes-')), 'outbox.db');

laneContract('memory', (o) => createMemoryOutbox(o));
laneContract('sqlite (writer thread)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'thread' }));
laneContract('sqlite (inline writer)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'inline' }));
laneContract('sqlite (auto writer)', (o) => createSqliteOutbox({ file: tmp(), ...o, writer: 'auto' }));

/** An outbox file as the executable before the lanes wrote it: migrations 1–7, rows inserted its way. */
function fileBeforeLanes(file: string, rows: Array<{ id: string; partitionKey: string }>): void {
  const d = new DatabaseSync(file);
  d.exec('PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;');
  for (let v = 0; v < 7; v++) {
    d.exec(OUTBOX_MIGRATIONS[v]);
    d.exec(`PRAGMA user_version = ${v + 1}`);
  }
  const insert = d.prepare(
    'INSERT INTO outbox (id, type, partition_key, created_at, bytes, payload, record_ids) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  for (const r of rows) insert.run(r.id, 'patient', r.partitionKey, 1000, 164, Buffer.alloc(100, r.id.charCodeAt(0)), null);
  d.close();
}

describe('SQLite outbox lanes', () => {
  it('migrates a file from before the lanes in place: every row kept, at live, in order, and delivered', async () => {
    const file = tmp();
    const old = Array.from({ length: 50 }, (_, k) => ({ id: `old${k}`, partitionKey: `p${k % 7}` }));
    fileBeforeLanes(file, old);
    const clock = createManualClock();
    const box = createSqliteOutbox({ file, maxBytes: 1 << 22, clock });
    await box.open();
    const d = new DatabaseSync(file, { readOnly: true });
    expect((d.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(OUTBOX_MIGRATIONS.length);
    expect(d.prepare('SELECT lane, COUNT(*) AS n FROM outbox GROUP BY lane').all()).toEqual([{ lane: 1, n: 50 }]);
    d.close();
    expect(box.stats().lanes).toMatchObject({ urgent: { rows: 0 }, live: { rows: 50, oldestCreatedAt: 1000 }, backfill: { rows: 0 } });
    // new rows: an urgent one into an old row's partition takes the old rows of that partition with it
    await box.enqueue({ records: [laneRec('u1', 'p3', 'urgent')] });
    await box.enqueue({ records: [laneRec('b1', 'q', 'backfill')] });
    const p3 = old.filter((r) => r.partitionKey === 'p3').map((r) => r.id);
    const rest = old.filter((r) => r.partitionKey !== 'p3').map((r) => r.id);
    const got = box.claim(100).rows.map((r) => r.id);
    expect(got).toEqual([...p3, 'u1', ...rest, 'b1']);
    await box.ack(got);
    expect(box.stats()).toMatchObject({ pending: 0, inFlight: 0, bytes: 0 });
    await box.close();
  });

  it('an older executable reopening a migrated file (a rollback) still claims every row in seq order', async () => {
    const file = tmp();
    const box = createSqliteOutbox({ file, maxBytes: 1 << 22, clock: createManualClock() });
    await box.open();
    await box.enqueue({ records: [laneRec('b1', 'P', 'backfill')] });
    await box.enqueue({ records: [laneRec('u1', 'Q', 'urgent')] });
    await box.close();
    // the previous executable's insert (no lane column) and its claim query (seq order) on the new file
    const d = new DatabaseSync(file);
    d.prepare('INSERT INTO outbox (id, type, partition_key, created_at, bytes, payload, record_ids) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      'o1',
      'patient',
      'P',
      5,
      164,
      Buffer.alloc(100),
      null,
    );
    expect(d.prepare('SELECT id, lane FROM outbox WHERE seq > 0 ORDER BY seq').all()).toEqual([
      { id: 'b1', lane: 2 },
      { id: 'u1', lane: 0 },
      { id: 'o1', lane: 1 },
    ]);
    d.close();
  });

  for (const writer of ['thread', 'auto'] as const)
    it(`loses nothing and keeps lanes and partition order when the writer thread dies mid-way (${writer} writer)`, async () => {
      let thread: import('node:worker_threads').Worker | undefined;
      let restarted: () => void = () => undefined;
      const gone: number[] = [];
      const file = tmp();
      const clock = createManualClock();
      const box = createSqliteOutbox({
        file,
        maxBytes: 1 << 22,
        clock,
        writer,
        onWriterThread: (w) => {
          thread = w;
        },
        onWriterGone: (e) => gone.push(e.restartInMs),
        onWriterRestarted: () => restarted(),
      });
      await box.open();
      for (let k = 0; k < 20; k++) await box.enqueue({ records: [laneRec(`b${k}`, `p${k % 4}`, 'backfill')] });
      await box.enqueue({ records: [laneRec('l1', 'x')] });
      expect(box.claim(3).rows.map((r) => r.id)).toEqual(['l1', 'b0', 'b1']);
      const back = new Promise<void>((r) => {
        restarted = r;
      });
      await thread!.terminate();
      await expect(box.ack(['l1', 'b0', 'b1'])).rejects.toMatchObject({ code: 'GW_OUTBOX_IO' });
      await expect(box.enqueue({ records: [laneRec('u-lost', 'p1', 'urgent')] })).rejects.toMatchObject({ code: 'GW_OUTBOX_IO' });
      await waitFor(() => gone.length === 1, 5000, 'the writer thread reported gone');
      clock.advance(250);
      await back;
      // the refused intake is sent again by its source; it takes p1's backfill rows with it
      expect(await box.enqueue({ records: [laneRec('u1', 'p1', 'urgent')] })).toBe('accepted');
      const p1 = ['b1', 'b5', 'b9', 'b13', 'b17'];
      const first = box.claim(100).rows.map((r) => r.id);
      expect(first).toEqual([...p1, 'u1', 'l1', ...Array.from({ length: 20 }, (_, k) => `b${k}`).filter((id) => !p1.includes(id))]);
      await box.ack(first);
      await box.close();
      const again = createSqliteOutbox({ file, maxBytes: 1 << 22, clock: createManualClock() });
      await again.open();
      expect(again.stats()).toMatchObject({ pending: 0, lanes: { urgent: { rows: 0 }, live: { rows: 0 }, backfill: { rows: 0 } } });
      await again.close();
    });

  it('survives a reopen with its lanes: queued rows come back in their lanes', async () => {
    const file = tmp();
    const box = createSqliteOutbox({ file, maxBytes: 1 << 22, clock: createManualClock() });
    await box.open();
    await box.enqueue({ records: [laneRec('b1', 'P', 'backfill')] });
    await box.enqueue({ records: [laneRec('l1', 'Q')] });
    await box.enqueue({ records: [laneRec('u1', 'R', 'urgent')] });
    await box.close();
    const again = createSqliteOutbox({ file, maxBytes: 1 << 22, clock: createManualClock() });
    await again.open();
    expect(again.stats().lanes).toMatchObject({ urgent: { rows: 1 }, live: { rows: 1 }, backfill: { rows: 1 } });
    expect(again.claim(10).rows.map((r) => r.id)).toEqual(['u1', 'l1', 'b1']);
    await again.close();
  });
});

describe('relay over the lanes', () => {
  it('delivers an urgent and a live row enqueued after a backfill backlog first: urgent, then live, then backfill', async () => {
    const sealer = createRecordSealer(Buffer.alloc(32, 7));
    const clock = createManualClock();
    const box = createSqliteOutbox({ file: tmp(), maxBytes: 1 << 24, clock });
    await box.open();
    const put = (id: string, partitionKey: string, lane: 'urgent' | 'live' | 'backfill') =>
      box.enqueue({ records: [{ id, type: 'appointment', partitionKey, lane, sealed: sealer.seal(id, Buffer.from(`{"id":"${id}"}`)) }] });
    for (let k = 0; k < 30; k++) await put(`b${k}`, `p${k}`, 'backfill');
    await put('l1', 'live-patient', 'live');
    await put('u1', 'urgent-patient', 'urgent');
    // a mixed-lane partition: its backfill row goes before its urgent one, wherever the lanes put them
    await put('m-backfill', 'mixed', 'backfill');
    await put('m-urgent', 'mixed', 'urgent');
    const batches: RecordBatch[] = [];
    const sink: Sink = {
      kind: 'test',
      async start() {},
      async stop() {},
      async deliver(b) {
        batches.push(b);
        return { rejected: [] };
      },
      health: () => ({ connected: true }),
    };
    const relay = createRelayWorker({
      outbox: box,
      sink,
      sealer,
      clock,
      logger: createSilentLogger(),
      bus: createEventBus(),
      metrics: createMetrics(),
      batchSize: 4,
      maxInFlight: 1,
      backoffInitialMs: 10,
      backoffMaxMs: 40,
      idlePollMs: 50,
    });
    await relay.start();
    relay.notify();
    await waitFor(() => batches.flatMap((b) => b.ids).length === 34, 10_000, 'every row delivered');
    await relay.stop();
    const order = batches.flatMap((b) => b.ids);
    expect(order).toEqual(['u1', 'm-backfill', 'm-urgent', 'l1', ...Array.from({ length: 30 }, (_, k) => `b${k}`)]);
    expect(batches[0].ids).toEqual(['u1', 'm-backfill', 'm-urgent', 'l1']);
    await waitFor(() => box.stats().inFlight === 0, 5000, 'acks written');
    expect(box.stats()).toMatchObject({ pending: 0, lanes: { urgent: { rows: 0 }, backfill: { rows: 0 } } });
    await box.close();
  });
});
