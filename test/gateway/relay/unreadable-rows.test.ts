/**
 * Rows that do not open (flipped bytes in the outbox file, or sealed under another key) with a real
 * SQLite outbox and the real file sink — the sink that stores sealed rows as they are, which the
 * relay used to hand them to unopened: they are quarantined with GW_RECORD_UNREADABLE, never
 * written, the rest of the batch is delivered, the alert is raised, and the dead letters keep the
 * sealed bytes as they were so a replay under the right key sends them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createAlertBoard } from '../../../gateway/alerts.ts';
import { systemClock } from '../../../gateway/clock.ts';
import { createRecordSealer, type RecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import type { SealedRecord } from '../../../gateway/outbox/outbox.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { createIntakePipeline } from '../../../gateway/pipeline/intake-pipeline.ts';
import { createRelayWorker } from '../../../gateway/relay/relay-worker.ts';
import { createFileSink, fileSinkPath } from '../../../gateway/sinks/file-sink.ts';
import { waitFor } from '../../support/net.ts';

const KEY = Buffer.alloc(32, 11);
const OTHER_KEY = Buffer.alloc(32, 12);
const sealer = createRecordSealer(KEY);
const otherSealer = createRecordSealer(OTHER_KEY);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function record(id: string, s: RecordSealer = sealer): SealedRecord {
  return {
    id,
    type: 'patient',
    partitionKey: `P-${id}`,
    sealed: s.seal(id, JSON.stringify({ id, type: 'patient', pad: 'y'.repeat(200) })),
  };
}

function bundle(ids: string[], s: RecordSealer = sealer): SealedRecord {
  const id = `${ids[0]}+${ids.length}`;
  return {
    id,
    type: 'bundle',
    partitionKey: `P-${id}`,
    recordIds: ids,
    sealed: s.seal(id, ids.map((x) => JSON.stringify({ id: x, type: 'patient', pad: 'z'.repeat(100) })).join('\n')),
  };
}

/** Flips one byte inside a stored sealed blob, in the outbox file itself (the outbox closed: no WAL). */
function flipInFile(file: string, sealed: Uint8Array, at: number): void {
  expect(existsSync(`${file}-wal`) && statSync(`${file}-wal`).size > 0).toBe(false);
  const bytes = readFileSync(file);
  const needle = Buffer.from(sealed).subarray(29, 61);
  const pos = bytes.indexOf(needle);
  expect(pos).toBeGreaterThan(0);
  expect(bytes.lastIndexOf(needle)).toBe(pos);
  bytes[pos + at] ^= 0x5a;
  writeFileSync(file, bytes);
}

async function world(o: { relaySealer?: RecordSealer } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-unreadable-'));
  dirs.push(dir);
  const file = join(dir, 'outbox.db');
  const bus = createEventBus();
  const metrics = createMetrics();
  const logger = createSilentLogger();
  const board = createAlertBoard({ clock: systemClock, logger, bus });
  const outbox = createSqliteOutbox({ file, maxBytes: 1 << 26, clock: systemClock, writer: 'inline' });
  const sinkDir = join(dir, 'outbound');
  const sink = createFileSink({ dir: sinkDir, clock: systemClock });
  const relay = createRelayWorker({
    outbox,
    sink,
    sealer: o.relaySealer ?? sealer,
    clock: systemClock,
    logger,
    bus,
    metrics,
    alerts: board,
    batchSize: 50,
    maxInFlight: 2,
    backoffInitialMs: 10,
    backoffMaxMs: 40,
    idlePollMs: 20,
  });
  const sinkFile = () => fileSinkPath(sinkDir, systemClock.now());
  /** The record ids in the sink's file; every line must parse and open under `s`. */
  const written = (s: RecordSealer = sealer): string[] => {
    if (!existsSync(sinkFile())) return [];
    return readFileSync(sinkFile(), 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        const row = JSON.parse(l) as { id: string; ids?: string[]; sealed: string };
        const text = s.open(row.id, Buffer.from(row.sealed, 'base64')).toString('utf8');
        const ids = text.split('\n').map((t) => (JSON.parse(t) as { id: string }).id);
        expect(ids).toEqual(row.ids ?? [row.id]);
        return ids;
      });
  };
  return { dir, file, bus, metrics, board, outbox, sink, relay, written, logger };
}

const settled = (w: { outbox: { stats(): { pending: number; inFlight: number; waitingRetry: number } } }) => {
  const st = w.outbox.stats();
  return st.pending + st.inFlight + st.waitingRetry === 0;
};

