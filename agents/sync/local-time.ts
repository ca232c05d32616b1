/**
 * The practice's local time for the sync scheduler: the hour of the week a poll falls in (what is
 * learned is the practice's opening hours, so it follows the practice's zone, DST included) and
 * how long until the next local hour starts (to wake a slow source when an active hour opens).
 */

export const WEEK_HOURS = 168;
export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;

export interface LocalHour {
  /** 0 = Monday 00:00–01:00 … 167 = Sunday 23:00–24:00. */
  bucket: number;
  /** `YYYY-MM-DDTHH`: one calendar hour, for counting each hour once. */
  hourKey: string;
  /** `YYYY-MM-DD`. */
  dayKey: string;
  /** Milliseconds until the next local hour begins (1 … 3 600 000). */
  msToNextHour: number;
}

const WEEKDAY: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

export function localClock(timeZone: string): (t: number) => LocalHour {
  const fmt = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return (t) => {
    const p: Record<string, string> = {};
    for (const part of fmt.formatToParts(t)) p[part.type] = part.value;
    const hour = Number(p.hour);
    const intoHour = (Number(p.minute) * 60 + Number(p.second)) * 1000 + (((t % 1000) + 1000) % 1000);
    const dayKey = `${p.year}-${p.month}-${p.day}`;
    return {
      bucket: (WEEKDAY[p.weekday] ?? 0) * 24 + hour,
      hourKey: `${dayKey}T${p.hour}`,
      dayKey,
      msToNextHour: 3_600_000 - intoHour,
    };
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

/**
 * The active hours of the week as text, days with the same hours grouped:
 * `08:00–19:00 Mon–Fri, 09:00–12:00 Sat`. Empty when no hour is active.
 */
export function describeHours(active: readonly boolean[]): string {
  const runsOf = (d: number): string => {
    const runs: string[] = [];
    for (let h = 0; h < 24; h++) {
      if (!active[d * 24 + h]) continue;
      const start = h;
      while (h + 1 < 24 && active[d * 24 + h + 1]) h++;
      runs.push(`${String(start).padStart(2, '0')}:00–${String(h + 1).padStart(2, '0')}:00`);
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
