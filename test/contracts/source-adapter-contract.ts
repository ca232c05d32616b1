/**
 * What every SourceAdapter must do (adapters/contracts.ts; CONVENTIONS "Lifecycle"), run against
 * each implementation by its own test file (MQTT.js's store contract is the model):
 * - `health()` is `down` before start and after stop; `stop()` before start is harmless.
 * - a second `start()` (at once, or later) starts no second loop: each input is taken once, and
 *   `stop()` leaves no timer of the adapter's clock behind (the database source's bug, issue 13).
 * - `stop()` is idempotent; once it resolves nothing is handed to the context until a new start.
 * - a start that fails rejects (the composition root reports it and retries), leaves the adapter
 *   stopped, and a later start succeeds once the cause is gone.
 *
 * The context records every intake and intakePage call and which input (a tag the subject puts in
 * each input: `CONTRACT-<n>`) it carried, so the suite counts takes exactly.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { IntakeContext, IntakeResult, PageIntakeResult, RawInput, RawPage, SourceAdapter } from '../../adapters/contracts.ts';
import type { ManualClock } from '../../gateway/clock.ts';
import { waitFor } from '../support/net.ts';

/** The tag of input `n`, as the subject writes it into the input (a control id, a column value, a file's content). */
export const tagOf = (n: number) => `CONTRACT-${n}`;

export interface SourceFixture {
  adapter: SourceAdapter;
  /** Puts input `n` at the source (a message sent, a row inserted, a file written), carrying tagOf(n). */
  feed(n: number): Promise<void>;
  /** Makes the adapter look at its source now (e.g. advances its manual clock past a poll interval). */
  kick?(): void;
  /** The adapter's clock, when it takes timers from one: stop() must leave none pending. */
  clock?: ManualClock;
  cleanup(): Promise<void>;
}

