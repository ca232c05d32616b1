/** Which cards a patient's summary gives, counted in the practice's calendar days. */
import { describe, expect, it } from 'vitest';
import { addMonths, cardsFor, MAX_SUMMARY, type CardSettings } from '../../../gateway/cds-hooks/cards.ts';
import type { PatientSummary } from '../../../gateway/cds-hooks/patient-facts.ts';

const settings: CardSettings = {
  rxExpiryWarningDays: 30,
  rxValidityMonths: { spectacle: 24, contactLens: 12 },
  appointmentDays: 90,
  timezone: 'UTC',
};
const at = (iso: string) => Date.parse(iso);
const summaries = (s: PatientSummary, nowMs: number, o: Partial<CardSettings> = {}) =>
  cardsFor(s, { hook: 'patient-view', nowMs }, { ...settings, ...o }).map((c) => [c.kind, c.card.indicator, c.card.summary]);

describe('CDS cards', () => {
  it('estimates a missing expiry as issue date + validity months (the day clamped to the month) and says so', () => {
    expect(addMonths('2024-01-31', 1)).toBe('2024-02-29');
    expect(addMonths('2025-11-30', 3)).toBe('2026-02-28');
    const s: PatientSummary = { contactLens: { id: 'c', issuedAt: '2025-06-10', occurredAt: '2025-06-10T00:00:00Z' }, appointments: [] };
    const [card] = cardsFor(s, { hook: 'patient-view', nowMs: at('2026-06-01T12:00:00Z') }, settings);
    expect(card.card.summary).toBe('Contact lens Rx expires in 9 days (2026-06-10)');
    expect(card.card.detail).toBe(
      'Latest contact lens prescription on file at the optical practice: issued 2025-06-10, no expiry date on file; 2026-06-10 is estimated as 12 months from issue. An eye exam renews it.',
    );
  });

  it('gives a card inside the warning window, on the day (warning) and after (warning), none before the window', () => {
    const s = (expiresAt: string): PatientSummary => ({
      spectacle: { id: 's', issuedAt: '2024-06-01', expiresAt, occurredAt: '' },
      appointments: [],
    });
    const now = at('2026-06-01T12:00:00Z');
    expect(summaries(s('2026-07-02'), now)).toEqual([]);
    expect(summaries(s('2026-07-01'), now)).toEqual([['rx-expiry', 'info', 'Spectacle Rx expires in 30 days (2026-07-01)']]);
    expect(summaries(s('2026-06-02'), now)).toEqual([['rx-expiry', 'info', 'Spectacle Rx expires in 1 day (2026-06-02)']]);
    expect(summaries(s('2026-06-01'), now)).toEqual([['rx-expiry', 'warning', 'Spectacle Rx expires today (2026-06-01)']]);
    expect(summaries(s('2026-05-31'), now)).toEqual([['rx-expiry', 'warning', 'Spectacle Rx expired 1 day ago (2026-05-31)']]);
  });

  it("counts days in the practice's zone: 02:00 UTC is still the day before in Chicago", () => {
    const s: PatientSummary = { spectacle: { id: 's', issuedAt: '2024-06-01', expiresAt: '2026-06-01', occurredAt: '' }, appointments: [] };
    const now = at('2026-06-01T02:00:00Z');
    expect(summaries(s, now)).toEqual([['rx-expiry', 'warning', 'Spectacle Rx expires today (2026-06-01)']]);
    expect(summaries(s, now, { timezone: 'America/Chicago' })).toEqual([
      ['rx-expiry', 'info', 'Spectacle Rx expires in 1 day (2026-06-01)'],
    ]);
  });

  it('shows the next appointment within appointmentDays in local time; none past the window or when switched off', () => {
    const s: PatientSummary = {
      appointments: [
        { key: 'k1', start: '2026-06-03T15:30:00Z', status: 'booked', visit: 'Contact lens fitting' },
        { key: 'k2', start: '2026-06-20T15:30:00Z', status: 'booked' },
      ],
    };
    const now = at('2026-06-01T12:00:00Z');
    expect(summaries(s, now, { timezone: 'America/Chicago' })).toEqual([
      ['appointment', 'info', 'Upcoming appointment: 2026-06-03 10:30, Contact lens fitting'],
    ]);
    expect(summaries(s, now, { appointmentDays: 1 })).toEqual([]);
    expect(summaries(s, now, { appointmentDays: 0 })).toEqual([]);
    // booking the same slot again is not "already booked"
    const booking = cardsFor(
      s,
      { hook: 'appointment-book', nowMs: now, booking: { keys: [], starts: [at('2026-06-03T15:30:00Z')] } },
      settings,
    );
    expect(booking.map((c) => c.card.summary)).toEqual(['Already booked: 2026-06-20 15:30']);
  });

  it('keeps a summary within 140 characters', () => {
    const s: PatientSummary = { appointments: [{ key: 'k', start: '2026-06-03T15:30:00Z', status: 'booked', visit: 'x'.repeat(300) }] };
    const [c] = cardsFor(s, { hook: 'patient-view', nowMs: at('2026-06-01T12:00:00Z') }, settings);
    expect(c.card.summary.length).toBe(MAX_SUMMARY);
    expect(c.card.summary.endsWith('…')).toBe(true);
  });
});
