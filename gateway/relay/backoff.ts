/**
 * Exponential backoff with "equal jitter" (AWS Architecture Blog, "Exponential Backoff and
 * Jitter"): half the capped exponential delay fixed, half random, so retries spread out but never
 * collapse to zero.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export function backoffDelay(failures: number, p: BackoffPolicy): number {
  if (failures <= 0) return 0;
  const cap = Math.min(p.maxMs, p.initialMs * 2 ** Math.min(failures - 1, 30));
  const r = (p.random ?? Math.random)();
  return Math.round(cap / 2 + r * (cap / 2));
}
