/**
 * What every Sink must do (gateway/sinks/sink.ts, and how the relay uses it: one deliver per
 * claimed batch, its outcome decides delete / dead letter / retry), run against each
 * implementation by its own test file:
 * - `kind` is set; `start()` is idempotent (at once, or later) and a batch after it is received once;
 * - a send before start settles, never hangs and is never `permanent` (records would be
 *   dead-lettered for a start that had not happened): sinks that connect refuse it as transient,
 *   sinks that open per send may deliver it;
 * - a batch yields exactly one outcome per record id: each id is either in `rejected` (once) or
 *   was received, never both, never neither;
 * - a stop while a send is outstanding settles it by the time stop resolves: rejected with a
 *   transient or ambiguous GatewayError (the relay resends), or — for a sink whose send is local
 *   I/O that stop waits for — delivered, and then really received;
 * - a send after stop is refused (transient), not hung and not delivered;
 * - `stop()` is idempotent; a sink that can restart delivers again after a new start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors.ts';
import type { DeliveryResult, RecordBatch, Sink } from '../../gateway/sinks/sink.ts';

export interface SinkFixture {
  sink: Sink;
  /** Resolves once a started sink can send (e.g. its broker connection is up); default: at once. */
  ready?(): Promise<void>;
  /** The record ids the receiving end holds (the file's lines, the cloud's store, the PMS's messages). */
  received(): Promise<Set<string>>;
  /** The receiving end takes the next sends but does not answer until `release` (or cleanup). */
  stall?(): { release(): void };
  /** The receiving end refuses these record ids permanently (a reject ack, an AE). */
  refuse?(ids: readonly string[]): void;
  cleanup(): Promise<void>;
}

export interface SinkSubject {
  name: string;
  kind: string;
  make(): Promise<SinkFixture>;
  /** A batch of `n` fresh records for this sink; ids are unique per call. */
  batch(n: number): RecordBatch;
  /** `refuses`: a send before start is refused (transient); `opens`: it may deliver (the sink opens per send). */
  beforeStart: 'refuses' | 'opens';
  /** `rejects`: a send outstanding at stop is rejected; `completes`: stop waits for it and it is delivered. */
  atStop: 'rejects' | 'completes';
  /** Whether start() after stop() works again (false: say why in the subject's file). */
  restartable: boolean;
}

type Settled = { ok: true; value: DeliveryResult } | { ok: false; error: unknown };

function track(p: Promise<DeliveryResult>): { settled(): Settled | undefined; done: Promise<Settled> } {
  let s: Settled | undefined;
  const done = p.then(
    (value) => (s = { ok: true, value }),
    (error: unknown) => (s = { ok: false, error }),
  );
  return { settled: () => s, done };
}

/** Resolves after the event loop has run once more (lets settled callbacks land), bounded. */
const turn = () => new Promise<void>((r) => setImmediate(r));

function expectRetryable(s: Settled, what: string): void {
  expect(s.ok, `${what}: expected a refusal, got delivered`).toBe(false);
  if (s.ok) return;
  expect(s.error, `${what}: not a GatewayError: ${String(s.error)}`).toBeInstanceOf(GatewayError);
  expect((s.error as GatewayError).retry, `${what}: ${(s.error as GatewayError).code} would dead-letter the records`).not.toBe('permanent');
}

/** Each id of the batch has one outcome: rejected once, or received; never both, never neither. */
async function expectOneOutcomeEach(f: SinkFixture, batch: RecordBatch, r: DeliveryResult): Promise<void> {
  const got = await f.received();
  const rejected = r.rejected.map((x) => x.id);
  expect(new Set(rejected).size).toBe(rejected.length);
  for (const id of rejected) {
    expect(batch.ids).toContain(id);
    expect(got.has(id), `${id} both rejected and received`).toBe(false);
  }
  for (const id of batch.ids) if (!rejected.includes(id)) expect(got.has(id), `${id} neither rejected nor received`).toBe(true);
}

