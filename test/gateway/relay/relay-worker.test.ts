import { describe, expect, it } from 'vitest';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createManualClock, systemClock } from '../../../gateway/clock.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createMetrics } from '../../../gateway/metrics.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { createRelayWorker } from '../../../gateway/relay/relay-worker.ts';
import { backoffDelay } from '../../../gateway/relay/backoff.ts';
import { GatewayError } from '../../../gateway/errors.ts';
import { batchRecords, type DeliveryResult, type RecordBatch, type Sink } from '../../../gateway/sinks/sink.ts';
import { waitFor } from '../../support/net.ts';

const sealer = createRecordSealer(Buffer.alloc(32, 7));

/** A scripted sink: each deliver() takes the next behaviour (then succeeds). */
function scriptedSink(script: Array<'ok' | GatewayError | ((b: RecordBatch) => DeliveryResult)> = [], delayMs = 0) {
  const batches: RecordBatch[] = [];
  const sink: Sink & { batches: RecordBatch[] } = {
    kind: 'test',
    batches,
    async start() {},
    async stop() {},
    async deliver(b) {
      batches.push(b);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      const step = script.shift() ?? 'ok';
      if (step === 'ok') return { rejected: [] };
      if (step instanceof GatewayError) throw step;
      return step(b);
    },
    health: () => ({ connected: true }),
  };
  return sink;
}

async function setup(
  sink: Sink,
  o: { maxInFlight?: number; batchSize?: number; lingerMs?: number; heldBack?: () => boolean; maxDeadLetterBytes?: number } = {},
) {
  const memory = createMemoryOutbox({ maxBytes: 1 << 24, maxDeadLetterBytes: o.maxDeadLetterBytes, clock: systemClock });
  await memory.open();
  // a forced answer to "were rows held back?" on every claim
  const heldBack = o.heldBack;
  const outbox = { ...memory, ...(heldBack ? { claim: (n: number) => ({ ...memory.claim(n), heldBack: heldBack() }) } : {}) };
  const relay = createRelayWorker({
    outbox,
    sink,
    sealer,
    clock: systemClock,
    logger: createSilentLogger(),
    bus: createEventBus(),
    metrics: createMetrics(),
    batchSize: o.batchSize ?? 3,
    maxInFlight: o.maxInFlight ?? 2,
    backoffInitialMs: 10,
    backoffMaxMs: 40,
    idlePollMs: o.lingerMs ? 60_000 : 20,
    lingerMs: o.lingerMs,
  });
  const put = async (id: string, patient: string) => {
    const rec = { id, type: 'patient', partitionKey: patient, sealed: sealer.seal(id, Buffer.from(JSON.stringify({ id, patient }))) };
    await outbox.enqueue({ records: [rec] });
    relay.notify();
  };
  return { outbox, relay, put };
}

const delivered = (s: { batches: RecordBatch[] }) => s.batches.flatMap((b) => b.ids);

