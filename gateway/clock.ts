/**
 * Time comes from here so tests can fake it: the current instant and one-shot timers.
 *
 * Components that wait (pollers, retries, the relay's back-off, the command processor's
 * retries, supervision restarts) take their timers from the injected clock rather than the
 * global `setTimeout`, so a test drives schedules and windows with {@link createManualClock}
 * instead of waiting for them.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `fn` once after `ms` milliseconds (negative or NaN counts as 0). With `unref`, a
   * pending timer does not keep the process alive (systemClock only; the manual clock never
   * holds the process).
   */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle;
  /** Cancels a timer; a handle already run, already cleared, or `undefined` is ignored. */
  clearTimeout(handle: TimerHandle | undefined): void;
  /**
   * Milliseconds on a clock no one can set (any origin): timers run on it, and a wall-clock jump is
   * `now()` leaving it. Absent: `now()` is taken to be it.
   */
  monotonic?(): number;
}

export interface TimerOptions {
  /** Do not keep the process alive for this timer. */
  unref?: boolean;
}

declare const timerBrand: unique symbol;
/** An opaque timer handle: only the clock that made it can clear it. */
export interface TimerHandle {
  readonly [timerBrand]: true;
}

const delayOf = (ms: number): number => (Number.isFinite(ms) && ms > 0 ? ms : 0);

/** The real clock: `Date.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms, opts) => {
    const t = globalThis.setTimeout(fn, delayOf(ms));
    if (opts?.unref) t.unref();
    return t as unknown as TimerHandle; // the brand only hides Node's Timeout from callers
  },
  clearTimeout: (handle) => {
    if (handle !== undefined) globalThis.clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};

/** A clock tests move by hand. */
export interface ManualClock extends Clock {
  /**
   * Moves time forward by `ms`, running every timer that falls due on the way in due order
   * (ties in the order they were set); `now()` inside a callback is that timer's due time.
   * Timers a callback sets that fall due within the advance run too.
   */
  advance(ms: number): void;
  /** Moves time to `ms` (forward runs due timers as `advance` does; backward runs none). */
  set(ms: number): void;
  /**
   * Sets the wall clock forward or back by `ms` as a person or a time service would: `now()` moves,
   * `monotonic()` does not, and every waiting timer still falls due after the time it had left (as
   * Node's timers, which run on the monotonic clock). Runs no timer.
   */
  jump(ms: number): void;
  /** Time less every jump so far. */
  monotonic(): number;
  /** How many timers are waiting. */
  pending(): number;
  /** When the next timer falls due, or `undefined` when none waits. */
  nextDue(): number | undefined;
}

/** How many timers one advance may run before it is taken to be a timer re-arming itself at 0 ms for ever. */
const MAX_FIRINGS_PER_ADVANCE = 100_000;

export function createManualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let t = start;
  /** Wall-clock jumps so far: monotonic time is `t - jumped`. */
  let jumped = 0;
  let seq = 0;
  const timers = new Map<number, { due: number; seq: number; fn: () => void }>();

  const earliest = (limit: number): number | undefined => {
    let best: number | undefined;
    for (const [id, e] of timers) {
      if (e.due > limit) continue;
      const b = best === undefined ? undefined : timers.get(best);
      if (b === undefined || e.due < b.due || (e.due === b.due && e.seq < b.seq)) best = id;
    }
    return best;
  };

  const runUntil = (target: number) => {
    for (let fired = 0; ; fired++) {
      const id = earliest(target);
      if (id === undefined) break;
      if (fired >= MAX_FIRINGS_PER_ADVANCE) {
        throw new Error(
          `manual clock: more than ${MAX_FIRINGS_PER_ADVANCE} timers fell due in one advance; a callback probably re-arms itself at 0 ms`,
        );
      }
      const e = timers.get(id);
      if (!e) continue;
      timers.delete(id);
      if (e.due > t) t = e.due;
      e.fn();
    }
    if (target > t) t = target;
  };

  return {
    now: () => t,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { due: t + delayOf(ms), seq: id, fn });
      return id as unknown as TimerHandle; // opaque to callers
    },
    clearTimeout: (handle) => {
      if (handle !== undefined) timers.delete(handle as unknown as number);
    },
    advance: (ms) => runUntil(t + delayOf(ms)),
    set: (ms) => {
      if (ms <= t) t = ms;
      else runUntil(ms);
    },
    jump: (ms) => {
      t += ms;
      jumped += ms;
      for (const e of timers.values()) e.due += ms;
    },
    monotonic: () => t - jumped,
    pending: () => timers.size,
    nextDue: () => {
      let d: number | undefined;
      for (const e of timers.values()) if (d === undefined || e.due < d) d = e.due;
      return d;
    },
  };
}

/** Resolves after `ms` on `clock`'s timers; a stop can cut it short through `signal`. */
export function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(h);
      resolve();
    };
    const h = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Waits `ms` on `clock`; resolves true when the time passed, false at once when `signal` is (or
 * becomes) aborted — a poller's wait that a stop ends without a timer left behind.
 */
export function sleepUnlessAborted(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (!signal || signal.aborted) return resolve(false);
    const t = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clock.clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
