/**
 * The practice's local time for the sync scheduler: the half hour of the week a poll falls in (what
 * is learned is the practice's opening hours, so it follows the practice's zone, DST included) and
 * how long until the next local half hour starts (to wake a slow source when an active one opens).
 */

/** Half hours: a clinic closing at 18:30 is learned as closing at 18:30. */
export const SLOT_MS = 1_800_000;
export const SLOTS_PER_DAY = 48;
export const WEEK_SLOTS = 7 * SLOTS_PER_DAY;
export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

export interface LocalSlot {
  /** 0 = Monday 00:00–00:30 … 335 = Sunday 23:30–24:00. */
  bucket: number;
  /** `YYYY-MM-DDTHH:MM`: one calendar half hour, for counting each once. */
  slotKey: string;
  /** `YYYY-MM-DD`. */
  dayKey: string;
  /** Milliseconds until the next local half hour begins (1 … 1 800 000). */
  msToNextSlot: number;
}

const WEEKDAY: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** `timeZone` as `gateway.timezone` gives it: an IANA name, or empty for the machine's zone. */
export function localClock(timeZone: string): (t: number) => LocalSlot {
  const fmt = new Intl.DateTimeFormat('en-GB', {
    timeZone: timeZone || undefined,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  // every intake asks (the health monitor's bus listener): the half hour last formatted is kept and
  // reused while `t` falls in it (offsets change only on half-hour boundaries), so Intl runs once a slot
  let kept: { start: number; slot: LocalSlot } | undefined;
  return (t) => {
    if (kept && t >= kept.start && t < kept.start + SLOT_MS) return { ...kept.slot, msToNextSlot: kept.start + SLOT_MS - t };
    const p: Record<string, string> = {};
    for (const part of fmt.formatToParts(t)) p[part.type] = part.value;
    const half = Number(p.minute) >= 30 ? 1 : 0;
    const intoSlot = ((Number(p.minute) % 30) * 60 + Number(p.second)) * 1000 + (((t % 1000) + 1000) % 1000);
    const dayKey = `${p.year}-${p.month}-${p.day}`;
    const slot = {
      bucket: (WEEKDAY[p.weekday] ?? 0) * SLOTS_PER_DAY + Number(p.hour) * 2 + half,
      slotKey: `${dayKey}T${p.hour}:${half ? '30' : '00'}`,
      dayKey,
      msToNextSlot: SLOT_MS - intoSlot,
    };
    kept = { start: t - intoSlot, slot };
    return slot;
  };
}

/** `45 s`, `10 min`, `1 h 30 min`: an interval as the history shows it. */
export function formatMs(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) {
    const m = Math.floor(ms / 60_000);
    const s = Math.round((ms % 60_000) / 1000);
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const h = Math.floor(ms / 3_600_000);
  const m = Math.round((ms % 3_600_000) / 60_000);
  return m ? `${h} h ${m} min` : `${h} h`;
}

const slotTime = (k: number) => `${String(Math.floor(k / 2)).padStart(2, '0')}:${k % 2 ? '30' : '00'}`;

/**
 * The active half hours of the week as text, days with the same hours grouped:
 * `08:00–18:30 Mon–Fri, 09:00–12:00 Sat`. Empty when none is active.
 */
export function describeHours(active: readonly boolean[]): string {
  const runsOf = (d: number): string => {
    const runs: string[] = [];
    for (let k = 0; k < SLOTS_PER_DAY; k++) {
      if (!active[d * SLOTS_PER_DAY + k]) continue;
      const start = k;
      while (k + 1 < SLOTS_PER_DAY && active[d * SLOTS_PER_DAY + k + 1]) k++;
      runs.push(`${slotTime(start)}–${slotTime(k + 1)}`);
    }
    return runs.join(' and ');
  };
  const groups = new Map<string, number[]>();
  for (let d = 0; d < 7; d++) {
    const r = runsOf(d);
    if (r) groups.set(r, [...(groups.get(r) ?? []), d]);
  }
  const days = (ds: number[]): string => {
    const parts: string[] = [];
    for (let i = 0; i < ds.length; i++) {
      let j = i;
      while (j + 1 < ds.length && ds[j + 1] === ds[j] + 1) j++;
      parts.push(
        j - i >= 2
          ? `${DAYS[ds[i]]}–${DAYS[ds[j]]}`
          : ds
              .slice(i, j + 1)
              .map((x) => DAYS[x])
              .join(', '),
      );
      i = j;
    }
    return parts.join(', ');
  };
  return [...groups].map(([runs, ds]) => `${runs} ${days(ds)}`).join(', ');
}
