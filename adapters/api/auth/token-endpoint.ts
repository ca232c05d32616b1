/**
 * One OAuth 2.0 token request (RFC 6749 §4.4 client credentials, §6 refresh) and the cache that
 * keeps its answer: tokens are renewed before they expire (in the last tenth of their life, at
 * least 30 s before, never later than half-way), callers at once share one request, and
 * `invalidate()` (after a 401) forces a renewal.
 *
 * The token endpoint's `error` is kept when it is a registered code (RFC 6749 §5.2), else shown as
 * `other`; its `error_description` is the server's free text and is never kept.
 */
import type { Clock } from '../../../gateway/clock.ts';
import type { AuthProvider, HttpClient } from '../../http/http-client.ts';
import { ApiError, OAUTH_ERRORS, safeUrl } from '../../http/http-error.ts';

export interface TokenAnswer {
  accessToken: string;
  /** Seconds; absent when the server did not say. */
  expiresIn?: number;
  refreshToken?: string;
  scope?: string;
  tokenType?: string;
}

export interface TokenRequest {
  http: HttpClient;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** `basic`: HTTP Basic (RFC 6749 §2.3.1, the one servers must support); `body`: in the form. */
  clientAuth: 'basic' | 'body';
  form: Record<string, string>;
  signal?: AbortSignal;
}

/** Basic credentials: each part form-encoded first, as RFC 6749 §2.3.1 asks. */
function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

export async function requestToken(r: TokenRequest): Promise<TokenAnswer> {
  const form = new URLSearchParams(r.form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (r.clientAuth === 'basic') headers.authorization = basic(r.clientId, r.clientSecret);
  else {
    form.set('client_id', r.clientId);
    form.set('client_secret', r.clientSecret);
  }
  const res = await r.http.request({
    method: 'POST',
    url: r.tokenUrl,
    anonymous: true,
    accept: [400, 401, 403],
    headers,
    body: form.toString(),
    signal: r.signal,
  });
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (res.status !== 200 || typeof body?.access_token !== 'string' || body.access_token === '') {
    const error = typeof body?.error !== 'string' ? `status ${res.status}` : OAUTH_ERRORS.has(body.error) ? body.error : 'other';
    throw new ApiError('GW_API_AUTH_FAILED', `the token endpoint refused the gateway (${error})`, {
      status: res.status,
      detail: { error, tokenUrl: safeUrl(r.tokenUrl), grant: r.form.grant_type ?? '?' },
    });
  }
  const expires = Number(body.expires_in);
  return {
    accessToken: body.access_token,
    expiresIn: Number.isFinite(expires) && expires > 0 ? expires : undefined,
    refreshToken: typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : undefined,
    scope: typeof body.scope === 'string' ? body.scope : undefined,
    tokenType: typeof body.token_type === 'string' ? body.token_type : undefined,
  };
}

export interface TokenAuth extends AuthProvider {
  /** When the cached token expires (ms), if one is held. */
  expiresAt(): number | undefined;
  /** Tokens fetched since start (a renewal is one). */
  fetched(): number;
}

/** Caches what `fetchToken` gets; `defaultLifeSeconds` when the server gives no `expires_in`. */
export function createTokenAuth(
  fetchToken: (signal?: AbortSignal) => Promise<TokenAnswer>,
  clock: Clock,
  defaultLifeSeconds = 300,
): TokenAuth {
  let token: { value: string; expiresAt: number; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  let fetched = 0;

  async function renew(signal?: AbortSignal): Promise<string> {
    const a = await fetchToken(signal);
    fetched++;
    const lifeMs = (a.expiresIn ?? defaultLifeSeconds) * 1000;
    const now = clock.now();
    const early = Math.min(Math.max(30_000, lifeMs / 10), lifeMs / 2);
    token = { value: a.accessToken, expiresAt: now + lifeMs, renewAt: now + lifeMs - early };
    return a.accessToken;
  }

  return {
    async header(signal) {
      if (token && clock.now() < token.renewAt) return `Bearer ${token.value}`;
      pending ??= renew(signal).finally(() => {
        pending = undefined;
      });
      return `Bearer ${await pending}`;
    },
    invalidate() {
      token = undefined;
    },
    expiresAt: () => token?.expiresAt,
    fetched: () => fetched,
  };
}