describe('relay: rows that do not open', () => {
  it('quarantines rows with flipped bytes in the outbox file (a bundle whole), never writes them to the file sink, and delivers the rest of the batch', async () => {
    const w = await world();
    await w.outbox.open();
    const rows = [record('r0'), record('r1'), bundle(['b0', 'b1', 'b2']), record('r3'), record('r4'), bundle(['c0', 'c1']), record('r6')];
    await w.outbox.enqueue({ records: rows });
    await w.outbox.close();
    // damage r1 and the first bundle at the start of their ciphertext, r4 deeper in
    const damaged = new Map<string, Buffer>();
    for (const [k, at] of [
      [1, 0],
      [2, 5],
      [4, 31],
    ] as const) {
      flipInFile(w.file, rows[k].sealed, at);
      const b = Buffer.from(rows[k].sealed);
      b[29 + at] ^= 0x5a;
      damaged.set(rows[k].id, b);
    }
    await w.outbox.open();
    await w.sink.start();
    await w.relay.start();
    await waitFor(() => settled(w), 5000, 'settled');
    await w.relay.stop();
    expect(w.written()).toEqual(['r0', 'r3', 'c0', 'c1', 'r6']);
    for (const [id, bytes] of damaged) {
      const dl = w.outbox.getDeadLetter(id)!;
      expect(dl).toMatchObject({
        kind: 'record',
        code: 'GW_RECORD_UNREADABLE',
        reason:
          'sealed bytes failed to open (authentication failed: damaged on the disk, or sealed under another key); kept as they were, not sent',
      });
      // the sealed bytes as they were in the outbox (damaged): never replaced
      expect(Buffer.from(dl.sealed).equals(bytes)).toBe(true);
    }
    expect(w.outbox.getDeadLetter('b0+3')).toMatchObject({ recordIds: ['b0', 'b1', 'b2'], recordType: 'bundle' });
    expect(w.relay.health()).toMatchObject({ unreadableRows: 3, unreadableRecords: 5 });
    expect(w.metrics.counter('ewml_records_dead_lettered_total', { code: 'GW_RECORD_UNREADABLE' })).toBe(5);
    expect(w.metrics.counter('ewml_records_delivered_total', { sink: 'file' })).toBe(5);
    expect(w.board.active.recordsUnreadable).toMatchObject({ code: 'GW_RECORD_UNREADABLE', blocksReady: false });
    expect(w.board.active.recordsUnreadable.detail).toMatch(
      /^3 queued row\(s\) \(5 record\(s\)\) could not be opened .* restore the original \(eyewear-gateway keys import\) and replay the dead letters/,
    );
    expect(w.board.readyBlockers()).toEqual([]);
    expect(w.outbox.stats()).toMatchObject({ pending: 0, inFlight: 0, deadLetters: 3 });
    // it records a past event: a person acknowledges it (POST /alerts/recordsUnreadable/clear)
    expect(w.board.acknowledge('recordsUnreadable')).toBe('cleared');
    expect(w.board.active.recordsUnreadable).toBeUndefined();
    await w.sink.stop();
    await w.outbox.close();
  });

  it('quarantines rows sealed under another key, and a replay after that key is restored delivers them', async () => {
    const w = await world();
    await w.outbox.open();
    const rows = [record('k0'), record('x0', otherSealer), bundle(['x1', 'x2'], otherSealer), record('k1')];
    await w.outbox.enqueue({ records: rows });
    await w.sink.start();
    await w.relay.start();
    await waitFor(() => settled(w), 5000, 'settled');
    await w.relay.stop();
    expect(w.written()).toEqual(['k0', 'k1']);
    expect(w.outbox.getDeadLetter('x0')).toMatchObject({ code: 'GW_RECORD_UNREADABLE' });
    expect(Buffer.from(w.outbox.getDeadLetter('x1+2')!.sealed).equals(Buffer.from(rows[2].sealed))).toBe(true);
    expect(w.board.active.recordsUnreadable.detail).toMatch(/^2 queued row\(s\) \(3 record\(s\)\) could not be opened/);
    await w.sink.stop();

    // the key those rows were sealed under is back: the dead letters replay as they are and go out
    const pipeline = createIntakePipeline({
      codecs: [],
      outbox: w.outbox,
      sealer: otherSealer,
      validator: createRecordValidator(),
      clock: systemClock,
      identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
      logger: w.logger,
      bus: w.bus,
      metrics: w.metrics,
    });
    expect(await pipeline.replay('x0')).toMatchObject({ status: 'accepted' });
    expect(await pipeline.replay('x1+2')).toMatchObject({ status: 'accepted' });
    const restored = createRelayWorker({
      outbox: w.outbox,
      sink: w.sink,
      sealer: otherSealer,
      clock: systemClock,
      logger: w.logger,
      bus: w.bus,
      metrics: createMetrics(),
      alerts: w.board,
      batchSize: 50,
      maxInFlight: 1,
      backoffInitialMs: 10,
      backoffMaxMs: 40,
      idlePollMs: 20,
    });
    await w.sink.start();
    await restored.start();
    await waitFor(() => settled(w) && w.outbox.stats().deadLetters === 0, 5000, 'replayed');
    await restored.stop();
    await w.sink.stop();
    const lines = readFileSync(fileSinkPath(join(w.dir, 'outbound'), systemClock.now()), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string });
    expect(lines.map((l) => l.id)).toEqual(['k0', 'k1', 'x0', 'x1+2']);
    expect(restored.health()).toMatchObject({ unreadableRows: 0 });
    await w.outbox.close();
  });
});
