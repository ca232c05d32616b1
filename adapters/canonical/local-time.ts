/**
 * Local date-times → instants with an offset. Values in the compact form
 * `YYYYMMDD[HH[MM[SS[.S…]]]][+/-ZZZZ]` (ISO 8601 basic format, and HL7's DTM); a value without an
 * offset is a local time of the given IANA zone (the practice's). Shared by every source that reads
 * times: the HL7 mappers and the row-mapping engine.
 */

export const COMPACT_DATE_TIME = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;

/** Offset in minutes of an IANA zone at a UTC instant. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneOffsetMinutes(zone: string, utcMs: number): number {
  let f = formatters.get(zone);
  if (!f) formatters.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })));
  const parts = f.formatToParts(new Date(utcMs));
  const name = parts.find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(name);
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0));
}

function fmtOffset(min: number): string {
  if (min === 0) return 'Z';
  const s = min < 0 ? '-' : '+';
  const a = Math.abs(min);
  return `${s}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/**
 * An instant with an offset (`YYYY-MM-DDTHH:MM:SS±hh:mm`), or undefined when the value has no
 * time of day to speak of (fewer than 8 digits) or is not a date-time.
 */
export function compactInstant(v: string, zone: string): string | undefined {
  const m = COMPACT_DATE_TIME.exec(v.trim());
  if (!m || !m[3]) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac, off] = m;
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > 31 || +h > 23 || +mi > 59 || +s > 59) return undefined;
  const local = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac ?? ''}`;
  let offMin: number;
  if (off) {
    offMin = (off[0] === '-' ? -1 : 1) * (Number(off.slice(1, 3)) * 60 + Number(off.slice(3, 5)));
  } else {
    const asUtc = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
    offMin = zoneOffsetMinutes(zone, asUtc);
    offMin = zoneOffsetMinutes(zone, asUtc - offMin * 60_000);
  }
  return local + fmtOffset(offMin);
}
