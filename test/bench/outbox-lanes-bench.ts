/**
 * Outbox lanes with a large backlog (issue 17 point 6): claim time with a million backfill rows
 * queued behind an urgent and a live row, the claims that drain the backlog after them, and an
 * enqueue that promotes earlier rows of its partition against one that promotes none.
 * A program, not a test (CONVENTIONS.md §11): `node test/bench/outbox-lanes-bench.ts [rows]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../../gateway/clock.ts';
import { openOutboxDatabase } from '../../gateway/outbox/outbox-file.ts';
import { createSqliteOutbox } from '../../gateway/outbox/sqlite-outbox.ts';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const PARTITIONS = Math.max(1, Math.floor(ROWS / 10));
const dir = mkdtempSync(join(tmpdir(), 'ewml-lanes-bench-'));
const file = join(dir, 'outbox.db');

function ms(t: number): string {
  return `${(performance.now() - t).toFixed(2)} ms`;
}
function stats(list: number[]): string {
  const s = [...list].sort((a, b) => a - b);
  const pct = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(3);
  return `median ${pct(50)} ms, p95 ${pct(95)} ms, max ${s.at(-1)!.toFixed(3)} ms (${s.length} runs)`;
}

// the backlog, written straight into a file with the outbox's schema (what a first load leaves)
let t = performance.now();
const d = openOutboxDatabase(file);
d.exec('PRAGMA synchronous = OFF');
const insert = d.prepare(
  'INSERT INTO outbox (id, type, partition_key, created_at, bytes, payload, record_ids, lane) VALUES (?, ?, ?, ?, ?, ?, NULL, 2)',
);
const payload = Buffer.alloc(300, 7);
d.exec('BEGIN');
for (let k = 0; k < ROWS; k++) insert.run(`b${k}`, 'patient', `p${k % PARTITIONS}`, 1000 + k, 364, payload);
d.exec('COMMIT');
d.close();
console.log(`backlog: ${ROWS} backfill rows over ${PARTITIONS} partitions written in ${ms(t)}`);

const clock = createManualClock();
const box = createSqliteOutbox({ file, maxBytes: 4 * 1024 ** 3, clock, writer: 'inline' });
t = performance.now();
await box.open();
console.log(`open: ${ms(t)}`);

const rec = (id: string, partitionKey: string, lane: 'urgent' | 'live' | 'backfill') => ({
  id,
  type: 'appointment',
  partitionKey,
  lane,
  sealed: Buffer.alloc(300, 1),
});
// enqueue: a live row into a fresh partition (promotes nothing), then an urgent one into a
// partition with 10 backfill rows (promotes them)
const plain: number[] = [];
const promoting: number[] = [];
for (let k = 0; k < 50; k++) {
  t = performance.now();
  await box.enqueue({ records: [rec(`l${k}`, `fresh${k}`, 'live')] });
  plain.push(performance.now() - t);
  t = performance.now();
  await box.enqueue({ records: [rec(`u${k}`, `p${k}`, 'urgent')] });
  promoting.push(performance.now() - t);
}
console.log(`enqueue, nothing to promote: ${stats(plain)}`);
console.log(`enqueue, promotes 10 earlier rows: ${stats(promoting)}`);
console.log(`lanes: ${JSON.stringify(box.stats().lanes)}`);

// the first claim reads the lanes from their start (promotions happened): the urgent lane holds
// each urgent row's partition's earlier rows (promoted) before it, then come live rows, then backfill
t = performance.now();
const first = box.claim(500);
const firstMs = ms(t);
const born = (p: string) => first.rows.filter((r) => r.id.startsWith(p)).length;
console.log(
  `first claim(500): ${firstMs}; ${born('b')} backfill rows promoted into the urgent lane, ${born('u')} urgent, ${born('l')} live`,
);
await box.ack(first.rows.map((r) => r.id));

// claims draining the backlog: claim, ack, as the relay does
const claims: number[] = [];
for (let k = 0; k < 200; k++) {
  t = performance.now();
  const c = box.claim(500);
  claims.push(performance.now() - t);
  await box.ack(c.rows.map((r) => r.id));
}
console.log(`claim(500) with the backlog behind it: ${stats(claims)}`);

// a live row arriving mid-backlog goes out in the very next claim
await box.enqueue({ records: [rec('late-live', 'fresh-late', 'live')] });
t = performance.now();
const next = box.claim(500);
console.log(`claim after a live row arrived mid-backlog: ${ms(t)}; first row ${next.rows[0]?.id}`);
await box.ack(next.rows.map((r) => r.id));
const st = box.stats();
console.log(
  `left: ${st.pending} rows; stats() ${(() => {
    const s = performance.now();
    for (let k = 0; k < 100; k++) box.stats();
    return `${((performance.now() - s) / 100).toFixed(3)} ms each`;
  })()}`,
);
await box.close();

// what the two lane indexes cost each commit: WAL bytes of a one-row commit (the unit of an ACK's
// wait), with and without them, on the same schema and backlog size, in this run
async function walPerCommit(withIndexes: boolean): Promise<{ bytes: number; times: number[] }> {
  const f = join(dir, `wal-${withIndexes}.db`);
  const w = openOutboxDatabase(f);
  if (!withIndexes) w.exec('DROP INDEX outbox_lane; DROP INDEX outbox_partition_lane;');
  const ins = w.prepare(
    'INSERT INTO outbox (id, type, partition_key, created_at, bytes, payload, record_ids, lane) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)',
  );
  w.exec('BEGIN');
  for (let k = 0; k < 100_000; k++) ins.run(`x${k}`, 'patient', `p${(k * 7919) % 10_000}`, k, 364, payload, k % 3);
  w.exec('COMMIT');
  w.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const { statSync } = await import('node:fs');
  const before = statSync(`${f}-wal`).size;
  const n = 200;
  const times: number[] = [];
  for (let k = 0; k < n; k++) {
    const s = performance.now();
    w.exec('BEGIN IMMEDIATE');
    ins.run(`y${k}`, 'patient', `p${(k * 104729) % 10_000}`, k, 364, payload, 1);
    w.exec('COMMIT');
    times.push(performance.now() - s);
  }
  const bytes = (statSync(`${f}-wal`).size - before) / n;
  w.close();
  return { bytes, times };
}
const withIdx = await walPerCommit(true);
const without = await walPerCommit(false);
console.log(
  `WAL bytes per one-row commit (100k rows queued): ${withIdx.bytes.toFixed(0)} with the lane indexes, ${without.bytes.toFixed(0)} without (${(withIdx.bytes / without.bytes).toFixed(2)}x)`,
);
console.log(`one-row commit (synchronous FULL) with the lane indexes: ${stats(withIdx.times)}`);
console.log(`one-row commit (synchronous FULL) without them: ${stats(without.times)}`);
rmSync(dir, { recursive: true, force: true });