export interface FailingFixture {
  adapter: SourceAdapter;
  /** Removes the cause of the failure (frees the port, creates the folder …). */
  fix(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface SourceSubject {
  name: string;
  make(): Promise<SourceFixture>;
  /**
   * `queued`: input fed while the adapter is stopped waits at the source (a row, a file) and is
   * taken after the next start; `refused`: the source refuses it while stopped (a listener).
   */
  whileStopped: 'queued' | 'refused';
  /** An adapter whose start fails for a cause `fix()` removes. */
  failing(): Promise<FailingFixture>;
  /** Each case's time limit, for sources whose every listing is slow (default: vitest's). */
  timeoutMs?: number;
}

export interface RecordingContext extends IntakeContext {
  /** How many intake/intakePage calls carried input `n`. */
  taken(n: number): number;
  /** Calls that arrived while the suite held the adapter stopped (must stay empty). */
  whileStopped: string[];
  stopped: boolean;
}

const TAG = /CONTRACT-(\d+)/g;

export function recordingContext(): RecordingContext {
  const counts = new Map<number, number>();
  const cursors = new Map<string, string>();
  const whileStopped: string[] = [];
  const ctx: RecordingContext = {
    stopped: false,
    whileStopped,
    taken: (n) => counts.get(n) ?? 0,
    logger: pino({ level: 'silent' }),
    cursor: (key) => cursors.get(key),
    knownRows: () => [],
    async intake(raw: RawInput): Promise<IntakeResult> {
      note(raw.text, 'intake');
      return { status: 'accepted', recordIds: [] };
    },
    async intakePage(page: RawPage): Promise<PageIntakeResult> {
      note(page.rows.map((r) => JSON.stringify(r.data)).join('\n'), 'intakePage');
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { status: 'accepted', written: page.rows.length, unchanged: 0, deadLettered: 0 };
    },
  };
  function note(text: string, how: string): void {
    const tags = new Set([...text.matchAll(TAG)].map((m) => Number(m[1])));
    if (ctx.stopped) whileStopped.push(`${how} ${[...tags].map(tagOf).join(',') || '(no input tag)'}`);
    for (const n of tags) counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return ctx;
}

/** Waits until input `n` has been taken at least once, kicking the adapter's poll as it goes. */
async function untilTaken(f: SourceFixture, ctx: RecordingContext, n: number, what: string, limitMs: number): Promise<void> {
  await waitFor(
    () => {
      f.kick?.();
      return ctx.taken(n) >= 1;
    },
    limitMs,
    `${what}: input ${tagOf(n)} taken`,
  );
}

export function sourceAdapterContract(s: SourceSubject): void {
  describe(`SourceAdapter contract: ${s.name}`, () => {
    const limit = s.timeoutMs;
    const take = (f: SourceFixture, ctx: RecordingContext, n: number, what: string) =>
      untilTaken(f, ctx, n, what, limit ? Math.floor(limit / 3) : 20_000);
    const open: Array<{ cleanup(): Promise<void> }> = [];
    afterEach(async () => {
      for (const f of open.splice(0).reverse()) await f.cleanup();
    });
    const make = async () => {
      const f = await s.make();
      open.push(f);
      return f;
    };

    it('is down before start, and a stop() before start resolves and leaves it down', { timeout: limit }, async () => {
      const f = await make();
      expect(f.adapter.health().status).toBe('down');
      await f.adapter.stop();
      expect(f.adapter.health().status).toBe('down');
      expect(typeof f.adapter.id).toBe('string');
      expect(f.adapter.id.length).toBeGreaterThan(0);
    });

    it('takes input once started, and is not down while running', { timeout: limit }, async () => {
      const f = await make();
      const ctx = recordingContext();
      if (s.whileStopped === 'queued') await f.feed(1);
      await f.adapter.start(ctx);
      expect(f.adapter.health().status).not.toBe('down');
      if (s.whileStopped === 'refused') await f.feed(1);
      await take(f, ctx, 1, 'after start');
      await f.feed(2);
      await take(f, ctx, 2, 'while running');
      await f.adapter.stop();
      expect(ctx.taken(1)).toBe(1);
      expect(ctx.taken(2)).toBe(1);
    });

    it('starts no second loop on a second start(): each input is taken once and stop() leaves no timer', { timeout: limit }, async () => {
      const f = await make();
      const ctx = recordingContext();
      if (s.whileStopped === 'queued') await f.feed(1);
      await Promise.all([f.adapter.start(ctx), f.adapter.start(ctx)]);
      await f.adapter.start(ctx);
      if (s.whileStopped === 'refused') await f.feed(1);
      await take(f, ctx, 1, 'after three starts');
      await f.feed(2);
      await take(f, ctx, 2, 'after three starts');
      await f.adapter.stop();
      expect(ctx.taken(1)).toBe(1);
      expect(ctx.taken(2)).toBe(1);
      if (f.clock) expect(f.clock.pending()).toBe(0);
      expect(f.adapter.health().status).toBe('down');
    });

    it('stop() is idempotent and nothing is taken after it resolves; a new start takes up again', { timeout: limit }, async () => {
      const f = await make();
      const ctx = recordingContext();
      await f.adapter.start(ctx);
      await f.feed(1);
      await take(f, ctx, 1, 'before the stop');
      await Promise.all([f.adapter.stop(), f.adapter.stop()]);
      await f.adapter.stop();
      ctx.stopped = true;
      expect(f.adapter.health().status).toBe('down');
      if (f.clock) expect(f.clock.pending()).toBe(0);
      if (s.whileStopped === 'refused') {
        await expect(f.feed(2)).rejects.toThrow();
      } else {
        await f.feed(2);
        // time passing while stopped wakes nothing
        f.kick?.();
      }
      expect(ctx.whileStopped).toEqual([]);
      ctx.stopped = false;
      await f.adapter.start(ctx);
      expect(f.adapter.health().status).not.toBe('down');
      if (s.whileStopped === 'queued') await take(f, ctx, 2, 'after the restart');
      await f.feed(3);
      await take(f, ctx, 3, 'after the restart');
      await f.adapter.stop();
      expect(ctx.taken(1)).toBe(1);
      expect(ctx.taken(2)).toBe(s.whileStopped === 'queued' ? 1 : 0);
      expect(ctx.taken(3)).toBe(1);
    });

    it('a start that fails rejects and leaves it stopped; a start after the cause is gone succeeds', { timeout: limit }, async () => {
      const f = await s.failing();
      open.push(f);
      const ctx = recordingContext();
      await expect(f.adapter.start(ctx)).rejects.toThrow();
      expect(f.adapter.health().status).toBe('down');
      await f.fix();
      await f.adapter.start(ctx);
      expect(f.adapter.health().status).not.toBe('down');
      await f.adapter.stop();
      expect(f.adapter.health().status).toBe('down');
    });
  });
}
