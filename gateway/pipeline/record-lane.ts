/**
 * Which delivery lane a canonical record goes in (gateway/outbox/outbox.ts, "Lanes"; issue 17
 * point 6: urgent records go ahead of bulk backfill, and a first load never holds back live
 * changes). One rule, in this order:
 *
 * 1. `urgent`: an appointment whose start falls today or tomorrow in the practice's zone (the
 *    front desk works from it now), whatever else holds.
 * 2. `urgent` when new: a spectacle or contact-lens prescription not older than {@link HISTORY_DAYS}
 *    (a new Rx is what an order waits on). "New" is decided where it can be known: a polled row
 *    the outbox has never seen (`laneWhenNew`, decided in the outbox's transaction), or a pushed
 *    message (a resend of one is a duplicate and is not queued again). The canonical schema has
 *    no lens-order type (lens orders go from the cloud to the PMS, gateway/commands/); a lens
 *    order type added later belongs in {@link URGENT_WHEN_NEW}.
 * 3. `backfill`: a record of a polled source's first load (RawPage.firstLoad), or one whose
 *    clinical date is older than {@link HISTORY_DAYS} (history, from a first load or a re-read).
 * 4. `live`: the rest.
 *
 * The clinical date: an appointment's start, a prescription's issue date, an observation's
 * `observedAt`, otherwise the record's `occurredAt`. A date that does not parse counts as recent
 * (the record is not pushed behind a backlog for a value we cannot read).
 */
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { Lane, laneOfRank, laneRank, type LaneChoice } from '../outbox/outbox.ts';

/** A clinical date older than this many days is history: backfill. */
export const HISTORY_DAYS = 30;

/** Record types that are urgent when seen for the first time (and recent). */
export const URGENT_WHEN_NEW: ReadonlySet<string> = new Set(['spectacle-rx', 'contact-lens-rx']);

export interface LaneContext {
  nowMs: number;
  /** The practice's IANA zone: which day is today. */
  timezone: string;
  /** The record comes from a polled source's first load. */
  firstLoad: boolean;
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The calendar day (`YYYY-MM-DD`) of an instant in a zone. */
function dayIn(zone: string, ms: number): string {
  let f = dayFormats.get(zone);
  if (!f)
    dayFormats.set(zone, (f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })));
  return f.format(ms);
}

/** The day after a `YYYY-MM-DD` day. */
function nextDay(day: string): string {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/** The local day of a date or instant value; a date alone is that day. */
function dayOf(value: string, zone: string): string | undefined {
  if (DATE_ONLY.test(value)) return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : dayIn(zone, ms);
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The date the record is about (see the module comment). */
export function clinicalDate(r: CanonicalRecord): string | undefined {
  const d = r.data as Record<string, unknown>;
  switch (r.type) {
    case 'appointment':
      return text(d.start) ?? r.occurredAt;
    case 'spectacle-rx':
    case 'contact-lens-rx':
      return text(d.issuedAt) ?? r.occurredAt;
    case 'eye-exam-observation':
      return text(d.observedAt) ?? r.occurredAt;
    default:
      return r.occurredAt;
  }
}

/** The lane of one record, and the lane it takes instead when its source row is new. */
export function recordLane(r: CanonicalRecord, ctx: LaneContext): LaneChoice {
  const date = clinicalDate(r);
  if (r.type === 'appointment' && date !== undefined) {
    const day = dayOf(date, ctx.timezone);
    const today = dayIn(ctx.timezone, ctx.nowMs);
    if (day === today || day === nextDay(today)) return { lane: Lane.urgent };
  }
  const ms = date === undefined ? Number.NaN : Date.parse(date);
  const history = !Number.isNaN(ms) && ctx.nowMs - ms > HISTORY_DAYS * 86_400_000;
  const lane = ctx.firstLoad || history ? Lane.backfill : Lane.live;
  if (URGENT_WHEN_NEW.has(r.type) && r.op !== 'delete' && !history) return { lane, laneWhenNew: Lane.urgent };
  return { lane };
}

/** A bundle's lanes: the most urgent of its records' (for new rows too). */
export function highestLane(choices: readonly LaneChoice[]): LaneChoice {
  let lane = 2;
  let whenNew = 2;
  let anyWhenNew = false;
  for (const c of choices) {
    lane = Math.min(lane, laneRank(c.lane));
    whenNew = Math.min(whenNew, laneRank(c.laneWhenNew ?? c.lane));
    if (c.laneWhenNew !== undefined) anyWhenNew = true;
  }
  return anyWhenNew && whenNew < lane ? { lane: laneOfRank(lane), laneWhenNew: laneOfRank(whenNew) } : { lane: laneOfRank(lane) };
}

/** The lane a record goes in when it is known to be new (a pushed message). */
export function laneWhenNew(c: LaneChoice): LaneChoice {
  return { lane: c.laneWhenNew ?? c.lane ?? Lane.live };
}
