/**
 * HL7 DTM/TS/DT values → ISO 8601. `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`. A value without an
 * offset is the sender's local time: it is placed in the practice's configured IANA time zone.
 */

import { COMPACT_DATE_TIME as DTM, compactInstant } from '../canonical/local-time.ts';

/** `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, or undefined when the value is not a date. */
export function hl7Date(v: string): string | undefined {
  const m = DTM.exec(v.trim());
  if (!m) return undefined;
  const [, y, mo, d] = m;
  if (mo && (+mo < 1 || +mo > 12)) return undefined;
  if (d && (+d < 1 || +d > 31)) return undefined;
  return d ? `${y}-${mo}-${d}` : mo ? `${y}-${mo}` : y;
}

/**
 * An instant with an offset (`YYYY-MM-DDTHH:MM:SS±hh:mm`), or undefined when the value has no
 * time of day to speak of (fewer than 8 digits) or is not a date-time.
 */
export const hl7Instant = compactInstant;

/** Now as an HL7 DTM with offset, for MSH-7 of messages we build. */
export function hl7Now(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`;
}
