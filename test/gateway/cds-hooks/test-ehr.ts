/**
 * A test EHR as a CDS Hooks 2.0 client: its own key pair, its JWK Set served on a local HTTP server
 * (its `jku`), and requests signed as the spec says (`iss`, `aud` = the service URL, `exp` within
 * five minutes, `iat`, `jti`; header `alg`, `kid`, `jku`, `typ: JWT`). Also the HTTPS calls to the
 * gateway's CDS service, trusting the test CA.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

export interface TestEhr {
  iss: string;
  jku: string;
  /** JWK Set fetches served so far. */
  fetches(): number;
  /** A token for `aud`; `over` replaces claims (undefined removes one), `header` header fields. */
  sign(aud: string, over?: Partial<Record<keyof JWTPayload, unknown>>, header?: Record<string, unknown>): Promise<string>;
  /** The public key as PEM (what an attacker would use as an HMAC secret). */
  publicPem: string;
  stop(): Promise<void>;
}

export async function startTestEhr(
  o: { iss?: string; alg?: 'RS384' | 'ES384' | 'RS256' | 'ES256'; nowMs?: () => number } = {},
): Promise<TestEhr> {
  const alg = o.alg ?? 'RS384';
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `k-${alg}`, alg, use: 'sig' };
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const iss = o.iss ?? `https://ehr.test/${randomUUID().slice(0, 8)}`;
  const jku = `http://127.0.0.1:${port}/jwks.json`;
  const publicPem = createPublicKey({ key: jwk as never, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
  return {
    iss,
    jku,
    publicPem,
    fetches: () => fetches,
    async sign(aud, over = {}, header = {}) {
      const now = Math.floor((o.nowMs?.() ?? Date.now()) / 1000);
      const claims: Record<string, unknown> = { iss, sub: 'ehr-client', aud, iat: now, exp: now + 240, jti: randomUUID(), ...over };
      for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
      return new SignJWT(claims as JWTPayload)
        .setProtectedHeader({ alg, kid: jwk.kid, jku, typ: 'JWT', ...header } as never)
        .sign(privateKey as CryptoKey);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface CdsAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** One HTTPS call to the CDS service (a fresh connection each, as an EHR's pool may). */
export function callCds(
  port: number,
  ca: string,
  method: 'GET' | 'POST',
  path: string,
  o: { token?: string; body?: unknown; contentType?: string } = {},
): Promise<CdsAnswer> {
  const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': o.contentType ?? 'application/json' } : {}),
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A CDS Hooks 2.0 request body. */
export function hookRequest(
  hook: 'patient-view' | 'appointment-book',
  patientId: string,
  extra: { prefetch?: unknown; context?: Record<string, unknown> } = {},
) {
  return {
    hook,
    hookInstance: randomUUID(),
    context: { userId: 'Practitioner/example', patientId, ...extra.context },
    ...(extra.prefetch ? { prefetch: extra.prefetch } : {}),
  };
}
