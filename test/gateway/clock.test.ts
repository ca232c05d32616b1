import { describe, expect, it } from 'vitest';
import { createManualClock, sleepOn, systemClock } from '../../gateway/clock.ts';

describe('manual clock timers', () => {
  it('runs due timers on advance in due order, with now() at each due time', () => {
    const c = createManualClock(1000);
    const seen: string[] = [];
    c.setTimeout(() => seen.push(`b@${c.now()}`), 200);
    c.setTimeout(() => seen.push(`a@${c.now()}`), 100);
    c.setTimeout(() => seen.push(`c@${c.now()}`), 300);
    c.advance(250);
    expect(seen).toEqual(['a@1100', 'b@1200']);
    expect(c.now()).toBe(1250);
    expect(c.pending()).toBe(1);
    expect(c.nextDue()).toBe(1300);
    c.advance(50);
    expect(seen).toEqual(['a@1100', 'b@1200', 'c@1300']);
    expect(c.pending()).toBe(0);
    expect(c.nextDue()).toBeUndefined();
  });

  it('runs timers due at the same instant in the order they were set', () => {
    const c = createManualClock(0);
    const seen: number[] = [];
    for (const i of [1, 2, 3]) c.setTimeout(() => seen.push(i), 10);
    c.advance(10);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('runs timers that callbacks set when they fall due within the same advance', () => {
    const c = createManualClock(0);
    const seen: number[] = [];
    const tick = () => {
      seen.push(c.now());
      if (seen.length < 10) c.setTimeout(tick, 100);
    };
    c.setTimeout(tick, 100);
    c.advance(350);
    expect(seen).toEqual([100, 200, 300]);
    expect(c.now()).toBe(350);
    expect(c.nextDue()).toBe(400);
    c.advance(10_000);
    expect(seen).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    expect(c.pending()).toBe(0);
  });

  it('does not run a timer that another callback cleared during the advance', () => {
    const c = createManualClock(0);
    const seen: string[] = [];
    const later = c.setTimeout(() => seen.push('later'), 200);
    c.setTimeout(() => {
      seen.push('first');
      c.clearTimeout(later);
    }, 100);
    c.advance(500);
    expect(seen).toEqual(['first']);
  });

  it('clearTimeout ignores undefined, a handle already run and a handle already cleared', () => {
    const c = createManualClock(0);
    let runs = 0;
    const h = c.setTimeout(() => {
      runs++;
    }, 5);
    c.advance(5);
    c.clearTimeout(h);
    c.clearTimeout(h);
    c.clearTimeout(undefined);
    expect(runs).toBe(1);
  });

  it('set() forward runs due timers; set() backward runs none and keeps them waiting', () => {
    const c = createManualClock(1000);
    const seen: number[] = [];
    c.setTimeout(() => seen.push(c.now()), 500);
    c.set(900);
    expect(seen).toEqual([]);
    expect(c.now()).toBe(900);
    c.set(2000);
    expect(seen).toEqual([1500]);
    expect(c.now()).toBe(2000);
  });

  it('treats a negative or NaN delay as 0 and a zero advance runs what is due now', () => {
    const c = createManualClock(0);
    const seen: string[] = [];
    c.setTimeout(() => seen.push('neg'), -5);
    c.setTimeout(() => seen.push('nan'), Number.NaN);
    c.advance(0);
    expect(seen).toEqual(['neg', 'nan']);
    expect(c.now()).toBe(0);
  });

  it('stops a callback that re-arms itself at 0 ms for ever with an error that says so', () => {
    const c = createManualClock(0);
    const spin = () => {
      c.setTimeout(spin, 0);
    };
    c.setTimeout(spin, 0);
    expect(() => c.advance(1)).toThrow(/re-arms itself at 0 ms/);
  });

  it('sleepOn resolves on the manual clock when time passes, and at once when aborted', async () => {
    const c = createManualClock(0);
    let done = false;
    const p = sleepOn(c, 1000).then(() => {
      done = true;
    });
    c.advance(999);
    await Promise.resolve();
    expect(done).toBe(false);
    c.advance(1);
    await p;
    expect(done).toBe(true);
    const ac = new AbortController();
    const q = sleepOn(c, 60_000, ac.signal);
    expect(c.pending()).toBe(1);
    ac.abort();
    await q;
    expect(c.pending()).toBe(0);
  });
});

describe('manual clock: a wall-clock jump', () => {
  it('moves now() but not monotonic(), and each timer still falls due after the time it had left', () => {
    const c = createManualClock(1_000_000);
    const fired: Array<[string, number]> = [];
    c.setTimeout(() => fired.push(['a', c.now()]), 60_000);
    c.jump(3_600_000);
    expect(c.now()).toBe(4_600_000);
    expect(c.monotonic()).toBe(1_000_000);
    expect(fired).toEqual([]);
    c.advance(59_999);
    expect(fired).toEqual([]);
    c.advance(1);
    expect(fired).toEqual([['a', 4_660_000]]);
    expect(c.monotonic()).toBe(1_060_000);
    c.setTimeout(() => fired.push(['b', c.now()]), 1000);
    c.jump(-7_200_000);
    expect(c.now()).toBe(4_660_000 - 7_200_000);
    c.advance(1000);
    expect(fired.at(-1)).toEqual(['b', 4_661_000 - 7_200_000]);
    expect(c.monotonic()).toBe(1_061_000);
  });

  it('the system clock has a monotonic partner that moves forward', () => {
    const a = systemClock.monotonic!();
    expect(systemClock.monotonic!()).toBeGreaterThanOrEqual(a);
  });
});

describe('system clock timers', () => {
  it('runs a real timer and clears one', async () => {
    let cleared = false;
    const h = systemClock.setTimeout(() => {
      cleared = true;
    }, 1);
    systemClock.clearTimeout(h);
    await new Promise<void>((resolve) => {
      systemClock.setTimeout(resolve, 1, { unref: true });
    });
    await sleepOn(systemClock, 5);
    expect(cleared).toBe(false);
  });
});
