/**
 * The sync scheduler's model, with known inputs and exact answers: the interval a share of busy
 * half hours earns, the bounds, a learned clinic week (fast in its hours, slow outside, woken when a
 * faster half hour opens), learning from nothing, a burst outside the hours and the gradual
 * slow-down after it, the fading of what was learned, the budgets' floor, and the local half hour of
 * the week in the practice's zone.
 */
import { describe, expect, it } from 'vitest';
import { describeHours, formatMs, localClock } from '../../../agents/sync/local-time.ts';
import {
  type Bounds,
  budgetFloor,
  decide,
  describePlan,
  emptyState,
  intervalForShare,
  learnedInterval,
  type SourceModelState,
  usageOf,
} from '../../../agents/sync/model.ts';

const H = 3_600_000;
const MIN = 60_000;
/** Monday 2 March 2026, 00:00 UTC. */
const MONDAY = Date.UTC(2026, 2, 2);
const bounds: Bounds = { minMs: 30_000, maxMs: 600_000, slowdownFactor: 2, perMinute: 0, perDay: 0, learningDays: 14 };
const utc = localClock('UTC');

/** A week learned: every half hour observed once, Mon–Fri 08:00–19:00 and Sat 09:00–12:00 busy. */
function clinicWeek(): SourceModelState {
  const s = emptyState();
  s.obs.fill(1);
  for (let d = 0; d < 5; d++) for (let k = 16; k < 38; k++) s.chg[d * 48 + k] = 1;
  for (let k = 18; k < 24; k++) s.chg[5 * 48 + k] = 1;
  s.changeDays = 6;
  return s;
}
/** The bucket of a day (0 Monday) and a time. */
const slot = (day: number, h: number, m = 0) => day * 48 + h * 2 + (m >= 30 ? 1 : 0);

/** One cycle at `t` (the half hour it is in, and the next), as the agent hands it to the model. */
function at(
  s: SourceModelState,
  t: number,
  o: { changes?: number; requests?: number; lastWaitMs?: number; configuredMs?: number } = {},
  b = bounds,
) {
  const local = utc(t);
  return decide(
    s,
    {
      now: t,
      local,
      next: utc(t + local.msToNextSlot),
      changes: o.changes ?? 0,
      requests: o.requests ?? 1,
      configuredMs: o.configuredMs ?? 5000,
      ...(o.lastWaitMs !== undefined ? { lastWaitMs: o.lastWaitMs } : {}),
    },
    b,
  );
}
/** Polls from `t` on, each after the wait the model answered, until `until`; returns the waits. */
function run(s: SourceModelState, t: number, until: number, changes: (t: number) => number, configuredMs = 5000): number[] {
  const waits: number[] = [];
  while (t < until) {
    const d = at(s, t, { changes: changes(t), configuredMs, ...(waits.length ? { lastWaitMs: waits.at(-1)! } : {}) });
    waits.push(d.waitMs);
    t += d.waitMs;
  }
  return waits;
}

describe('sync model: the interval a share of busy half hours earns', () => {
  it('is min at or above the active share, max at none, geometric between, in whole seconds', () => {
    expect(intervalForShare(1, bounds)).toBe(30_000);
    expect(intervalForShare(0.5, bounds)).toBe(30_000);
    expect(intervalForShare(0, bounds)).toBe(600_000);
    // 30 s · 20^(1 − 0.25/0.5) = 30 s · √20 = 134.16 s
    expect(intervalForShare(0.25, bounds)).toBe(134_000);
  });

  it('never leaves the bounds, even for shares outside 0…1', () => {
    expect(intervalForShare(-1, bounds)).toBe(600_000);
    expect(intervalForShare(7, bounds)).toBe(30_000);
    expect(intervalForShare(0, { minMs: 5000, maxMs: 5000 })).toBe(5000);
  });
});

