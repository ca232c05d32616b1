/**
 * The seal key's check value: an HMAC-SHA256 of a fixed label under the key. The outbox stores it
 * (migration 6), so a start with another key — a key file replaced, or restored from the wrong
 * gateway's backup — is caught before a single record is accepted or sent, instead of surfacing
 * later as rows that will not open. It reveals nothing of the key (HMAC is a PRF) and is never
 * used for anything but this comparison.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const LABEL = 'eyewear-ML seal key check v1';

/** Hex; the same key always gives the same value. */
export function keyCheckValue(key: Uint8Array): string {
  return createHmac('sha256', key).update(LABEL).digest('hex');
}

/** Constant-time comparison of two check values. */
export function keyCheckMatches(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
