/**
 * The `jti` values of tokens already taken, each until its token expires (CDS Hooks 2.0 "Trusting
 * CDS Clients": `jti` is a nonce; a token seen twice is a replay). Bounded by count: a token lives
 * five minutes at most, so the cap is room for that many minutes of requests; when every entry is
 * still live the cache refuses new tokens (fail closed) instead of forgetting one that could then
 * be replayed.
 */
export interface ReplayCache {
  /** `fresh`: remembered now; `replay`: seen before and not expired; `full`: no room (refused). */
  take(issuer: string, jti: string, expMs: number, nowMs: number): 'fresh' | 'replay' | 'full';
  size(): number;
}

export function createReplayCache(maxEntries: number): ReplayCache {
  const seen = new Map<string, number>();
  const sweep = (nowMs: number) => {
    for (const [k, exp] of seen) if (exp <= nowMs) seen.delete(k);
  };
  return {
    take(issuer, jti, expMs, nowMs) {
      // the issuer is part of the key: two EHRs' nonces are not each other's
      const k = `${issuer}\u0000${jti}`;
      const exp = seen.get(k);
      if (exp !== undefined && exp > nowMs) return 'replay';
      if (seen.size >= maxEntries) sweep(nowMs);
      if (seen.size >= maxEntries) return 'full';
      seen.set(k, expMs);
      return 'fresh';
    },
    size: () => seen.size,
  };
}
