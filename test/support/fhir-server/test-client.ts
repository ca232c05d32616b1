/**
 * The client side of SMART Backend Services for tests that need a token from the test server
 * without the gateway's own client: a key pair with its public JWKS to register, a signed
 * assertion (SMART App Launch 2.2 "Backend Services", RFC 7523) and the token request.
 */
import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from 'jose';

export interface TestClientKeys {
  clientId: string;
  alg: 'RS384' | 'ES384';
  kid: string;
  privateKey: CryptoKey;
  /** The public JWKS to register with the server (or to host at a jwksUrl). */
  jwks: JSONWebKeySet;
}

export async function createTestClientKeys(clientId: string, alg: 'RS384' | 'ES384' = 'RS384'): Promise<TestClientKeys> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${clientId}-${alg}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { clientId, alg, kid, privateKey, jwks: { keys: [jwk] } };
}

export interface AssertionClaims {
  /** Default: the token URL. */
  aud?: string;
  /** Seconds since the epoch; default now + 240 s. */
  exp?: number;
  /** Default: a fresh UUID. */
  jti?: string;
  iss?: string;
  sub?: string;
  /** ms; the clock the default exp is counted from; default Date.now(). */
  now?: number;
}

/** A client assertion signed with the client's private key. */
export async function signClientAssertion(keys: TestClientKeys, tokenUrl: string, c: AssertionClaims = {}): Promise<string> {
  const now = Math.floor((c.now ?? Date.now()) / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: keys.alg, kid: keys.kid, typ: 'JWT' })
    .setIssuer(c.iss ?? keys.clientId)
    .setSubject(c.sub ?? keys.clientId)
    .setAudience(c.aud ?? tokenUrl)
    .setExpirationTime(c.exp ?? now + 240)
    .setJti(c.jti ?? randomUUID())
    .sign(keys.privateKey);
}

/** POSTs a client_credentials token request; returns the status and the JSON answer. */
export async function requestToken(
  tokenUrl: string,
  assertion: string,
  scope = 'system/*.read',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope,
    }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** A bearer token for `keys` from the server at `tokenUrl` (throws when refused). */
export async function fetchAccessToken(keys: TestClientKeys, tokenUrl: string, scope = 'system/*.read', now?: number): Promise<string> {
  const { status, body } = await requestToken(tokenUrl, await signClientAssertion(keys, tokenUrl, { now }), scope);
  if (status !== 200) throw new Error(`token request refused: ${status} ${String(body.error)}`);
  return String(body.access_token);
}