export function sinkContract(s: SinkSubject): void {
  describe(`Sink contract: ${s.name}`, () => {
    const open: SinkFixture[] = [];
    afterEach(async () => {
      for (const f of open.splice(0)) await f.cleanup();
    });
    const make = async () => {
      const f = await s.make();
      open.push(f);
      return f;
    };

    it('has its kind, and health() answers before start and after stop', async () => {
      const f = await make();
      expect(f.sink.kind).toBe(s.kind);
      expect(typeof f.sink.health().connected).toBe('boolean');
      await f.sink.start();
      await f.sink.stop();
      expect(typeof f.sink.health().connected).toBe('boolean');
    });

    it('start() is idempotent: after three starts a batch is received once', async () => {
      const f = await make();
      await Promise.all([f.sink.start(), f.sink.start()]);
      await f.ready?.();
      const b = s.batch(3);
      const r = await f.sink.deliver(b);
      expect(r.rejected).toEqual([]);
      await expectOneOutcomeEach(f, b, r);
      await Promise.all([f.sink.stop(), f.sink.stop()]);
      await f.sink.stop();
    });

    it('a send before start settles and is never permanent', async () => {
      const f = await make();
      const b = s.batch(1);
      const t = track(f.sink.deliver(b));
      const out = await t.done;
      if (s.beforeStart === 'refuses') expectRetryable(out, 'send before start');
      else if (out.ok) await expectOneOutcomeEach(f, b, out.value);
      else expectRetryable(out, 'send before start');
    });

    it('a batch yields exactly one outcome per record id, with the refused ones in rejected', async () => {
      const f = await make();
      await f.sink.start();
      await f.ready?.();
      const b = s.batch(4);
      if (f.refuse) f.refuse([b.ids[1], b.ids[3]]);
      const r = await f.sink.deliver(b);
      await expectOneOutcomeEach(f, b, r);
      if (f.refuse) expect(r.rejected.map((x) => x.id).sort()).toEqual([b.ids[1], b.ids[3]].sort());
      await f.sink.stop();
    });

    it('a stop right after a send settles the send by the time stop resolves, never as a loss', async () => {
      const f = await make();
      await f.sink.start();
      await f.ready?.();
      const b = s.batch(2);
      const t = track(f.sink.deliver(b));
      await f.sink.stop();
      await turn();
      const out = t.settled();
      expect(out, 'the send was still outstanding after stop() resolved').toBeDefined();
      if (out!.ok) await expectOneOutcomeEach(f, b, out!.value);
      else expectRetryable(out!, 'send cut by stop');
    });

    it('a stop while the receiver holds its answer settles the send as not delivered (or, for local I/O, delivered)', async (ctx) => {
      const f = await make();
      if (!f.stall) {
        ctx.skip();
        return;
      }
      await f.sink.start();
      await f.ready?.();
      const held = f.stall();
      const b = s.batch(2);
      const t = track(f.sink.deliver(b));
      // the send is outstanding: the receiver has it and does not answer
      for (let i = 0; i < 20 && !t.settled(); i++) await turn();
      expect(t.settled(), 'the send settled although the receiver never answered').toBeUndefined();
      if (s.atStop === 'rejects') {
        await f.sink.stop();
        await turn();
        const out = t.settled();
        held.release();
        expect(out, 'the send was still outstanding after stop() resolved').toBeDefined();
        expectRetryable(out!, 'send outstanding at stop');
        return;
      }
      // local I/O: stop waits for the write in progress, which then completes and is received
      let stopped = false;
      const stopping = f.sink.stop().then(() => {
        stopped = true;
      });
      for (let i = 0; i < 20; i++) await turn();
      expect(stopped, 'stop() resolved while a write was still in progress').toBe(false);
      held.release();
      await stopping;
      await turn();
      const out = t.settled();
      expect(out, 'the send was still outstanding after stop() resolved').toBeDefined();
      expect(out!.ok, 'the write stop waited for was not reported delivered').toBe(true);
      if (out!.ok) await expectOneOutcomeEach(f, b, out!.value);
    });

    it('a send after stop is refused as retryable, and stop() is idempotent', async () => {
      const f = await make();
      await f.sink.start();
      await f.sink.stop();
      await f.sink.stop();
      const b = s.batch(1);
      const out = await track(f.sink.deliver(b)).done;
      expectRetryable(out, 'send after stop');
      expect((await f.received()).has(b.ids[0])).toBe(false);
    });

    it('delivers again after stop and a new start', async (ctx) => {
      if (!s.restartable) {
        ctx.skip();
        return;
      }
      const f = await make();
      await f.sink.start();
      await f.sink.stop();
      await f.sink.start();
      await f.ready?.();
      const b = s.batch(2);
      const r = await f.sink.deliver(b);
      expect(r.rejected).toEqual([]);
      await expectOneOutcomeEach(f, b, r);
      await f.sink.stop();
    });
  });
}
