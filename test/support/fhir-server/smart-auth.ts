/**
 * SMART Backend Services (SMART App Launch 2.2, "Backend Services"): the client authenticates
 * with a signed JWT (RFC 7523 `private_key_jwt`) and gets a short-lived bearer token for the
 * FHIR API. The assertion rules checked here are the spec's: `iss` and `sub` are the registered
 * client id, `aud` is the token URL, `exp` is present and no more than five minutes ahead, `jti`
 * is never reused, the alg is RS384 or ES384, and the signature verifies against the client's
 * registered JWKS or the JWKS at its registered URL (fetched at each request, as Epic's hosted
 * JWKS registration does). Errors follow RFC 6749 §5.2 (`{ error, error_description }`).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, type JSONWebKeySet, jwtVerify } from 'jose';
import { readBody, sendJson } from './http-util.ts';
import type { SmartClient } from './types.ts';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ALLOWED_ALGS = ['RS384', 'ES384'] as const;
/** The longest assertion lifetime the spec allows: exp at most five minutes after now. */
const MAX_ASSERTION_AHEAD_MS = 5 * 60_000;

/** A permission an API request needs (SMART scopes v1 read/write, v2 c r u d s). */
export type Interaction = 'read' | 'search' | 'create' | 'update' | 'delete';

export interface SmartAuthOptions {
  clients: SmartClient[];
  tokenUrl: string;
  clock: () => number;
  tokenLifetimeSeconds: number;
}

export interface IssuedToken {
  clientId: string;
  scopes: string[];
  expiresAtMs: number;
}

