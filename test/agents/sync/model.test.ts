/**
 * The sync scheduler's model, with known inputs and exact answers: the interval a share of changed
 * hours earns, the bounds, a learned clinic week (fast in its hours, slow outside, woken when an
 * hour opens), a burst outside the hours and the gradual slow-down after it, the fading of what was
 * learned, the budgets' floor, and the local hour of the week in the practice's zone.
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

/** A week learned: every hour observed once, Mon–Fri 08:00–19:00 and Sat 09:00–12:00 changed. */
function clinicWeek(): SourceModelState {
  const s = emptyState();
  s.obs.fill(1);
  for (let d = 0; d < 5; d++) for (let h = 8; h < 19; h++) s.chg[d * 24 + h] = 1;
  for (let h = 9; h < 12; h++) s.chg[5 * 24 + h] = 1;
  s.changeDays = 6;
  return s;
}

/** One cycle at `t` (the hour it is in, and the next), as the agent hands it to the model. */
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
      next: utc(t + local.msToNextHour),
      changes: o.changes ?? 0,
      requests: o.requests ?? 1,
      configuredMs: o.configuredMs ?? 5000,
      ...(o.lastWaitMs !== undefined ? { lastWaitMs: o.lastWaitMs } : {}),
    },
    b,
  );
}

describe('sync model: the interval a share of changed hours earns', () => {
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
  it('is fast in clinic hours, slow at night, in between on a closed day’s clinic hour (from the other days)', () => {
    const s = clinicWeek();
    expect(learnedInterval(s, 0 * 24 + 10, bounds)).toBe(30_000); // Mon 10:00
    expect(learnedInterval(s, 1 * 24 + 3, bounds)).toBe(600_000); // Tue 03:00
    expect(learnedInterval(s, 5 * 24 + 10, bounds)).toBe(30_000); // Sat 10:00
    // Sun 10:00: its own hour never changed; six days of seven did at 10:00 (half an hour's weight)
    // share (0 + 0.5·6/7)/1.5 = 0.2857 → 30 s · 20^(1 − 0.5714)
    expect(learnedInterval(s, 6 * 24 + 10, bounds)).toBe(Math.round((30_000 * 20 ** (1 - (0.5 * (6 / 7)) / 1.5 / 0.5)) / 1000) * 1000);
    expect(learnedInterval(s, 5 * 24 + 8, bounds)).toBe(144_000); // Sat 08:00: (0 + 0.5·5/7)/1.5
  });

  it('says what it learned in one sentence', () => {
    expect(describePlan(clinicWeek(), bounds)).toBe(
      'clinic hours learned 08:00–19:00 Mon–Fri, 09:00–12:00 Sat from 6 days of changes; interval 30 s → 10 min outside them',
    );
    expect(describePlan(emptyState(), bounds)).toBeUndefined();
  });

  it('answers the configured interval within the bounds while an hour is not learned', () => {
    const s = emptyState();
    expect(at(s, MONDAY + 10 * H, { configuredMs: 5000 })).toMatchObject({ waitMs: 30_000, reason: 'learning' });
    expect(at(s, MONDAY + 10 * H + 30_000, { configuredMs: 120_000, lastWaitMs: 30_000 })).toMatchObject({
      waitMs: 60_000,
      reason: 'slowing',
    });
    expect(at(emptyState(), MONDAY + 10 * H, { configuredMs: 120_000 })).toMatchObject({ waitMs: 120_000, reason: 'learning' });
    expect(at(emptyState(), MONDAY + 10 * H, { configuredMs: 3_600_000 })).toMatchObject({ waitMs: 600_000, reason: 'learning' });
  });

  it('polls at min in clinic hours and max at night', () => {
    const s = clinicWeek();
    expect(at(s, MONDAY + 24 * H + 10 * H, { lastWaitMs: 30_000 })).toMatchObject({ waitMs: 30_000, reason: 'learned' });
    expect(at(s, MONDAY + 24 * H + 22 * H, { lastWaitMs: 600_000 })).toMatchObject({ waitMs: 600_000, reason: 'learned' });
  });

  it('wakes when a clinic hour opens rather than sleeping into it', () => {
    const s = clinicWeek();
    // Tue 07:55: the night's 10 min would end at 08:05; it wakes at 08:00
    expect(at(s, MONDAY + 24 * H + 7 * H + 55 * MIN, { lastWaitMs: 600_000 })).toMatchObject({ waitMs: 5 * MIN, reason: 'opening' });
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

describe('sync model: counting hours and fading', () => {
  it('counts each polled hour once in its bucket, changed when any poll in it saw a change', () => {
    const s = emptyState();
    for (let t = MONDAY + 8 * H; t <= MONDAY + 10 * H; t += MIN) at(s, t, { changes: t === MONDAY + 8 * H + 30 * MIN ? 2 : 0 });
    const fade = 0.5 ** (1 / 168);
    // 08:00 closed at 09:00 (then faded once when 09:00 closed at 10:00); 09:00 closed without a change
    expect(s.obs[8]).toBeCloseTo(fade, 12);
    expect(s.chg[8]).toBeCloseTo(fade, 12);
    expect(s.obs[9]).toBe(1);
    expect(s.chg[9]).toBe(0);
    expect(s.hour).toEqual({ key: '2026-03-02T10', bucket: 10, changed: false });
    expect(s.cycles).toBe(121);
    expect(s.changes).toBe(2);
    expect(s.changeDays).toBe(1);
  });

  it('halves what it learned every learningDays/2 days', () => {
    const s = emptyState();
    s.chg[3] = 1;
    s.obs[3] = 1;
    // 7 days of hourly polls: 168 hour closes
    for (let i = 0; i <= 168; i++) at(s, MONDAY + 12 * H + i * H);
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
  it('finds the hour of the week in the practice’s zone, DST included', () => {
    const berlin = localClock('Europe/Berlin');
    // Mon 2 March 2026 07:30 UTC is 08:30 in Berlin (CET)
    expect(berlin(MONDAY + 7 * H + 30 * MIN)).toEqual({
      bucket: 8,
      hourKey: '2026-03-02T08',
      dayKey: '2026-03-02',
      msToNextHour: 30 * MIN,
    });
    // Mon 30 March 2026 07:30 UTC is 09:30 (CEST)
    expect(berlin(Date.UTC(2026, 2, 30, 7, 30)).bucket).toBe(9);
    expect(utc(MONDAY + 6 * 24 * H + 23 * H + 59 * MIN).bucket).toBe(167);
  });

  it('writes hours and intervals as a person reads them', () => {
    const a = new Array(168).fill(false);
    for (const d of [0, 1, 2, 4]) for (let h = 8; h < 12; h++) a[d * 24 + h] = true;
    for (let h = 13; h < 18; h++) a[h] = true;
    expect(describeHours(a)).toBe('08:00–12:00 and 13:00–18:00 Mon, 08:00–12:00 Tue, Wed, Fri');
    expect(formatMs(30_000)).toBe('30 s');
    expect(formatMs(864_000)).toBe('14 min 24 s');
    expect(formatMs(5_400_000)).toBe('1 h 30 min');
  });
});