describe('sync model: a learned clinic week', () => {
  it('is fast in clinic hours, slow at night, and in between where only its neighbours or other days were busy', () => {
    const s = clinicWeek();
    expect(learnedInterval(s, slot(0, 10), bounds)).toBe(30_000); // Mon 10:00
    expect(learnedInterval(s, slot(0, 18, 30), bounds)).toBe(30_000); // Mon 18:30, the last busy half hour
    expect(learnedInterval(s, slot(1, 3), bounds)).toBe(600_000); // Tue 03:00
    expect(learnedInterval(s, slot(5, 10), bounds)).toBe(30_000); // Sat 10:00
    // Sun 10:00: quiet itself and around it; six days of seven busy at 10:00 (a quarter's weight):
    // share 0.25·6/7 / 2.75 = 0.078 → 30 s · 20^(1 − 0.156)
    expect(learnedInterval(s, slot(6, 10), bounds)).toBe(376_000);
    // Sat 08:30: its 09:00 and 09:30 busy (0.5 + 0.25), five days of seven busy at 08:30: share 0.338
    expect(learnedInterval(s, slot(5, 8, 30), bounds)).toBe(79_000);
    // Mon 19:00, just after closing: 18:30 and 18:00 busy (0.5 + 0.25): share 0.273
    expect(learnedInterval(s, slot(0, 19), bounds)).toBe(117_000);
  });

  it('is no slower than the configured interval where it was not seen on an earlier week, unless all around was quiet', () => {
    const s = clinicWeek();
    s.obs[slot(6, 10)] = 0.3;
    s.obs[slot(1, 3)] = 0.3;
    expect(learnedInterval(s, slot(6, 10), bounds, 60_000)).toBe(60_000);
    expect(learnedInterval(s, slot(1, 3), bounds, 60_000)).toBe(600_000);
    s.obs[slot(6, 10)] = 0.7;
    expect(learnedInterval(s, slot(6, 10), bounds, 60_000)).toBeGreaterThan(60_000);
  });

  it('says what it learned in one sentence, to the half hour', () => {
    expect(describePlan(clinicWeek(), bounds)).toBe(
      'clinic hours learned 08:00–19:00 Mon–Fri, 09:00–12:00 Sat from 6 days of changes; interval 30 s → 10 min outside them',
    );
    expect(describePlan(emptyState(), bounds)).toBeUndefined();
  });

  it('answers the configured interval within the bounds while a half hour is not learned', () => {
    const s = emptyState();
    expect(at(s, MONDAY + 10 * H, { configuredMs: 5000 })).toMatchObject({ waitMs: 30_000, reason: 'learning' });
    expect(at(s, MONDAY + 10 * H + 30_000, { configuredMs: 120_000, lastWaitMs: 30_000 })).toMatchObject({
      waitMs: 60_000,
      reason: 'slowing',
    });
    expect(at(emptyState(), MONDAY + 10 * H, { configuredMs: 120_000 })).toMatchObject({ waitMs: 120_000, reason: 'learning' });
    expect(at(emptyState(), MONDAY + 10 * H, { configuredMs: 3_600_000 })).toMatchObject({ waitMs: 600_000, reason: 'learning' });
  });

  it('learning from nothing, slows down gradually after an hour without a change', () => {
    const waits = run(emptyState(), MONDAY, MONDAY + 2 * H, () => 0, 60_000);
    expect(waits.slice(0, 60)).toEqual(new Array(60).fill(60_000));
    expect(waits.slice(60)).toEqual([120_000, 240_000, 480_000, 600_000, 600_000, 600_000, 600_000, 600_000]);
  });

  it('polls at min in clinic hours and max at night', () => {
    const s = clinicWeek();
    expect(at(s, MONDAY + 24 * H + 10 * H, { lastWaitMs: 30_000 })).toMatchObject({ waitMs: 30_000, reason: 'learned' });
    expect(at(s, MONDAY + 24 * H + 22 * H, { lastWaitMs: 600_000 })).toMatchObject({ waitMs: 600_000, reason: 'learned' });
  });

  it('wakes when a faster half hour opens rather than sleeping into it', () => {
    const s = clinicWeek();
    // Tue 07:25: 07:00 learned 348 s would end at 07:30:48; 07:30 is faster (117 s), so it wakes at 07:30
    expect(at(s, MONDAY + 24 * H + 7 * H + 25 * MIN, { lastWaitMs: 600_000 })).toMatchObject({ waitMs: 5 * MIN, reason: 'opening' });
    expect(at(s, MONDAY + 24 * H + 7 * H + 10 * MIN, { lastWaitMs: 600_000 })).toMatchObject({ waitMs: 348_000, reason: 'learned' });
  });
});

describe('sync model: bursts and quiet stretches', () => {
  it('a burst outside clinic hours drops the wait to min at once; quiet polls double it back to the hour’s interval', () => {
    const s = clinicWeek();
    let t = MONDAY + 24 * H + 21 * H; // Tue 21:00
    const burst = at(s, t, { changes: 12, lastWaitMs: 600_000 });
    expect(burst).toMatchObject({ waitMs: 30_000, reason: 'change', burst: true });
    const waits = [burst.waitMs];
    for (let i = 0; i < 6; i++) {
      t += waits.at(-1)!;
      waits.push(at(s, t, { lastWaitMs: waits.at(-1)! }).waitMs);
    }
    expect(waits).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
  });

  it('a change in clinic hours is no burst (the interval is min already)', () => {
    expect(at(clinicWeek(), MONDAY + 10 * H, { changes: 3, lastWaitMs: 30_000 })).toMatchObject({ waitMs: 30_000, reason: 'change' });
    expect(at(clinicWeek(), MONDAY + 10 * H, { changes: 3 }).burst).toBeUndefined();
  });
});

