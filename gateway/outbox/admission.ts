/**
 * The outbox's admission rules, in one place for both implementations (memory-outbox.ts and the
 * SQLite writer, sqlite-writer.ts), so they cannot answer the same input differently:
 *
 *  1. Dedupe first. A resend of a message the outbox already holds (its key in the resend log) is
 *     `duplicate` (same hash) or `conflict` (another hash) whatever the byte totals: at the cap,
 *     answering `full` would tell the sender to retry a message the gateway already has.
 *  2. The byte cap: everything the outbox holds (queued rows and dead letters) stays within
 *     `maxBytes`.
 *  3. The dead-letter share: dead letters alone stay within `maxDeadLetterBytes`, whichever way
 *     they come in (an intake's dead letter, a page's row that could not be mapped, a bundle's
 *     refused records), so bad input cannot crowd out the queue.
 *
 * The functions are pure over the totals they are given; the resend log is reached through
 * `ResendLog` so that SQLite can claim a new key and find an old one in one statement.
 */
import type { EnqueueOutcome } from './outbox.ts';

/** What the outbox holds now, and its limits. `deadBytes` is part of `bytes`. */
export interface AdmissionTotals {
  bytes: number;
  deadBytes: number;
  maxBytes: number;
  maxDeadLetterBytes: number;
}

/** What a write adds: all its bytes, and of them the dead letters' (either may be negative: a replaced or freed row). */
export interface Growth {
  bytes: number;
  deadBytes: number;
}

/** The resend log as admission sees it. */
export interface ResendLog {
  /** The hash held under `key`, if any; writes nothing. */
  lookup(key: string): string | undefined;
  /** Records `key` with `hash` unless a hash is held already, which it returns instead (then nothing is written). */
  claim(key: string, hash: string): string | undefined;
}

/** Whether a write of `growth` keeps the outbox within its cap and the dead letters within their share. */
export function fits(totals: AdmissionTotals, growth: Growth): boolean {
  return totals.bytes + growth.bytes <= totals.maxBytes && totals.deadBytes + growth.deadBytes <= totals.maxDeadLetterBytes;
}

/**
 * One intake's entry: dedupe first, then the cap. The key is claimed in the resend log only when
 * the entry is accepted (a message refused as `full` is not remembered, so its resend is taken
 * once there is room).
 */
export function admitEntry(
  entry: { bytes: number; dedupe?: { key: string; hash: string } },
  totals: AdmissionTotals,
  log: ResendLog,
): EnqueueOutcome {
  const room = fits(totals, { bytes: entry.bytes, deadBytes: 0 });
  if (entry.dedupe) {
    const prior = room ? log.claim(entry.dedupe.key, entry.dedupe.hash) : log.lookup(entry.dedupe.key);
    if (prior !== undefined) return prior === entry.dedupe.hash ? 'duplicate' : 'conflict';
  }
  return room ? 'accepted' : 'full';
}

/**
 * A polled source's page, whole: its changed rows' records and dead letters together. A page that
 * does not fit is refused whole (no record, no dead letter, no cursor), so the poller pauses and
 * reads it again later; it is never half-committed.
 */
export function admitPage(growth: Growth, totals: AdmissionTotals): 'accepted' | 'full' {
  return fits(totals, growth) ? 'accepted' : 'full';
}

/** Dead letters (input kept, or a bundle's refused records) adding `growth` bytes, after `freed` bytes of a row leave. */
export function admitDeadLetters(growth: number, totals: AdmissionTotals, freed = 0): boolean {
  return fits(totals, { bytes: growth - freed, deadBytes: growth });
}
