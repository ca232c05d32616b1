/**
 * What the sync scheduler learns of one polled source, and the wait it answers after each cycle.
 *
 * The week has 336 half-hour buckets (Monday 00:00 … Sunday 23:30, the practice's local time).
 * Each calendar half hour in which the source was polled counts once in its bucket as observed,
 * and once more as busy when its polls saw at least BUSY_CHANGES changes together (the `changes`
 * the poller reports: rows or resources committed as changed) — one online booking in the evening
 * does not make the evening a clinic hour; a visit's handful of row changes does. Both counts fade:
 * at every half hour's end they are multiplied so that they halve every `learningDays` days. A
 * bucket's share of busy half hours, smoothed over its neighbours (±1 h) and blended with the same
 * half hour of the other days (a quarter of one's weight, so the first Tuesday already uses what
 * Monday taught), gives its interval:
 *
 *   share ≥ ACTIVE_SHARE → min;   share = 0 → max;   between: min · (max/min)^(1 − share/ACTIVE_SHARE)
 *
 * A half hour never observed (nor its time of day) answers the source's configured interval,
 * within the bounds, and so does one not seen on an earlier week (its neighbours or the other days
 * alone say it is slow) — until an hour passes without a change: then it slows down gradually
 * (below) up to what it learned, or `max`. On top of the learned plan:
 * - a cycle that saw changes drops the wait to `min` at once (a burst outside the learned hours
 *   is caught at once); each quiet cycle after it multiplies the wait by `slowdownFactor`, up to
 *   the learned interval (a quiet stretch slows down gradually);
 * - a wait that would run past the start of a faster half hour ends when it starts (the first
 *   change of the morning is not left for the night's interval);
 * - the budgets (queries per minute, per day; queries per cycle as the poller reports them,
 *   averaged) set a floor that wins over everything, `max` included.
 *
 * Pure: time comes in as arguments, nothing is read or written here.
 */
import { describeHours, formatMs, type LocalSlot, SLOTS_PER_DAY, WEEK_SLOTS } from './local-time.ts';

/** A bucket whose half hours are busy this often (or more) is polled at `min`. */
export const ACTIVE_SHARE = 0.5;
/** Changes within one calendar half hour that make it busy. */
export const BUSY_CHANGES = 3;
/** Weight (in observed half hours) of the time-of-day prior in a bucket's share. */
const PRIOR_WEIGHT = 0.25;
const MINUTE = 60_000;
const DAY = 86_400_000;

export interface Bounds {
  minMs: number;
  maxMs: number;
  slowdownFactor: number;
  /** 0: none. */
  perMinute: number;
  perDay: number;
  learningDays: number;
}

/** What survives a restart (JSON). */
export interface SourceModelState {
  /** Faded count of observed half hours per bucket. */
  obs: number[];
  /** Faded count of busy half hours (BUSY_CHANGES or more), per bucket. */
  chg: number[];
  /** The calendar half hour in progress: its key, bucket, and the changes its polls saw. */
  slot?: { key: string; bucket: number; changes: number };
  /** When a cycle last saw a change. */
  lastChangeAt?: number;
  /** Days on which a change was seen (counted once each), and the last such day. */
  changeDays: number;
  lastChangeDay?: string;
  /** Requests per cycle, averaged (for the budgets). */
  requestsPerCycle?: number;
  /** Requests made, per minute (epoch minute → count) over the last day, for the per-day budget. */
  usage: Array<[number, number]>;
  /** The learned-hours sentence last logged (logged again only when it changes). */
  summary?: string;
  cycles: number;
  changes: number;
  firstAt?: number;
  lastAt?: number;
}

export type DecisionReason = 'learning' | 'learned' | 'change' | 'slowing' | 'opening' | 'budget';

export interface Decision {
  waitMs: number;
  reason: DecisionReason;
  /** The learned interval of the half hour now (or the configured one while learning). */
  learnedMs: number;
  /** The floor the budgets set (0: none). */
  budgetFloorMs: number;
  /** When the half hour just ended changed the learned plan: the sentence to log. */
  planChanged?: string;
  /** When this cycle saw changes during a half hour learned as slow: a burst. */
  burst?: boolean;
}

export function emptyState(): SourceModelState {
  return { obs: new Array(WEEK_SLOTS).fill(0), chg: new Array(WEEK_SLOTS).fill(0), changeDays: 0, usage: [], cycles: 0, changes: 0 };
}