export interface SmartAuth {
  /** `POST <tokenUrl>`, form-encoded client_credentials with a JWT assertion. */
  handleToken(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** The live token an `Authorization` header carries, or undefined (missing, unknown, expired or revoked). */
  check(authorization: string | undefined): IssuedToken | undefined;
  /** Forgets every issued token: the next API request with one gets 401. */
  revokeTokens(): void;
}

class OAuthError extends Error {
  readonly status: number;
  readonly error: string;
  constructor(status: number, error: string, description: string) {
    super(description);
    this.status = status;
    this.error = error;
  }
}

export function createSmartAuth(o: SmartAuthOptions): SmartAuth {
  const tokens = new Map<string, IssuedToken>();
  /** `clientId jti` -> the assertion's exp (ms); kept until then, so a replay inside its lifetime is refused. */
  const seenJti = new Map<string, number>();

  const keySetOf = async (client: SmartClient) => {
    let jwks: JSONWebKeySet | undefined = client.jwks;
    if (client.jwksUrl) {
      try {
        const r = await fetch(client.jwksUrl, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
        if (!r.ok) throw new Error(`status ${r.status}`);
        jwks = (await r.json()) as JSONWebKeySet;
      } catch (cause) {
        throw new OAuthError(401, 'invalid_client', `could not fetch the client's JWKS (${(cause as Error).message})`);
      }
    }
    if (!jwks || !Array.isArray(jwks.keys)) throw new OAuthError(401, 'invalid_client', 'no JWKS registered for the client');
    return createLocalJWKSet(jwks);
  };

  const verify = async (form: URLSearchParams): Promise<{ clientId: string; scopes: string[] }> => {
    const grant = form.get('grant_type');
    if (!grant) throw new OAuthError(400, 'invalid_request', 'grant_type missing');
    if (grant !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'only client_credentials is supported');
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
      throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const assertion = form.get('client_assertion');
    if (!assertion) throw new OAuthError(400, 'invalid_request', 'client_assertion missing');

    let alg: string | undefined;
    let iss: string | undefined;
    try {
      alg = decodeProtectedHeader(assertion).alg;
      iss = decodeJwt(assertion).iss;
    } catch {
      throw new OAuthError(401, 'invalid_client', 'client_assertion is not a JWT');
    }
    if (!ALLOWED_ALGS.includes(alg as (typeof ALLOWED_ALGS)[number])) {
      throw new OAuthError(401, 'invalid_client', `alg ${alg} is not allowed (RS384 or ES384)`);
    }
    const client = o.clients.find((c) => c.clientId === iss);
    if (!client) throw new OAuthError(401, 'invalid_client', 'unknown client');

    const now = o.clock();
    let payload: { exp?: number; jti?: string };
    try {
      ({ payload } = await jwtVerify(assertion, await keySetOf(client), {
        algorithms: [...ALLOWED_ALGS],
        issuer: client.clientId,
        subject: client.clientId,
        audience: o.tokenUrl,
        currentDate: new Date(now),
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (e) {
      if (e instanceof OAuthError) throw e;
      throw new OAuthError(401, 'invalid_client', assertionProblem(e));
    }
    const expMs = Number(payload.exp) * 1000;
    if (expMs - now > MAX_ASSERTION_AHEAD_MS) throw new OAuthError(401, 'invalid_client', 'exp is more than five minutes ahead');
    for (const [k, until] of seenJti) if (until <= now) seenJti.delete(k);
    const jtiKey = `${client.clientId} ${payload.jti}`;
    if (seenJti.has(jtiKey)) throw new OAuthError(401, 'invalid_client', 'jti already used');
    seenJti.set(jtiKey, expMs);

    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    if (requested.length === 0) throw new OAuthError(400, 'invalid_scope', 'scope missing');
    const granted = requested.filter((s) => parseScope(s) && (!client.scopes || client.scopes.includes(s)));
    if (granted.length === 0) throw new OAuthError(400, 'invalid_scope', 'none of the requested scopes can be granted');
    return { clientId: client.clientId, scopes: granted };
  };

  return {
    handleToken: async (req, res) => {
      const noStore = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };
      try {
        if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
          throw new OAuthError(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
        }
        const { clientId, scopes } = await verify(new URLSearchParams(await readBody(req, 64 * 1024)));
        const accessToken = randomBytes(32).toString('base64url');
        tokens.set(accessToken, { clientId, scopes, expiresAtMs: o.clock() + o.tokenLifetimeSeconds * 1000 });
        sendJson(
          res,
          200,
          { access_token: accessToken, token_type: 'bearer', expires_in: o.tokenLifetimeSeconds, scope: scopes.join(' ') },
          noStore,
          'application/json',
        );
      } catch (e) {
        const err = e instanceof OAuthError ? e : new OAuthError(400, 'invalid_request', 'malformed token request');
        sendJson(res, err.status, { error: err.error, error_description: err.message }, noStore, 'application/json');
      }
    },
    check: (authorization) => {
      const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
      const t = m ? tokens.get(m[1]) : undefined;
      return t && t.expiresAtMs > o.clock() ? t : undefined;
    },
    revokeTokens: () => tokens.clear(),
  };
}

function assertionProblem(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'assertion expired';
  if (e instanceof errors.JWTClaimValidationFailed) return `assertion claim ${e.claim} is invalid`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'assertion signature does not verify';
  if (e instanceof errors.JWKSNoMatchingKey) return 'no registered key matches the assertion';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'alg is not allowed';
  return 'assertion is invalid';
}

/** A SMART system scope: `system/<Type|*>.<read|write|*>` (v1) or `.<cruds subset>` (v2). */
export function parseScope(scope: string): { type: string; allows: Set<Interaction> } | undefined {
  const m = /^system\/([A-Za-z]+|\*)\.([a-z*]+)(?:\?.*)?$/.exec(scope);
  if (!m) return undefined;
  const [, type, perm] = m;
  const all: Interaction[] = ['read', 'search', 'create', 'update', 'delete'];
  if (perm === '*') return { type, allows: new Set(all) };
  if (perm === 'read') return { type, allows: new Set(['read', 'search']) };
  if (perm === 'write') return { type, allows: new Set(['create', 'update', 'delete']) };
  if (!/^c?r?u?d?s?$/.test(perm)) return undefined;
  const letters: Record<string, Interaction> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };
  return { type, allows: new Set([...perm].map((l) => letters[l])) };
}

/** Whether the granted scopes permit an interaction on a type. */
export function scopesAllow(scopes: string[], type: string, interaction: Interaction): boolean {
  return scopes.some((s) => {
    const p = parseScope(s);
    return p !== undefined && (p.type === '*' || p.type === type) && p.allows.has(interaction);
  });
}

/** The SMART configuration document (SMART App Launch 2.2 §2.0.8 "Metadata"), for backend services. */
export function smartConfiguration(tokenUrl: string) {
  return {
    token_endpoint: tokenUrl,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...ALLOWED_ALGS],
    grant_types_supported: ['client_credentials'],
    scopes_supported: ['system/*.read', 'system/*.rs', 'system/*.write', 'system/*.cud', 'system/Patient.read', 'system/Patient.rs'],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}
