/**
 * What the sync scheduler learns of one polled source, and the wait it answers after each cycle.
 *
 * The week has 168 hour buckets (Monday 00:00 … Sunday 23:00, the practice's local time). Each
 * calendar hour in which the source was polled counts once in its bucket as observed, and once
 * more as changed when a poll in it saw a change (the `changes` the poller reports: rows or
 * resources committed as changed). Both counts fade: at every hour's end they are multiplied so
 * that they halve every `learningDays`/2 days. A bucket's share of changed hours, blended with
 * the same hour of the other days (half an hour's weight, so the first Tuesday already uses what
 * Monday taught), gives its learned interval:
 *
 *   share ≥ ACTIVE_SHARE → min;   share = 0 → max;   between: min · (max/min)^(1 − share/ACTIVE_SHARE)
 *
 * An hour never observed (nor its hour of day) answers the source's configured interval, within
 * the bounds. On top of the learned plan:
 * - a cycle that saw changes drops the wait to `min` at once (a burst outside the learned hours
 *   is caught at once); each quiet cycle after it multiplies the wait by `slowdownFactor`, up to
 *   the learned interval (a quiet stretch slows down gradually);
 * - a wait that would run past the start of a faster hour ends when that hour starts (the first
 *   change of the morning is not left for the night's interval);
 * - the budgets (queries per minute, per day; queries per cycle as the poller reports them,
 *   averaged) set a floor that wins over everything, `max` included.
 *
 * Pure: time comes in as arguments, nothing is read or written here.
 */
import { describeHours, formatMs, type LocalHour, WEEK_HOURS } from './local-time.ts';

/** A bucket whose hours see a change this often (or more) is polled at `min`. */
export const ACTIVE_SHARE = 0.5;
/** Weight (in hours) of the hour-of-day prior in a bucket's share. */
const PRIOR_WEIGHT = 0.5;
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
  /** Faded count of observed hours per bucket. */
  obs: number[];
  /** Faded count of hours that saw a change, per bucket. */
  chg: number[];
  /** The calendar hour in progress: its key, bucket, and whether it saw a change. */
  hour?: { key: string; bucket: number; changed: boolean };
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
  /** The learned interval of the hour now (or the configured one while learning). */
  learnedMs: number;
  /** The floor the budgets set (0: none). */
  budgetFloorMs: number;
  /** When the hour just ended changed the learned plan: the sentence to log. */
  planChanged?: string;
  /** When this cycle saw changes during an hour learned as slow: a burst. */
  burst?: boolean;
}

export function emptyState(): SourceModelState {
  return { obs: new Array(WEEK_HOURS).fill(0), chg: new Array(WEEK_HOURS).fill(0), changeDays: 0, usage: [], cycles: 0, changes: 0 };
}

/** Checks a state read back from disk; throws (with what is wrong) when it is not one. */
export function checkState(v: unknown): SourceModelState {
  const s = v as SourceModelState;
  const nums = (a: unknown) =>
    Array.isArray(a) && a.length === WEEK_HOURS && a.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0);
  if (!s || typeof s !== 'object') throw new Error('not an object');
  if (!nums(s.obs) || !nums(s.chg)) throw new Error('obs/chg are not 168 counts');
  if (!Array.isArray(s.usage) || !s.usage.every((u) => Array.isArray(u) && u.length === 2 && u.every((x) => Number.isFinite(x))))
    throw new Error('usage is not a list of [minute, count]');
  if (typeof s.changeDays !== 'number' || typeof s.cycles !== 'number' || typeof s.changes !== 'number') throw new Error('counts missing');
  return s;
}

/** The learned share of changed hours of one bucket, or undefined when neither it nor its hour of day was observed. */
export function shareOf(s: SourceModelState, bucket: number): number | undefined {
  const h = bucket % 24;
  let hodObs = 0;
  let hodChg = 0;
  for (let d = 0; d < 7; d++) {
    hodObs += s.obs[d * 24 + h];
    hodChg += s.chg[d * 24 + h];
  }
  const prior = hodObs > 0 ? hodChg / hodObs : undefined;
  if (prior === undefined) return undefined;
  return (s.chg[bucket] + PRIOR_WEIGHT * prior) / (s.obs[bucket] + PRIOR_WEIGHT);
}

/** The interval a share of changed hours earns, within the bounds (whole seconds). */
export function intervalForShare(share: number, b: Pick<Bounds, 'minMs' | 'maxMs'>): number {
  if (share >= ACTIVE_SHARE) return b.minMs;
  const ms = b.minMs * (b.maxMs / b.minMs) ** (1 - share / ACTIVE_SHARE);
  return Math.min(b.maxMs, Math.max(b.minMs, Math.round(ms / 1000) * 1000));
}

/** The learned interval of one bucket, or undefined while it is not learned. */
export function learnedInterval(s: SourceModelState, bucket: number, b: Pick<Bounds, 'minMs' | 'maxMs'>): number | undefined {
  const share = shareOf(s, bucket);
  return share === undefined ? undefined : intervalForShare(share, b);
}

/** The learned plan as a sentence: the active hours and the interval outside them. */
export function describePlan(s: SourceModelState, b: Bounds): string | undefined {
  const active: boolean[] = [];
  const outside: number[] = [];
  let known = 0;
  for (let k = 0; k < WEEK_HOURS; k++) {
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

/** Counts one cycle into the state (hour buckets, fading, usage) and answers the wait after it. */
export function decide(
  s: SourceModelState,
  o: { now: number; local: LocalHour; next: LocalHour; changes: number; requests: number; configuredMs: number; lastWaitMs?: number },
  b: Bounds,
): Decision {
  let planChanged: string | undefined;
  // the hour in progress: a new one closes the last (its counts go in, everything fades one hour)
  if (s.hour && s.hour.key !== o.local.hourKey) {
    const fade = 0.5 ** (1 / ((b.learningDays * 24) / 2));
    for (let k = 0; k < WEEK_HOURS; k++) {
      s.obs[k] *= fade;
      s.chg[k] *= fade;
    }
    s.obs[s.hour.bucket] += 1;
    if (s.hour.changed) s.chg[s.hour.bucket] += 1;
    s.hour = undefined;
    const summary = describePlan(s, b);
    if (summary !== undefined && summary !== s.summary) {
      s.summary = summary;
      planChanged = summary;
    }
  }
  s.hour ??= { key: o.local.hourKey, bucket: o.local.bucket, changed: false };
  s.cycles++;
  s.firstAt ??= o.now;
  s.lastAt = o.now;
  if (o.changes > 0) {
    s.hour.changed = true;
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
  const learned = learnedInterval(s, o.local.bucket, b);
  const plan = learned ?? configured;
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
  // wake when a faster hour opens rather than sleep into it
  if (wait > o.local.msToNextHour) {
    const nextLearned = learnedInterval(s, o.next.bucket, b) ?? configured;
    if (nextLearned < wait) {
      wait = o.local.msToNextHour;
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
