/**
 * How an API source proves itself, from its resolved `auth` settings:
 * - `client-credentials` — OAuth 2.0 client credentials (RFC 6749 §4.4): athenahealth.
 * - `refresh-token` — the authorization-code grant's refresh token (RFC 6749 §6): DrChrono, whose
 *   practice authorizes the gateway once; each refresh may rotate the refresh token, and the new
 *   one is kept sealed (rotating-secret.ts).
 * - `api-key` — a fixed header (`Authorization: Token …`, `x-api-key: …`): no renewal, so a 401
 *   is final (GW_API_AUTH_FAILED).
 * - `none`.
 * The HTTP layer (adapters/http/http-client.ts) adds the bearer header of an OAuth provider, and
 * answers a 401 with one renewal through it.
 */
import type { Clock } from '../../../gateway/clock.ts';
import type { SecretStore } from '../../contracts.ts';
import type { HttpClient } from '../../http/http-client.ts';
import type { ApiAuthSettings } from '../api-types.ts';
import { createRotatingSecret, type RotatingSecret } from './rotating-secret.ts';
import { createTokenAuth, requestToken, type TokenAuth } from './token-endpoint.ts';

export interface ApiAuth {
  kind: ApiAuthSettings['kind'];
  /** OAuth kinds: the provider the HTTP client takes. */
  provider?: TokenAuth;
  /** Headers every request carries (an API key). */
  headers: Record<string, string>;
  /** Refresh-token auth: the stored generation in use (0: the configured token). */
  refreshGeneration?(): number;
}

export interface ApiAuthDeps {
  /** The client the token endpoint is called with (no bearer of its own). */
  http: HttpClient;
  clock: Clock;
  secrets: SecretStore;
}

/** The secret name a source's rotated refresh tokens are kept under. */
export const REFRESH_TOKEN_SECRET = 'oauth-refresh-token';

export function createApiAuth(a: ApiAuthSettings, d: ApiAuthDeps): ApiAuth {
  switch (a.kind) {
    case 'none':
      return { kind: a.kind, headers: {} };
    case 'api-key': {
      const header = a.header.toLowerCase();
      return { kind: a.kind, headers: { [header]: `${a.prefix}${a.key ?? ''}` } };
    }
    case 'client-credentials': {
      const provider = createTokenAuth(
        (signal) =>
          requestToken({
            http: d.http,
            tokenUrl: a.tokenUrl ?? '',
            clientId: a.clientId ?? '',
            clientSecret: a.clientSecret ?? '',
            clientAuth: a.clientAuth,
            form: { grant_type: 'client_credentials', ...(a.scope ? { scope: a.scope } : {}) },
            signal,
          }),
        d.clock,
      );
      return { kind: a.kind, provider, headers: {} };
    }
    case 'refresh-token': {
      let rotating: RotatingSecret | undefined;
      // opened on first use: a seal key that cannot open the stored token fails the start, not the build
      const tokens = () => (rotating ??= createRotatingSecret(d.secrets, REFRESH_TOKEN_SECRET, a.refreshToken ?? ''));
      const provider = createTokenAuth(async (signal) => {
        const answer = await requestToken({
          http: d.http,
          tokenUrl: a.tokenUrl ?? '',
          clientId: a.clientId ?? '',
          clientSecret: a.clientSecret ?? '',
          clientAuth: a.clientAuth,
          form: { grant_type: 'refresh_token', refresh_token: tokens().current(), ...(a.scope ? { scope: a.scope } : {}) },
          signal,
        });
        // kept before the access token is used: a crash after this line loses nothing
        if (answer.refreshToken) tokens().rotate(answer.refreshToken);
        return answer;
      }, d.clock);
      return { kind: a.kind, provider, headers: {}, refreshGeneration: () => tokens().generation() };
    }
    default:
      return a.kind satisfies never;
  }
}
