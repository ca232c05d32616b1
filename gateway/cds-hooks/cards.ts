/**
 * CDS Hooks 2.0 cards (https://cds-hooks.hl7.org/2.0/#card-attributes) from a patient's summary:
 * `summary` (at most 140 characters), `indicator` (`info`, `warning`, `critical`), `source.label`,
 * and `detail` in GitHub-flavoured markdown. Pure: the caller passes the instant and the practice's
 * time zone, so "expires in 10 days" is counted in the practice's calendar days.
 *
 * - Prescription expiry, per kind (spectacle, contact lens): an expired one is a `warning`, one
 *   expiring today too; one expiring within `rxExpiryWarningDays` is `info`. Without `expiresAt`
 *   the expiry is estimated as issue date + `rxValidityMonths`, and the card says so.
 * - The next appointment (`patient-view`), or one already booked while another is being booked
 *   (`appointment-book`: a possible double booking), within `appointmentDays`.
 */
import { randomUUID } from 'node:crypto';
import type { AppointmentEntry, PatientSummary, RxEntry, RxKind } from './patient-facts.ts';

export const Indicator = { info: 'info', warning: 'warning', critical: 'critical' } as const;
export type Indicator = (typeof Indicator)[keyof typeof Indicator];

export interface Card {
  uuid: string;
  summary: string;
  indicator: Indicator;
  source: { label: string };
  detail?: string;
}

/** What each card is about, for the counts in `/status` and `/metrics` (a bounded set). */
export const CardKind = { rxExpiry: 'rx-expiry', appointment: 'appointment' } as const;
export type CardKind = (typeof CardKind)[keyof typeof CardKind];

export interface CardSettings {
  rxExpiryWarningDays: number;
  rxValidityMonths: { spectacle: number; contactLens: number };
  appointmentDays: number;
  /** IANA zone of the practice (gateway.timezone, resolved). */
  timezone: string;
}

export interface CardContext {
  hook: 'patient-view' | 'appointment-book';
  nowMs: number;
  /**
   * `appointment-book`: the appointments being booked, which are not "already booked": their
   * identifiers (`system|value`) and start instants (the same slot coming back from the PMS).
   */
  booking?: { keys: readonly string[]; starts: readonly number[] };
}

export const SOURCE_LABEL = 'eyewear-ML';
export const MAX_SUMMARY = 140;

const RX_NAME: Record<RxKind, string> = { spectacle: 'Spectacle Rx', contactLens: 'Contact lens Rx' };
const RX_WORDS: Record<RxKind, string> = { spectacle: 'spectacle prescription', contactLens: 'contact lens prescription' };

const clip = (s: string) => (s.length <= MAX_SUMMARY ? s : `${s.slice(0, MAX_SUMMARY - 1)}…`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The practice's calendar date of an instant, `YYYY-MM-DD`. */
export function localDate(ms: number, timeZone: string): string {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
      .formatToParts(ms)
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day}`;
}

/** An instant as the practice reads it: `YYYY-MM-DD HH:mm`. */
export function localDateTime(ms: number, timeZone: string): string {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(ms)
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

const dayNumber = (date: string) =>
  Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / 86_400_000;

/** `YYYY-MM-DD` plus whole months, the day clamped to the month's end (31 Jan + 1 month = 28/29 Feb). */
export function addMonths(date: string, months: number): string {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7)) - 1 + months;
  const d = Number(date.slice(8, 10));
  const year = y + Math.floor(m / 12);
  const month = ((m % 12) + 12) % 12;
  const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return `${String(year).padStart(4, '0')}-${String(month + 1).padStart(2, '0')}-${String(Math.min(d, last)).padStart(2, '0')}`;
}

const FULL_DATE = /^\d{4}-\d{2}-\d{2}$/;

function rxCard(kind: RxKind, rx: RxEntry, today: string, s: CardSettings): Card | undefined {
  if (!FULL_DATE.test(rx.issuedAt)) return undefined;
  const given = rx.expiresAt !== undefined && FULL_DATE.test(rx.expiresAt);
  const months = s.rxValidityMonths[kind];
  const expiry = given ? (rx.expiresAt as string) : addMonths(rx.issuedAt, months);
  const days = dayNumber(expiry) - dayNumber(today);
  if (days > s.rxExpiryWarningDays) return undefined;
  const name = RX_NAME[kind];
  const summary =
    days < 0
      ? `${name} expired ${plural(-days, 'day')} ago (${expiry})`
      : days === 0
        ? `${name} expires today (${expiry})`
        : `${name} expires in ${plural(days, 'day')} (${expiry})`;
  const basis = given ? `expires ${expiry}` : `no expiry date on file; ${expiry} is estimated as ${months} months from issue`;
  return {
    uuid: randomUUID(),
    summary: clip(summary),
    indicator: days <= 0 ? 'warning' : 'info',
    source: { label: SOURCE_LABEL },
    detail: `Latest ${RX_WORDS[kind]} on file at the optical practice: issued ${rx.issuedAt}, ${basis}. An eye exam renews it.`,
  };
}

function appointmentCard(a: AppointmentEntry, ctx: CardContext, s: CardSettings): Card {
  const when = localDateTime(Date.parse(a.start), s.timezone);
  const what = a.visit ? `, ${a.visit}` : '';
  const summary = ctx.hook === 'appointment-book' ? `Already booked: ${when}${what}` : `Upcoming appointment: ${when}${what}`;
  const lines = [`Status: ${a.status}.`];
  if (a.provider) lines.push(`With: ${a.provider}.`);
  if (a.location) lines.push(`Where: ${a.location}.`);
  if (ctx.hook === 'appointment-book') lines.push('Check that the new booking is not a duplicate.');
  return { uuid: randomUUID(), summary: clip(summary), indicator: 'info', source: { label: SOURCE_LABEL }, detail: lines.join('\n\n') };
}

/** The cards for one request, in a stable order: prescriptions (spectacle, then contact lens), then the appointment. */
export function cardsFor(summary: PatientSummary | undefined, ctx: CardContext, s: CardSettings): Array<{ kind: CardKind; card: Card }> {
  if (!summary) return [];
  const out: Array<{ kind: CardKind; card: Card }> = [];
  const today = localDate(ctx.nowMs, s.timezone);
  for (const kind of ['spectacle', 'contactLens'] as const) {
    const rx = summary[kind];
    const card = rx ? rxCard(kind, rx, today, s) : undefined;
    if (card) out.push({ kind: CardKind.rxExpiry, card });
  }
  if (s.appointmentDays > 0) {
    const until = ctx.nowMs + s.appointmentDays * 86_400_000;
    const keys = new Set(ctx.booking?.keys ?? []);
    const starts = new Set(ctx.booking?.starts ?? []);
    const next = summary.appointments.find((a) => {
      const t = Date.parse(a.start);
      return t >= ctx.nowMs && t <= until && !keys.has(a.key) && !starts.has(t);
    });
    if (next) out.push({ kind: CardKind.appointment, card: appointmentCard(next, ctx, s) });
  }
  return out;
}
