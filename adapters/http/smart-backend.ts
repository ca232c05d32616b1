/**
 * SMART Backend Services (SMART App Launch 2.2, "Backend Services"): the client-credentials grant
 * with a signed JWT assertion (RFC 7523), for systems that read a FHIR server with no user present.
 *
 * - Discovery: `<base>/.well-known/smart-configuration` names the token endpoint and the signing
 *   algorithms it accepts; a configured token URL is used when a server publishes no discovery.
 * - The assertion: `iss` = `sub` = client id, `aud` = the token URL, `exp` ≤ 5 minutes ahead (we
 *   use 4, leaving room for clock skew), a unique `jti`, signed RS384 or ES384, `kid` in the header
 *   (and `jku` when the vendor fetches our JWKS from a URL).
 * - Tokens are cached and renewed before they expire (the last 10% of their life, at least 30 s,
 *   but never before half of it has passed, so a 30 s token is not renewed on every call);
 *   callers at once share one token request. `invalidate()` (after a 401) forces a renewal.
 * - The token request is sent once at the HTTP level: its assertion's `jti` may be used only
 *   once, so resending it after a lost answer is refused (`invalid_client`) for good. A transient
 *   failure (network, 5xx, 429) is tried again here instead, up to `tokenAttempts`, each time
 *   with a fresh assertion (new `jti`, `iat`, `exp`), after a back-off on the clock or the
 *   server's Retry-After (up to `maxRetryAfterMs`, well inside the assertion's life; a longer
 *   wait goes to the caller as ApiError.retryInMs).
 * - The token URL (configured or discovered) must be https (http only to this machine), without
 *   credentials in it: it receives the assertion and answers with the token.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../gateway/clock.ts';
import type { ClientKey } from './client-keys.ts';
import { ApiError, checkEndpointUrl, OAUTH_ERRORS, safeUrl } from './http-error.ts';
import { sleepOn, type AuthProvider, type HttpClient } from './http-client.ts';

export interface SmartConfiguration {
  token_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  token_endpoint_auth_signing_alg_values_supported?: string[];
  grant_types_supported?: string[];
  scopes_supported?: string[];
  capabilities?: string[];
}

/** Reads the server's SMART configuration; undefined when it publishes none (404). */
export async function discoverSmart(http: HttpClient, baseUrl: string, signal?: AbortSignal): Promise<SmartConfiguration | undefined> {
  const url = `${baseUrl.replace(/\/+$/, '')}/.well-known/smart-configuration`;
  const res = await http.request({ url, anonymous: true, accept: [404], headers: { accept: 'application/json' }, signal });
  if (res.status === 404) {
    await res.stream().cancel();
    return undefined;
  }
  const body = await res.json();
  if (!body || typeof body !== 'object') throw new ApiError('GW_API_REFUSED', `${safeUrl(url)} is not a SMART configuration`);
  return body as SmartConfiguration;
}

export interface SmartBackendOptions {
  http: HttpClient;
  clock: Clock;
  clientId: string;
  tokenUrl: string;
  scope: string;
  key: ClientKey;
  /** Sent as the assertion's `jku` header when the vendor fetches the JWKS from a URL. */
  jwksUrl?: string;
  /**
   * The wall clock the assertion's `iat`/`exp` are stamped with (default Date.now): the token
   * endpoint checks them against its own clock, so they are facts about real time, while `clock`
   * only schedules the token's renewal (and a test's manual clock may run far ahead of real time).
   */
  wallNow?: () => number;
  /** Token requests tried for one token, each with a fresh assertion (default 3). */
  tokenAttempts?: number;
  /** First back-off between token requests (doubled each time; default 1 s), on `clock`. */
  backoffInitialMs?: number;
  /** Longest Retry-After waited between token requests (default 60 s, at most {@link ASSERTION_LIFETIME_S} − 60 s). */
  maxRetryAfterMs?: number;
}

/** The assertion's lifetime (`exp` − `iat`): SMART asks for at most 5 minutes; 4 leave room for clock skew. */
export const ASSERTION_LIFETIME_S = 240;