describe('sync model: counting half hours and fading', () => {
  it('counts each polled half hour once in its bucket, busy when its polls saw 3 changes or more', () => {
    const s = emptyState();
    for (let t = MONDAY + 8 * H; t <= MONDAY + 10 * H; t += MIN)
      at(s, t, { changes: t === MONDAY + 8 * H + 35 * MIN ? 3 : t === MONDAY + 9 * H + 5 * MIN ? 2 : 0 });
    const fade = 0.5 ** (1 / (14 * 48));
    // 08:30 closed at 09:00, then faded at the ends of 09:00 and 09:30; 09:00 saw 2 changes: not busy
    expect(s.obs[17]).toBeCloseTo(fade ** 2, 12);
    expect(s.chg[17]).toBeCloseTo(fade ** 2, 12);
    expect(s.obs[18]).toBeCloseTo(fade, 12);
    expect(s.chg[18]).toBe(0);
    expect(s.obs[19]).toBe(1);
    expect(s.chg[16]).toBe(0);
    expect(s.slot).toEqual({ key: '2026-03-02T10:00', bucket: 20, changes: 0 });
    expect(s.cycles).toBe(121);
    expect(s.changes).toBe(5);
    expect(s.changeDays).toBe(1);
    expect(s.lastChangeAt).toBe(MONDAY + 9 * H + 5 * MIN);
  });

  it('halves what it learned every learningDays days', () => {
    const s = emptyState();
    s.chg[3] = 1;
    s.obs[3] = 1;
    // 14 days of half-hourly polls: 672 half-hour ends
    for (let i = 0; i <= 672; i++) at(s, MONDAY + 12 * H + i * 30 * MIN);
    expect(s.chg[3]).toBeCloseTo(0.5, 12);
  });

  it('logs a plan change only when the learned sentence changes', () => {
    const s = emptyState();
    const changed: string[] = [];
    for (let t = MONDAY + 9 * H; t <= MONDAY + 12 * H; t += 5 * MIN) {
      const d = at(s, t, { changes: t < MONDAY + 10 * H ? 1 : 0 });
      if (d.planChanged) changed.push(d.planChanged);
    }
    expect(changed).toEqual([
      'active hours learned 09:00–09:30 Mon–Sun from 1 day of changes; interval 30 s',
      'active hours learned 09:00–10:00 Mon–Sun from 1 day of changes; interval 30 s',
      'clinic hours learned 09:00–10:00 Mon–Sun from 1 day of changes; interval 30 s → 10 min outside them',
    ]);
  });
});

describe('sync model: budgets', () => {
  it('caps the poll rate: 1440 queries a day at 2 a poll is one poll every 2 min, over clinic hours’ min', () => {
    expect(budgetFloor(2, { perMinute: 0, perDay: 1440 })).toBe(120_000);
    expect(budgetFloor(1, { perMinute: 1, perDay: 0 })).toBe(60_000);
    expect(budgetFloor(3, { perMinute: 0, perDay: 0 })).toBe(0);
    const b = { ...bounds, perDay: 1440 };
    const d = at(clinicWeek(), MONDAY + 10 * H, { requests: 2, lastWaitMs: 30_000 }, b);
    expect(d).toMatchObject({ waitMs: 120_000, reason: 'budget', budgetFloorMs: 120_000 });
  });

  it('wins over max too, and counts what was used in the last minute and day', () => {
    const s = clinicWeek();
    const b = { ...bounds, perDay: 100 };
    expect(at(s, MONDAY + 22 * H, { requests: 1, lastWaitMs: 600_000 }, b)).toMatchObject({ waitMs: 864_000, reason: 'budget' });
    at(s, MONDAY + 22 * H + 10_000, { requests: 4 }, b);
    at(s, MONDAY + 23 * H, { requests: 2 }, b);
    expect(usageOf(s, MONDAY + 23 * H + 1000)).toEqual({ lastMinute: 2, lastDay: 7 });
    expect(usageOf(s, MONDAY + 22 * H + 24 * H + 30_000)).toEqual({ lastMinute: 0, lastDay: 2 });
  });
});

describe('sync model: local time', () => {
  it('finds the half hour of the week in the practice’s zone, DST included', () => {
    const berlin = localClock('Europe/Berlin');
    // Mon 2 March 2026 07:40 UTC is 08:40 in Berlin (CET)
    expect(berlin(MONDAY + 7 * H + 40 * MIN)).toEqual({
      bucket: 17,
      slotKey: '2026-03-02T08:30',
      dayKey: '2026-03-02',
      msToNextSlot: 20 * MIN,
    });
    // Mon 30 March 2026 07:30 UTC is 09:30 (CEST)
    expect(berlin(Date.UTC(2026, 2, 30, 7, 30)).bucket).toBe(19);
    expect(utc(MONDAY + 6 * 24 * H + 23 * H + 59 * MIN).bucket).toBe(335);
  });

  it('writes hours and intervals as a person reads them', () => {
    const a = new Array(336).fill(false);
    for (const d of [0, 1, 2, 4]) for (let k = 16; k < 24; k++) a[d * 48 + k] = true;
    for (let k = 26; k < 36; k++) a[k] = true;
    for (let k = 16; k < 37; k++) a[3 * 48 + k] = true;
    expect(describeHours(a)).toBe('08:00–12:00 and 13:00–18:00 Mon, 08:00–12:00 Tue, Wed, Fri, 08:00–18:30 Thu');
    expect(formatMs(30_000)).toBe('30 s');
    expect(formatMs(864_000)).toBe('14 min 24 s');
    expect(formatMs(5_400_000)).toBe('1 h 30 min');
  });
});