/** Checks a state read back from disk; throws (with what is wrong) when it is not one. */
export function checkState(v: unknown): SourceModelState {
  const s = v as SourceModelState;
  const nums = (a: unknown) =>
    Array.isArray(a) && a.length === WEEK_SLOTS && a.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0);
  if (!s || typeof s !== 'object') throw new Error('not an object');
  if (!nums(s.obs) || !nums(s.chg)) throw new Error(`obs/chg are not ${WEEK_SLOTS} counts`);
  if (!Array.isArray(s.usage) || !s.usage.every((u) => Array.isArray(u) && u.length === 2 && u.every((x) => Number.isFinite(x))))
    throw new Error('usage is not a list of [minute, count]');
  if (typeof s.changeDays !== 'number' || typeof s.cycles !== 'number' || typeof s.changes !== 'number') throw new Error('counts missing');
  return s;
}

/** Weights of a bucket's neighbours (±30 min, ±1 h) in its share: a clinic's hours are contiguous, so one quiet half hour amid busy ones is chance. */
const NEIGHBOURS: ReadonlyArray<readonly [number, number]> = [
  [-2, 0.25],
  [-1, 0.5],
  [0, 1],
  [1, 0.5],
  [2, 0.25],
];

/**
 * The learned share of busy half hours of one bucket, smoothed over its neighbours (NEIGHBOURS)
 * and the same time on the other days (PRIOR_WEIGHT); undefined when neither it nor its time of
 * day on another day was observed.
 */
export function shareOf(s: SourceModelState, bucket: number): number | undefined {
  const h = bucket % SLOTS_PER_DAY;
  let hodObs = 0;
  let hodChg = 0;
  for (let d = 0; d < 7; d++) {
    hodObs += s.obs[d * SLOTS_PER_DAY + h];
    hodChg += s.chg[d * SLOTS_PER_DAY + h];
  }
  // never observed itself nor at this time on another day: not learned (the neighbours alone say too little)
  if (s.obs[bucket] === 0 && hodObs === 0) return undefined;
  let num = 0;
  let den = 0;
  for (const [dk, w] of NEIGHBOURS) {
    const k = (bucket + dk + WEEK_SLOTS) % WEEK_SLOTS;
    num += w * s.chg[k];
    den += w * s.obs[k];
  }
  if (hodObs > 0) {
    num += PRIOR_WEIGHT * (hodChg / hodObs);
    den += PRIOR_WEIGHT;
  }
  return den > 0 ? num / den : undefined;
}

/** The interval a share of busy half hours earns, within the bounds (whole seconds). */
export function intervalForShare(share: number, b: Pick<Bounds, 'minMs' | 'maxMs'>): number {
  if (share >= ACTIVE_SHARE) return b.minMs;
  const ms = b.minMs * (b.maxMs / b.minMs) ** (1 - share / ACTIVE_SHARE);
  return Math.min(b.maxMs, Math.max(b.minMs, Math.round(ms / 1000) * 1000));
}

/** Own observations (faded) a bucket needs before it may be slower than the configured interval where anything near it was busy: one earlier week. */
export const MIN_OWN_OBS = 0.6;
/** Quiet this long (no change seen), a half hour not learned yet (or learned from another week only) may slow down past the configured interval. */
export const QUIET_MS = 3_600_000;

/**
 * The learned interval of one bucket, or undefined while it is not learned. A bucket seen fewer
 * than on one earlier week is no slower than `configuredMs` unless all around it was quiet: a
 * quiet Thursday 14:00 in the first week may be chance, a quiet night is a night.
 */
export function learnedInterval(
  s: SourceModelState,
  bucket: number,
  b: Pick<Bounds, 'minMs' | 'maxMs'>,
  configuredMs: number = b.maxMs,
): number | undefined {
  const share = shareOf(s, bucket);
  if (share === undefined) return undefined;
  const ms = intervalForShare(share, b);
  return share > 0 && s.obs[bucket] < MIN_OWN_OBS ? Math.min(ms, Math.max(b.minMs, configuredMs)) : ms;
}

/** The learned plan as a sentence: the active hours and the interval outside them. */
export function describePlan(s: SourceModelState, b: Bounds): string | undefined {
  const active: boolean[] = [];
  const outside: number[] = [];
  let known = 0;
  for (let k = 0; k < WEEK_SLOTS; k++) {
    const share = shareOf(s, k);
    if (share !== undefined) known++;
    active.push(share !== undefined && share >= ACTIVE_SHARE);
    if (share !== undefined && share < ACTIVE_SHARE) outside.push(intervalForShare(share, b));
  }
  if (known === 0) return undefined;
  const hours = describeHours(active);
  const days = `${s.changeDays} day${s.changeDays === 1 ? '' : 's'} of changes`;
  if (!hours) return `no active hours learned from ${days}; interval ${formatMs(b.maxMs)}`;
  const slow = outside.sort((x, y) => x - y)[outside.length >> 1];
  return slow === undefined
    ? `active hours learned ${hours} from ${days}; interval ${formatMs(b.minMs)}`
    : `clinic hours learned ${hours} from ${days}; interval ${formatMs(b.minMs)} → ${formatMs(slow)} outside them`;
}