/** When to renew a token of `lifeMs` got at `now`: in its last 10% (at least 30 s before it ends), but not before half of it has passed. */
export function renewAtOf(now: number, lifeMs: number): number {
  return now + Math.max(lifeMs / 2, lifeMs - Math.max(30_000, lifeMs / 10));
}

export interface SmartBackendAuth extends AuthProvider {
  /** When the cached token expires (ms), if one is held. */
  expiresAt(): number | undefined;
  /** The scopes the server granted with the last token. */
  grantedScope(): string | undefined;
}

export function createSmartBackendAuth(o: SmartBackendOptions): SmartBackendAuth {
  checkEndpointUrl(o.tokenUrl, "the token endpoint (the SMART configuration's token_endpoint, or the source's tokenUrl)");
  const attempts = Math.max(1, o.tokenAttempts ?? 3);
  const initial = o.backoffInitialMs ?? 1000;
  const retryCap = Math.min(o.maxRetryAfterMs ?? 60_000, (ASSERTION_LIFETIME_S - 60) * 1000);
  let token: { value: string; expiresAt: number; renewAt: number; scope?: string } | undefined;
  let pending: Promise<string> | undefined;

  async function assertion(): Promise<string> {
    const now = Math.floor((o.wallNow ?? Date.now)() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: o.key.alg, kid: o.key.kid, typ: 'JWT', ...(o.jwksUrl ? { jku: o.jwksUrl } : {}) })
      .setIssuer(o.clientId)
      .setSubject(o.clientId)
      .setAudience(o.tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + ASSERTION_LIFETIME_S)
      .setJti(randomUUID())
      .sign(o.key.privateKey);
  }

  /** Up to `attempts` token requests, each with its own assertion; only transient failures are tried again. */
  async function fetchToken(signal?: AbortSignal): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await requestToken(signal);
      } catch (e) {
        if (!(e instanceof ApiError) || e.retry !== 'transient' || attempt >= attempts || signal?.aborted) throw e;
        const wait = e.retryInMs ?? initial * 2 ** (attempt - 1);
        if (wait > retryCap) throw e;
        await sleepOn(o.clock, wait, signal);
      }
    }
  }

  async function requestToken(signal?: AbortSignal): Promise<string> {
    const res = await o.http.request({
      method: 'POST',
      url: o.tokenUrl,
      anonymous: true,
      accept: [400, 401],
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      // signed when sent (after any quota wait), and sent once: a jti is good for one request
      body: async () =>
        new URLSearchParams({
          grant_type: 'client_credentials',
          scope: o.scope,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion(),
        }).toString(),
      maxAttempts: 1,
      signal,
    });
    const body = (await res.json().catch(() => undefined)) as
      | { access_token?: unknown; expires_in?: unknown; scope?: unknown; error?: unknown }
      | undefined;
    if (res.status !== 200 || typeof body?.access_token !== 'string') {
      // the OAuth error is a registered code (RFC 6749 §5.2); its description is the server's text, not kept
      // RFC 6749 §5.2's registered codes only: anything else the server says is its own text, not kept
      const error =
        typeof body?.error === 'string' && OAUTH_ERRORS.has(body.error)
          ? body.error
          : typeof body?.error === 'string'
            ? 'other'
            : `status ${res.status}`;
      throw new ApiError('GW_API_AUTH_FAILED', `the token endpoint refused the client assertion (${error})`, {
        status: res.status,
        detail: { error, tokenUrl: safeUrl(o.tokenUrl) },
      });
    }
    const lifeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300) * 1000;
    const now = o.clock.now();
    token = {
      value: body.access_token,
      expiresAt: now + lifeMs,
      renewAt: renewAtOf(now, lifeMs),
      scope: typeof body.scope === 'string' ? body.scope : undefined,
    };
    return body.access_token;
  }

  return {
    async header(signal) {
      if (token && o.clock.now() < token.renewAt) return `Bearer ${token.value}`;
      pending ??= fetchToken(signal).finally(() => {
        pending = undefined;
      });
      return `Bearer ${await pending}`;
    },
    invalidate() {
      token = undefined;
    },
    expiresAt: () => token?.expiresAt,
    grantedScope: () => token?.scope,
  };
}
