/**
 * HL7 DTM/TS/DT values → ISO 8601. `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`. A value without an
 * offset is the sender's local time: it is placed in the practice's configured IANA time zone.
 */

const DTM = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/;

/** `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, or undefined when the value is not a date. */
export function hl7Date(v: string): string | undefined {
  const m = DTM.exec(v.trim());
  if (!m) return undefined;
  const [, y, mo, d] = m;
  if (mo && (+mo < 1 || +mo > 12)) return undefined;
  if (d && (+d < 1 || +d > 31)) return undefined;
  return d ? `${y}-${mo}-${d}` : mo ? `${y}-${mo}` : y;
}

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
export function hl7Instant(v: string, zone: string): string | undefined {
  const m = DTM.exec(v.trim());
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

/** Now as an HL7 DTM with offset, for MSH-7 of messages we build. */
export function hl7Now(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`;
}
