/**
 * A vendor's call budget, enforced by the gateway itself so the vendor never has to refuse us:
 * ceilings per second, minute and hour (each a sliding window of the calls in its span, so a
 * vendor's fixed window — DrChrono's hour from the top of the hour — is never overrun either) and
 * a daily cap that resets at midnight UTC. athenahealth publishes per-second and daily limits,
 * DrChrono per-second and hourly ones; Epic publishes none, so its profile sets a conservative
 * configurable ceiling. Each window holds at most its limit's count of timestamps.
 */
import type { Clock } from '../../gateway/clock.ts';
import { ApiError } from './http-error.ts';

export interface QuotaLimits {
  /** Calls in any 1 s window; 0 or absent = no ceiling. */
  perSecond?: number;
  /** Calls in any 60 s window; 0 = no ceiling. */
  perMinute: number;
  /** Calls in any 3600 s window; 0 or absent = no ceiling. */
  perHour?: number;
  /** Calls per UTC day; 0 = no cap. */
  perDay: number;
}

/** Where the day's count is kept across restarts (a restart loop must not reset a vendor's daily cap). */
export interface QuotaStore {
  load(): { day: number; calls: number } | undefined;
  save(state: { day: number; calls: number }): void;
}

/** How often the day's count is written: at most this many calls are forgotten by a crash. */
const SAVE_EVERY = 25;

export interface Quota {
  /** Waits for a call slot (every ceiling), or throws GW_API_QUOTA_EXHAUSTED when the day's cap is spent. */
  acquire(signal?: AbortSignal): Promise<void>;
  stats(): { callsToday: number; perDay: number; perMinute: number; perSecond: number; perHour: number; waitedMs: number };
  /** Writes the day's count now (at stop). */
  flush(): void;
}

const DAY_MS = 86_400_000;

export function createQuota(limits: QuotaLimits, clock: Clock, store?: QuotaStore): Quota {
  const windows = [
    { span: 1000, limit: limits.perSecond ?? 0, calls: [] as number[] },
    { span: 60_000, limit: limits.perMinute, calls: [] as number[] },
    { span: 3_600_000, limit: limits.perHour ?? 0, calls: [] as number[] },
  ].filter((w) => w.limit > 0);
  let day = Math.floor(clock.now() / DAY_MS);
  let today = 0;
  let waitedMs = 0;
  let unsaved = 0;
  const kept = store?.load();
  if (kept && kept.day === day) today = kept.calls;
  const save = () => {
    unsaved = 0;
    try {
      store?.save({ day, calls: today });
    } catch {
      // a count that cannot be written is a count a restart may forget: the cap still holds in this run
    }
  };

  const wait = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = clock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clock.clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  return {
    async acquire(signal) {
      for (;;) {
        const now = clock.now();
        const d = Math.floor(now / DAY_MS);
        if (d !== day) {
          day = d;
          today = 0;
        }
        if (limits.perDay > 0 && today >= limits.perDay)
          throw new ApiError('GW_API_QUOTA_EXHAUSTED', `the daily call cap (${limits.perDay}) is spent`, {
            retryInMs: (d + 1) * DAY_MS - now,
            detail: { perDay: limits.perDay },
          });
        // the longest wait any full window asks for (a call leaves a window `span` after it was made)
        let ms = 0;
        for (const w of windows) {
          while (w.calls.length > 0 && w.calls[0] <= now - w.span) w.calls.shift();
          if (w.calls.length >= w.limit) ms = Math.max(ms, w.calls[0] + w.span - now);
        }
        if (ms === 0) {
          for (const w of windows) w.calls.push(now);
          today++;
          if (store && ++unsaved >= SAVE_EVERY) save();
          return;
        }
        waitedMs += ms;
        await wait(ms, signal);
      }
    },
    stats: () => ({
      callsToday: today,
      perDay: limits.perDay,
      perMinute: limits.perMinute,
      perSecond: limits.perSecond ?? 0,
      perHour: limits.perHour ?? 0,
      waitedMs,
    }),
    flush: () => {
      if (store && unsaved > 0) save();
    },
  };
}
