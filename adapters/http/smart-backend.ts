/**
 * SMART Backend Services (SMART App Launch 2.2, "Backend Services"): the client-credentials grant
 * with a signed JWT assertion (RFC 7523), for systems that read a FHIR server with no user present.
 *
 * - Discovery: `<base>/.well-known/smart-configuration` names the token endpoint and the signing
 *   algorithms it accepts; a configured token URL is used when a server publishes no discovery.
 * - The assertion: `iss` = `sub` = client id, `aud` = the token URL, `exp` ≤ 5 minutes ahead (we
 *   use 4, leaving room for clock skew), a unique `jti`, signed RS384 or ES384, `kid` in the header
 *   (and `jku` when the vendor fetches our JWKS from a URL).
 * - Tokens are cached and renewed before they expire (the last 10% of their life, at least 30 s);
 *   callers at once share one token request. `invalidate()` (after a 401) forces a renewal.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../gateway/clock.ts';
import type { ClientKey } from './client-keys.ts';
import { ApiError, safeUrl } from './http-error.ts';
import type { AuthProvider, HttpClient } from './http-client.ts';

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
}

export interface SmartBackendAuth extends AuthProvider {
  /** When the cached token expires (ms), if one is held. */
  expiresAt(): number | undefined;
  /** The scopes the server granted with the last token. */
  grantedScope(): string | undefined;
}

export function createSmartBackendAuth(o: SmartBackendOptions): SmartBackendAuth {
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
      .setExpirationTime(now + 240)
      .setJti(randomUUID())
      .sign(o.key.privateKey);
  }

  async function fetchToken(signal?: AbortSignal): Promise<string> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: o.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(),
    });
    const res = await o.http.request({
      method: 'POST',
      url: o.tokenUrl,
      anonymous: true,
      accept: [400, 401],
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal,
    });
    const body = (await res.json().catch(() => undefined)) as
      | { access_token?: unknown; expires_in?: unknown; scope?: unknown; error?: unknown }
      | undefined;
    if (res.status !== 200 || typeof body?.access_token !== 'string') {
      // the OAuth error is a registered code (RFC 6749 §5.2); its description is the server's text, not kept
      const error = typeof body?.error === 'string' ? body.error.slice(0, 40) : `status ${res.status}`;
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
      renewAt: now + lifeMs - Math.max(30_000, lifeMs / 10),
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