describe('relay worker', () => {
  /** A sink whose deliveries finish only when the test says so. */
  function gatedSink() {
    const batches: RecordBatch[] = [];
    const gates: Array<() => void> = [];
    const sink: Sink & { batches: RecordBatch[]; release(): void } = {
      kind: 'test',
      batches,
      async start() {},
      async stop() {},
      async deliver(b) {
        batches.push(b);
        await new Promise<void>((r) => gates.push(r));
        return { rejected: [] };
      },
      health: () => ({ connected: true }),
      release: () => gates.shift()?.(),
    };
    return sink;
  }

  for (const heldBack of [false, true]) {
    it(
      heldBack
        ? 'after a short batch, claims at once when the outbox held rows back behind it (a patient in flight)'
        : 'after a short batch with nothing held back, gathers for the linger time instead of claiming per message',
      async () => {
        const sink = gatedSink();
        const { outbox, relay } = await setup(sink, { lingerMs: 60_000, heldBack: () => heldBack });
        const rec = (id: string) => ({
          id,
          type: 'patient',
          partitionKey: 'P',
          sealed: sealer.seal(id, Buffer.from(JSON.stringify({ id }))),
        });
        await outbox.enqueue({ records: [rec('p0')] });
        await relay.start();
        await waitFor(() => sink.batches.length === 1, 2000, 'first batch');
        await outbox.enqueue({ records: [rec('p1')] });
        sink.release();
        if (heldBack) {
          await waitFor(() => sink.batches.length === 2, 2000, 'the held-back row claimed when the batch finished');
          expect(delivered(sink)).toEqual(['p0', 'p1']);
        } else {
          // the linger is a minute: a re-claim per finished batch would have sent p1 within milliseconds
          await new Promise((r) => setTimeout(r, 300));
          expect(delivered(sink)).toEqual(['p0']);
        }
        sink.release();
        await relay.stop();
      },
    );
  }

  it('takes a backlog of bundles in batches of at most batchSize records, claiming again at once (not after the linger) while batches fill', async () => {
    const sink = scriptedSink();
    const { outbox, relay } = await setup(sink, { batchSize: 5, maxInFlight: 1, lingerMs: 60_000 });
    for (let i = 0; i < 6; i++) {
      const ids = [`p${i}`, `c${i}`, `v${i}`];
      const id = `${ids[0]}+3`;
      await outbox.enqueue({
        records: [
          {
            id,
            type: 'bundle',
            partitionKey: `P${i}`,
            sealed: sealer.seal(id, Buffer.from(ids.map((x) => JSON.stringify({ id: x })).join('\n'))),
            recordIds: ids,
          },
        ],
      });
    }
    await relay.start();
    // a minute's linger: only claims made at once can deliver all six within the wait
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight === 0, 3000, 'backlog drained');
    expect(sink.batches.map((b) => b.ids.length)).toEqual([3, 3, 3, 3, 3, 3]);
    await relay.stop();
  });

  it('delivers everything and deletes rows only after the sink resolves', async () => {
    const sink = scriptedSink([], 20);
    const { outbox, relay, put } = await setup(sink);
    await relay.start();
    for (let i = 0; i < 10; i++) await put(`r${i}`, `p${i}`);
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight === 0, 5000, 'drain');
    expect(new Set(delivered(sink))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `r${i}`)));
    await relay.stop();
  });

  it('keeps rows and retries with backoff on transient and ambiguous errors', async () => {
    const sink = scriptedSink([new GatewayError('GW_SINK_UNREACHABLE', 'down'), new GatewayError('GW_SINK_TIMEOUT', 'no ack'), 'ok']);
    const { outbox, relay, put } = await setup(sink);
    await put('a', 'P');
    await relay.start();
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight + outbox.stats().waitingRetry === 0, 5000, 'drain');
    expect(sink.batches).toHaveLength(3);
    expect(sink.batches.every((b) => b.batchId === sink.batches[0].batchId)).toBe(true);
    expect(relay.health().consecutiveFailures).toBe(0);
    await relay.stop();
  });

  it('dead-letters a batch the cloud rejects permanently, and single records it rejects', async () => {
    const sink = scriptedSink([new GatewayError('GW_SINK_REJECTED', '400'), (b) => ({ rejected: [{ id: b.ids[0], reason: 'schema' }] })]);
    const { outbox, relay, put } = await setup(sink, { batchSize: 2, maxInFlight: 1 });
    await put('a', 'P1');
    await put('b', 'P2');
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 2, 5000, 'first batch dead-lettered');
    await put('c', 'P3');
    await put('d', 'P4');
    await waitFor(() => outbox.stats().deadLetters === 3 && outbox.stats().pending + outbox.stats().inFlight === 0, 5000, 'second batch');
    expect(outbox.getDeadLetter('c')).toMatchObject({ code: 'GW_SINK_REJECTED', reason: 'schema' });
    await relay.stop();
  });

  const bundleOf = (ids: string[], patient: string) => {
    const id = `${ids[0]}+${ids.length}`;
    const json = ids.map((x) => JSON.stringify({ id: x, type: x.startsWith('c') ? 'coverage' : 'patient', patient })).join('\n');
    return { id, type: 'bundle', partitionKey: patient, sealed: sealer.seal(id, Buffer.from(json)), recordIds: ids };
  };

  it("sends a bundle's records to the cloud one by one, acks the bundle, and moves only a refused record to dead letters, sealed on its own", async () => {
    const sink = scriptedSink([
      'ok',
      (b) => ({ rejected: [{ id: b.ids[1], reason: 'bad coverage' }] }),
      new GatewayError('GW_SINK_UNREACHABLE', 'down'),
      'ok',
    ]);
    const { outbox, relay } = await setup(sink, { batchSize: 5, maxInFlight: 1 });
    const putBundle = async (ids: string[], patient: string) => {
      await outbox.enqueue({ records: [bundleOf(ids, patient)] });
      relay.notify();
    };
    await putBundle(['p1', 'c1', 'v1'], 'P1');
    await relay.start();
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight === 0, 5000, 'first bundle');
    // the cloud got three records, as text; the batch id comes from the record ids
    expect(sink.batches[0].ids).toEqual(['p1', 'c1', 'v1']);
    expect(batchRecords(sink.batches[0]).map((r) => r.id)).toEqual(['p1', 'c1', 'v1']);
    expect(relay.health().lastDeliveryAt).not.toBeNull();
    // one record of the next bundle refused: that record alone goes to dead letters, the bundle is acked
    await putBundle(['p2', 'c2'], 'P2');
    await waitFor(() => outbox.stats().deadLetters === 1 && outbox.stats().inFlight === 0, 5000, 'refused record');
    const dl = outbox.getDeadLetter('c2')!;
    expect(dl).toMatchObject({
      kind: 'record',
      code: 'GW_SINK_REJECTED',
      reason: 'bad coverage',
      recordType: 'coverage',
      partitionKey: 'P2',
    });
    expect(dl.recordIds).toBeUndefined();
    expect(JSON.parse(sealer.open('c2', dl.sealed).toString())).toEqual({ id: 'c2', type: 'coverage', patient: 'P2' });
    expect(outbox.getDeadLetter('p2+2')).toBeUndefined();
    // a failed delivery retries the bundle (by its row id), then delivers it
    await putBundle(['p3', 'c3'], 'P3');
    await waitFor(
      () => sink.batches.length === 4 && outbox.stats().pending + outbox.stats().inFlight + outbox.stats().waitingRetry === 0,
      5000,
      'retried bundle',
    );
    expect(sink.batches[3].ids).toEqual(['p3', 'c3']);
    expect(outbox.stats()).toMatchObject({ deadLetters: 1, bytes: dl.sealed.byteLength + 64 });
    await relay.stop();
  });

  it('moves a bundle whole when its refused record cannot be stored alone (dead letters at their cap)', async () => {
    const sink = scriptedSink([(b) => ({ rejected: [{ id: b.ids[1], reason: 'bad coverage' }] })]);
    const { outbox, relay } = await setup(sink, { maxDeadLetterBytes: 1 });
    await outbox.enqueue({ records: [bundleOf(['p1', 'c1'], 'P1')] });
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 1, 5000, 'bundle moved');
    expect(outbox.getDeadLetter('p1+2')).toMatchObject({ code: 'GW_SINK_REJECTED', reason: 'c1: bad coverage', recordIds: ['p1', 'c1'] });
    expect(outbox.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    await relay.stop();
  });

  it("stores none of a bundle's refused records alone when the dead letters can take only some: the bundle moves whole, so a replay sends each record once", async () => {
    const sink = scriptedSink([
      (b) => ({
        rejected: [
          { id: b.ids[1], reason: 'bad coverage' },
          { id: b.ids[2], reason: 'bad provider' },
        ],
      }),
    ]);
    // room for one refused record sealed alone (~180 bytes with the entry overhead), not two
    const { outbox, relay } = await setup(sink, { maxDeadLetterBytes: 250 });
    await outbox.enqueue({ records: [bundleOf(['p1', 'c1', 'v1'], 'P1')] });
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 1 && outbox.stats().inFlight === 0, 5000, 'bundle moved');
    expect(outbox.getDeadLetter('c1')).toBeUndefined();
    expect(outbox.getDeadLetter('v1')).toBeUndefined();
    expect(outbox.getDeadLetter('p1+3')).toMatchObject({ reason: 'c1: bad coverage; v1: bad provider', recordIds: ['p1', 'c1', 'v1'] });
    expect(outbox.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    await relay.stop();
  });

  it('dead-letters a bundle whose sealed text does not hold as many records as it names', async () => {
    const sink = scriptedSink();
    const { outbox, relay } = await setup(sink);
    await outbox.enqueue({
      records: [
        {
          id: 'x+2',
          type: 'bundle',
          partitionKey: 'P',
          sealed: sealer.seal('x+2', Buffer.from(JSON.stringify({ id: 'x' }))),
          recordIds: ['x', 'y'],
        },
      ],
    });
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 1, 5000, 'dead-lettered');
    expect(outbox.getDeadLetter('x+2')).toMatchObject({
      code: 'GW_RECORD_UNREADABLE',
      reason: 'bundle opens to 1 records but its row names 2; kept as it was, not sent',
    });
    expect(sink.batches).toHaveLength(0);
    await relay.stop();
  });

  it("delivers one patient's records in the order they were accepted, even across failures", async () => {
    const script: Array<'ok' | GatewayError> = [];
    for (let i = 0; i < 30; i++) script.push(i % 4 === 1 ? new GatewayError('GW_SINK_TIMEOUT', 'x') : 'ok');
    const sink = scriptedSink(script, 2);
    const { outbox, relay, put } = await setup(sink, { batchSize: 2, maxInFlight: 3 });
    await relay.start();
    for (let i = 0; i < 40; i++) await put(`r${String(i).padStart(2, '0')}`, `P${i % 3}`);
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight + outbox.stats().waitingRetry === 0, 10_000, 'drain');
    // first successful delivery of each record, per patient, must follow acceptance order
    const okBatches = sink.batches.filter((_b, i) => i >= 30 || !(i % 4 === 1));
    const firstSeen: string[] = [];
    for (const b of okBatches) for (const id of b.ids) if (!firstSeen.includes(id)) firstSeen.push(id);
    for (let p = 0; p < 3; p++) {
      const mine = firstSeen.filter((id) => Number(id.slice(1)) % 3 === p);
      expect(mine).toEqual([...mine].sort());
      expect(mine).toHaveLength(Math.ceil((40 - p) / 3));
    }
    await relay.stop();
  });

  it('never has two batches of one patient in flight at once', async () => {
    let inflight = 0;
    let maxSeenSamePatient = 0;
    const active = new Map<string, number>();
    const sink: Sink = {
      kind: 'probe',
      async start() {},
      async stop() {},
      health: () => ({ connected: true }),
      async deliver(b) {
        inflight++;
        const parts = new Set(batchRecords(b).map((r) => (r as unknown as { patient: string }).patient));
        for (const p of parts) {
          active.set(p, (active.get(p) ?? 0) + 1);
          maxSeenSamePatient = Math.max(maxSeenSamePatient, active.get(p)!);
        }
        await new Promise((r) => setTimeout(r, 5));
        for (const p of parts) active.set(p, active.get(p)! - 1);
        inflight--;
        return { rejected: [] };
      },
    };
    const { outbox, relay, put } = await setup(sink, { batchSize: 2, maxInFlight: 4 });
    for (let i = 0; i < 40; i++) await put(`x${i}`, `P${i % 2}`);
    await relay.start();
    await waitFor(() => outbox.stats().pending + outbox.stats().inFlight === 0, 10_000, 'drain');
    expect(maxSeenSamePatient).toBe(1);
    expect(inflight).toBe(0);
    await relay.stop();
  });

  it('moves a record it cannot open (damaged, or sealed with another key) to dead letters and delivers the rest', async () => {
    const sink = scriptedSink();
    const { outbox, relay, put } = await setup(sink);
    await put('good', 'P1');
    await outbox.enqueue({
      records: [
        { id: 'bad', type: 'patient', partitionKey: 'P2', sealed: createRecordSealer(Buffer.alloc(32, 8)).seal('bad', Buffer.from('{}')) },
      ],
    });
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 1 && outbox.stats().pending + outbox.stats().inFlight === 0, 5000, 'settled');
    expect(outbox.getDeadLetter('bad')).toMatchObject({ code: 'GW_RECORD_UNREADABLE' });
    expect(delivered(sink)).toEqual(['good']);
    await relay.stop();
  });

  it('keeps a row it cannot open queued, unsent, when the dead letters cannot be written, and quarantines it on a later claim', async () => {
    const sink = scriptedSink();
    const memory = createMemoryOutbox({ maxBytes: 1 << 24, clock: systemClock });
    await memory.open();
    let deadLetterFails = 1;
    const calls: string[] = [];
    const outbox = {
      ...memory,
      async deadLetter(ids: readonly string[], code: string, reason: string) {
        calls.push(`deadLetter ${ids.join(',')} ${code}`);
        if (deadLetterFails-- > 0) throw new GatewayError('GW_OUTBOX_IO', 'disk full');
        await memory.deadLetter(ids, code, reason);
      },
      async retryLater(ids: readonly string[], at: number, error: string) {
        calls.push(`retryLater ${ids.join(',')} ${error}`);
        await memory.retryLater(ids, at, error);
      },
    };
    const relay = createRelayWorker({
      outbox,
      sink,
      sealer,
      clock: systemClock,
      logger: createSilentLogger(),
      bus: createEventBus(),
      metrics: createMetrics(),
      batchSize: 3,
      maxInFlight: 1,
      backoffInitialMs: 10,
      backoffMaxMs: 40,
      idlePollMs: 20,
    });
    await outbox.enqueue({
      records: [
        { id: 'bad', type: 'patient', partitionKey: 'P2', sealed: createRecordSealer(Buffer.alloc(32, 8)).seal('bad', Buffer.from('{}')) },
      ],
    });
    await relay.start();
    await waitFor(() => outbox.stats().deadLetters === 1, 5000, 'quarantined on the second claim');
    await relay.stop();
    expect(calls).toEqual([
      'deadLetter bad GW_RECORD_UNREADABLE',
      'retryLater bad GW_RECORD_UNREADABLE',
      'deadLetter bad GW_RECORD_UNREADABLE',
    ]);
    expect(sink.batches).toHaveLength(0);
    expect(relay.health()).toMatchObject({ unreadableRows: 1, unreadableRecords: 1 });
  });

  it('computes capped exponential backoff with jitter', () => {
    expect(backoffDelay(0, { initialMs: 100, maxMs: 1000 })).toBe(0);
    expect(backoffDelay(1, { initialMs: 100, maxMs: 1000, random: () => 0 })).toBe(50);
    expect(backoffDelay(1, { initialMs: 100, maxMs: 1000, random: () => 1 })).toBe(100);
    expect(backoffDelay(3, { initialMs: 100, maxMs: 1000, random: () => 1 })).toBe(400);
    expect(backoffDelay(30, { initialMs: 100, maxMs: 1000, random: () => 0.5 })).toBe(750);
  });

  it("waits out a failed delivery's back-off on its clock: the rows go again only when the clock reaches their retry time", async () => {
    const clock = createManualClock();
    const sink = scriptedSink([new GatewayError('GW_SINK_UNREACHABLE', 'down')]);
    const outbox = createMemoryOutbox({ maxBytes: 1 << 24, clock });
    await outbox.open();
    const relay = createRelayWorker({
      outbox,
      sink,
      sealer,
      clock,
      logger: createSilentLogger(),
      bus: createEventBus(),
      metrics: createMetrics(),
      batchSize: 3,
      maxInFlight: 1,
      backoffInitialMs: 1000,
      backoffMaxMs: 1000,
      idlePollMs: 60_000,
      random: () => 1,
    });
    await outbox.enqueue({
      records: [{ id: 'a', type: 'patient', partitionKey: 'P', sealed: sealer.seal('a', Buffer.from('{"id":"a"}')) }],
    });
    const t0 = clock.now();
    await relay.start();
    await waitFor(
      () => relay.health().consecutiveFailures === 1 && clock.nextDue() === t0 + 1000,
      2000,
      'the failed delivery and its pause on the clock',
    );
    expect(relay.health().pausedUntil).toBe(t0 + 1000);
    clock.advance(999);
    expect(sink.batches).toHaveLength(1);
    clock.advance(1);
    await waitFor(() => outbox.stats().bytes === 0, 2000, 'the retried delivery acked');
    expect(delivered(sink)).toEqual(['a', 'a']);
    expect(relay.health()).toMatchObject({ consecutiveFailures: 0, pausedUntil: null });
    await relay.stop();
    // stop leaves no timer of the relay's on the clock
    expect(clock.pending()).toBe(0);
  });
});
