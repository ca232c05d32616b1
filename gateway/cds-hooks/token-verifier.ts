/**
 * The EHR's bearer token on each CDS Hooks call (CDS Hooks 2.0 "Trusting CDS Clients"): a JWT the
 * CDS client signs with its private key, its public key published as a JWK Set at `jku`.
 *
 * Checked in this order, each failure a refusal with its own reason (no PHI: reasons are words
 * from {@link RefusalReason}, never token contents):
 * 1. `Authorization: Bearer <compact JWS>` present;
 * 2. `alg` is RS256, RS384, ES256 or ES384 — HS* (and `none`) are refused before any key is looked
 *    at, so an HMAC "signed" with the EHR's public key bytes never gets near verification;
 * 3. `iss` is an allow-listed issuer, and the header's `jku` is one of that issuer's URLs (a token
 *    without `jku` is checked against the issuer's first) — keys come only from configured URLs;
 * 4. the signature verifies with a key of that set (jose `jwtVerify`), `iss` and `aud` (the
 *    service's URL: `publicUrl` + `/cds-services/{id}`) match, `exp`, `iat` and `jti` are present,
 *    `exp` is not past and at most five minutes ahead (the spec's bound), `iat` not ahead;
 * 5. the `jti` was not seen before from that issuer (replay-cache.ts), checked last so that an
 *    unsigned token cannot fill the cache.
 * Clocks may differ by {@link CLOCK_TOLERANCE_S}.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../clock.ts';
import type { KeySets } from './jwks-keys.ts';
import { createReplayCache, type ReplayCache } from './replay-cache.ts';

/** Asymmetric algorithms only (the spec names ES384 and RS384; RS256/ES256 are what some EHRs sign with). */
export const CDS_ALGORITHMS = ['RS256', 'RS384', 'ES256', 'ES384'] as const;
export const CLOCK_TOLERANCE_S = 60;
/** CDS Hooks 2.0: `exp` "MUST NOT be more than five minutes in the future". */
export const MAX_LIFETIME_S = 300;

export const RefusalReason = {
  noToken: 'no-token',
  malformed: 'malformed',
  algorithm: 'algorithm',
  issuer: 'issuer',
  jku: 'jku',
  signature: 'signature',
  audience: 'audience',
  expired: 'expired',
  lifetime: 'lifetime',
  notYetValid: 'not-yet-valid',
  claims: 'claims',
  replay: 'replay',
  replayCacheFull: 'replay-cache-full',
  /** Not the client's fault: its key set could not be fetched (503, GW_CDS_KEYS_UNAVAILABLE). */
  keysUnavailable: 'keys-unavailable',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

export interface TrustedIssuer {
  iss: string;
  jku: string;
}

export type Verdict<I extends TrustedIssuer> = { ok: true; issuer: I; claims: JWTPayload } | { ok: false; reason: RefusalReason };

export interface TokenVerifier<I extends TrustedIssuer> {
  /** `audiences`: the URLs this endpoint answers as (its `aud`). */
  verify(authorization: string | undefined, audiences: readonly string[]): Promise<Verdict<I>>;
}

const refuse = (reason: RefusalReason) => ({ ok: false, reason }) as const;

/** What jose's error means for the client (the codes are jose's stable `code` values). */
function reasonOf(e: unknown): RefusalReason {
  if (!(e instanceof errors.JOSEError)) return RefusalReason.keysUnavailable; // fetch failed (DNS, refused, TLS)
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return RefusalReason.expired;
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason } = e as errors.JWTClaimValidationFailed;
      if (reason === 'missing') return RefusalReason.claims;
      if (claim === 'aud') return RefusalReason.audience;
      if (claim === 'iss') return RefusalReason.issuer;
      if (claim === 'nbf' || claim === 'iat') return RefusalReason.notYetValid;
      return RefusalReason.claims;
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return RefusalReason.algorithm;
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
      return RefusalReason.keysUnavailable;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return RefusalReason.signature;
    default:
      return RefusalReason.malformed;
  }
}

export function createTokenVerifier<I extends TrustedIssuer>(o: {
  issuers: readonly I[];
  keys: KeySets;
  clock: Clock;
  /** Live `jti`s remembered at most (default 50,000: five minutes of 160 requests a second). */
  maxReplayEntries?: number;
}): TokenVerifier<I> {
  const replay: ReplayCache = createReplayCache(o.maxReplayEntries ?? 50_000);
  const allowed = new Set<string>(CDS_ALGORITHMS);
  return {
    async verify(authorization, audiences) {
      const m = /^Bearer[ ]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i.exec(authorization ?? '');
      if (!authorization) return refuse(RefusalReason.noToken);
      if (!m) return refuse(RefusalReason.malformed);
      const token = m[1];
      let header: ReturnType<typeof decodeProtectedHeader>;
      let unverified: JWTPayload;
      try {
        header = decodeProtectedHeader(token);
        unverified = decodeJwt(token);
      } catch {
        return refuse(RefusalReason.malformed);
      }
      if (typeof header.alg !== 'string' || !allowed.has(header.alg)) return refuse(RefusalReason.algorithm);
      const candidates = o.issuers.filter((i) => i.iss === unverified.iss);
      if (candidates.length === 0) return refuse(RefusalReason.issuer);
      const issuer = header.jku === undefined ? candidates[0] : candidates.find((i) => i.jku === header.jku);
      if (!issuer) return refuse(RefusalReason.jku);
      const keys = o.keys.get(issuer.jku);
      if (!keys) return refuse(RefusalReason.keysUnavailable);
      const now = o.clock.now();
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(token, keys, {
          algorithms: [...CDS_ALGORITHMS],
          issuer: issuer.iss,
          audience: [...audiences],
          requiredClaims: ['exp', 'iat', 'jti'],
          clockTolerance: CLOCK_TOLERANCE_S,
          currentDate: new Date(now),
        }));
      } catch (e) {
        return refuse(reasonOf(e));
      }
      const nowS = now / 1000;
      const exp = claims.exp as number;
      if (exp > nowS + MAX_LIFETIME_S + CLOCK_TOLERANCE_S) return refuse(RefusalReason.lifetime);
      if ((claims.iat as number) > nowS + CLOCK_TOLERANCE_S) return refuse(RefusalReason.notYetValid);
      if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) return refuse(RefusalReason.claims);
      // remembered past exp by the tolerance: until then the same token would still verify
      const taken = replay.take(issuer.iss, claims.jti, (exp + CLOCK_TOLERANCE_S) * 1000, now);
      if (taken === 'replay') return refuse(RefusalReason.replay);
      if (taken === 'full') return refuse(RefusalReason.replayCacheFull);
      return { ok: true, issuer, claims };
    },
  };
}