/** The floor the budgets put under the wait, from the requests a cycle makes. */
export function budgetFloor(requestsPerCycle: number, b: Pick<Bounds, 'perMinute' | 'perDay'>): number {
  const perMinute = b.perMinute > 0 ? (MINUTE * requestsPerCycle) / b.perMinute : 0;
  const perDay = b.perDay > 0 ? (DAY * requestsPerCycle) / b.perDay : 0;
  return Math.ceil(Math.max(perMinute, perDay));
}

/** Requests made in the last minute and the last day (from the per-minute usage). */
export function usageOf(s: SourceModelState, now: number): { lastMinute: number; lastDay: number } {
  const minute = Math.floor(now / MINUTE);
  let lastMinute = 0;
  let lastDay = 0;
  for (const [m, n] of s.usage) {
    if (m > minute - 1440) lastDay += n;
    if (m === minute) lastMinute += n;
  }
  return { lastMinute, lastDay };
}

/** Counts one cycle into the state (half-hour buckets, fading, usage) and answers the wait after it. */
export function decide(
  s: SourceModelState,
  o: { now: number; local: LocalSlot; next: LocalSlot; changes: number; requests: number; configuredMs: number; lastWaitMs?: number },
  b: Bounds,
): Decision {
  let planChanged: string | undefined;
  // the half hour in progress: a new one closes the last (its counts go in, everything fades one step)
  if (s.slot && s.slot.key !== o.local.slotKey) {
    const fade = 0.5 ** (1 / (b.learningDays * SLOTS_PER_DAY));
    for (let k = 0; k < WEEK_SLOTS; k++) {
      s.obs[k] *= fade;
      s.chg[k] *= fade;
    }
    s.obs[s.slot.bucket] += 1;
    if (s.slot.changes >= BUSY_CHANGES) s.chg[s.slot.bucket] += 1;
    s.slot = undefined;
    const summary = describePlan(s, b);
    if (summary !== undefined && summary !== s.summary) {
      s.summary = summary;
      planChanged = summary;
    }
  }
  s.slot ??= { key: o.local.slotKey, bucket: o.local.bucket, changes: 0 };
  s.cycles++;
  s.firstAt ??= o.now;
  s.lastAt = o.now;
  if (o.changes > 0) {
    s.lastChangeAt = o.now;
    s.slot.changes += o.changes;
    s.changes += o.changes;
    if (s.lastChangeDay !== o.local.dayKey) {
      s.changeDays++;
      s.lastChangeDay = o.local.dayKey;
    }
  }
  // usage, per minute, kept for a day
  const minute = Math.floor(o.now / MINUTE);
  const last = s.usage.at(-1);
  if (last && last[0] === minute) last[1] += o.requests;
  else s.usage.push([minute, o.requests]);
  while (s.usage.length > 0 && s.usage[0][0] <= minute - 1440) s.usage.shift();
  s.requestsPerCycle = s.requestsPerCycle === undefined ? o.requests : 0.7 * s.requestsPerCycle + 0.3 * o.requests;

  const configured = Math.min(b.maxMs, Math.max(b.minMs, o.configuredMs));
  // while little is learned the configured interval is the ceiling — until an hour passes without a change
  const quiet = o.now - (s.lastChangeAt ?? s.firstAt ?? o.now) >= QUIET_MS;
  const ceiling = quiet ? b.maxMs : configured;
  const learned = learnedInterval(s, o.local.bucket, b, ceiling);
  const plan = learned ?? ceiling;
  let wait: number;
  let reason: DecisionReason;
  const burst = o.changes > 0 && learned !== undefined && learned > b.minMs;
  if (o.changes > 0) {
    wait = b.minMs;
    reason = 'change';
  } else if (o.lastWaitMs === undefined || o.lastWaitMs >= plan) {
    wait = plan;
    reason = learned === undefined ? 'learning' : 'learned';
  } else {
    wait = Math.min(plan, Math.max(b.minMs, Math.round(o.lastWaitMs * b.slowdownFactor)));
    reason = wait === plan ? (learned === undefined ? 'learning' : 'learned') : 'slowing';
  }
  // wake when a faster half hour opens rather than sleep into it
  if (wait > o.local.msToNextSlot) {
    const nextLearned = learnedInterval(s, o.next.bucket, b, ceiling) ?? ceiling;
    if (nextLearned < wait) {
      wait = o.local.msToNextSlot;
      reason = 'opening';
    }
  }
  const floor = budgetFloor(s.requestsPerCycle, b);
  if (floor > wait) {
    wait = floor;
    reason = 'budget';
  }
  return {
    waitMs: wait,
    reason,
    learnedMs: plan,
    budgetFloorMs: floor,
    ...(planChanged ? { planChanged } : {}),
    ...(burst ? { burst } : {}),
  };
}
