/**
 * SMART Backend Services token requests against a real token endpoint on 127.0.0.1 that, like a
 * real one, refuses an assertion whose jti it has seen (RFC 7523 §3 item 7): each try is sent
 * once, and tried again here only with a new assertion; tokens are renewed late in their life but
 * not before half of it; the token URL must be https (http only to this machine).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientKey } from '../../../adapters/http/client-keys.ts';
import { createHttpClient } from '../../../adapters/http/http-client.ts';
import { ApiError, checkEndpointUrl } from '../../../adapters/http/http-error.ts';
import { createQuota } from '../../../adapters/http/quota.ts';
import { createSmartBackendAuth, renewAtOf } from '../../../adapters/http/smart-backend.ts';
import { createManualClock, systemClock, type Clock, type ManualClock } from '../../../gateway/clock.ts';

interface Assertion {
  jti: string;
  iat: number;
  exp: number;
}

type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let script: Script = (_q, res) => token(res, 300);
let requests: Assertion[] = [];
const jtis = new Set<string>();
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const form = new URLSearchParams(Buffer.concat(chunks).toString());
    const claims = decodeJwt(form.get('client_assertion') ?? '');
    const a = { jti: String(claims.jti), iat: Number(claims.iat), exp: Number(claims.exp) };
    requests.push(a);
    if (jtis.has(a.jti)) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_client', error_description: 'jti already used' }));
      return;
    }
    jtis.add(a.jti);
    script(req, res, requests.length - 1);
  });
});
let tokenUrl = '';
let key: ClientKey;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  const pair = await generateKeyPair('ES384');
  key = { alg: 'ES384', kid: 'test-kid', privateKey: pair.privateKey as CryptoKey, jwks: { keys: [] } };
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function reset(s: Script) {
  script = s;
  requests = [];
}

function token(res: ServerResponse, expiresIn: number, n = 1) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ access_token: `t${n}`, token_type: 'bearer', expires_in: expiresIn, scope: 'system/Patient.rs' }));
}

function fail(res: ServerResponse, status: number, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end('{}');
}

function auth(clock: Clock, over: { http?: ReturnType<typeof createHttpClient> } = {}) {
  // the client the FHIR source makes for discovery and tokens: 3 attempts for what it sends
  const http = over.http ?? createHttpClient({ clock, maxAttempts: 3, backoffInitialMs: 1 });
  return createSmartBackendAuth({
    http,
    clock,
    clientId: 'gw',
    tokenUrl,
    scope: 'system/Patient.rs',
    key,
    wallNow: () => clock.now(),
    backoffInitialMs: 1,
  });
}

/** Waits (in real time, bounded) until the manual clock holds `n` timers. */
async function timersWaiting(clock: ManualClock, n: number): Promise<void> {
  for (let i = 0; i < 400 && clock.pending() !== n; i++) await new Promise((r) => setTimeout(r, 5));
  expect(clock.pending()).toBe(n);
}

describe('the token request', () => {
  it('asks again with a fresh assertion when the answer is lost, rather than replaying the used jti', async () => {
    reset((req, res, n) => (n === 0 ? req.socket.destroy() : token(res, 300)));
    const a = auth(systemClock);
    expect(await a.header()).toBe('Bearer t1');
    expect(requests).toHaveLength(2);
    expect(new Set(requests.map((r) => r.jti)).size).toBe(2);
  });

  it("waits the 503's Retry-After on the clock, then signs a new assertion stamped with the time it is sent", async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    reset((_q, res, n) => (n === 0 ? fail(res, 503, { 'retry-after': '2' }) : token(res, 300)));
    const a = auth(clock);
    const got = a.header();
    await timersWaiting(clock, 1);
    expect(requests).toHaveLength(1);
    clock.advance(2000);
    expect(await got).toBe('Bearer t1');
    const t0 = Date.UTC(2026, 11, 2, 10) / 1000;
    expect(requests).toEqual([
      { jti: requests[0].jti, iat: t0, exp: t0 + 240 },
      { jti: requests[1].jti, iat: t0 + 2, exp: t0 + 242 },
    ]);
    expect(requests[1].jti).not.toBe(requests[0].jti);
  });

  it('hands a Retry-After longer than it waits (60 s) back to the caller after one request', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    reset((_q, res) => fail(res, 429, { 'retry-after': '90' }));
    const e = (await auth(clock)
      .header()
      .catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.retryInMs).toBe(90_000);
    expect(requests).toHaveLength(1);
  });

  it('gives up after 3 requests, each with its own jti', async () => {
    reset((_q, res) => fail(res, 502));
    const e = (await auth(systemClock)
      .header()
      .catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.status).toBe(502);
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((r) => r.jti)).size).toBe(3);
  });

  it('does not try again an assertion the endpoint refused (invalid_client is permanent)', async () => {
    reset((_q, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_client' }));
    });
    const e = (await auth(systemClock)
      .header()
      .catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_API_AUTH_FAILED');
    expect(e.detail).toEqual({ error: 'invalid_client', tokenUrl });
    expect(requests).toHaveLength(1);
  });

  it("signs the assertion after the call budget's wait, not before it", async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    const quota = createQuota({ perMinute: 1, perDay: 0 }, clock);
    await quota.acquire(); // this minute's call is spent
    reset((_q, res) => token(res, 300));
    const a = auth(clock, { http: createHttpClient({ clock, quota, maxAttempts: 3 }) });
    const got = a.header();
    await timersWaiting(clock, 1);
    clock.advance(60_000);
    expect(await got).toBe('Bearer t1');
    const t = Date.UTC(2026, 11, 2, 10, 1) / 1000;
    expect(requests).toEqual([{ jti: requests[0].jti, iat: t, exp: t + 240 }]);
  });
});

describe('token renewal', () => {
  it('renews in the last 10% of a long life (at least 30 s before its end), but never before half of it', () => {
    expect(renewAtOf(1000, 3_600_000)).toBe(1000 + 3_240_000);
    expect(renewAtOf(1000, 300_000)).toBe(1000 + 270_000);
    expect(renewAtOf(1000, 60_000)).toBe(1000 + 30_000);
    expect(renewAtOf(1000, 30_000)).toBe(1000 + 15_000);
    expect(renewAtOf(1000, 20_000)).toBe(1000 + 10_000);
  });

  it('keeps a 20 s token for its first 10 s instead of asking for one on every call', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    reset((_q, res, n) => token(res, 20, n + 1));
    const a = auth(clock);
    expect(await a.header()).toBe('Bearer t1');
    clock.advance(9_999);
    expect(await a.header()).toBe('Bearer t1');
    expect(await a.header()).toBe('Bearer t1');
    expect(requests).toHaveLength(1);
    clock.advance(1);
    expect(await a.header()).toBe('Bearer t2');
    expect(requests).toHaveLength(2);
  });

  it('keeps a 300 s token until 30 s before its end', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    reset((_q, res, n) => token(res, 300, n + 1));
    const a = auth(clock);
    expect(await a.header()).toBe('Bearer t1');
    clock.advance(269_999);
    expect(await a.header()).toBe('Bearer t1');
    clock.advance(1);
    expect(await a.header()).toBe('Bearer t2');
    expect(requests).toHaveLength(2);
  });
});

describe('the token URL', () => {
  const make = (url: string) => () =>
    createSmartBackendAuth({
      http: createHttpClient({ clock: systemClock }),
      clock: systemClock,
      clientId: 'gw',
      tokenUrl: url,
      scope: 's',
      key,
    });

  it('is refused as plain http to another machine, or with a user or password in it, before anything is sent', () => {
    for (const [url, origin] of [
      ['http://ehr.example.org/oauth2/token', 'http://ehr.example.org'],
      ['http://10.0.0.7:8080/token', 'http://10.0.0.7:8080'],
    ] as const) {
      const e = (() => {
        try {
          make(url)();
        } catch (x) {
          return x;
        }
      })() as ApiError;
      expect(e).toBeInstanceOf(ApiError);
      expect(e.code).toBe('GW_API_REFUSED');
      expect(e.detail).toEqual({ origin });
      expect(e.message).toBe(
        `the token endpoint (the SMART configuration's token_endpoint, or the source's tokenUrl) (${origin}) is plain http to another machine, so what is sent there would cross the network in clear: use its https:// address (http is only for this machine)`,
      );
    }
    expect(make('https://gw:secret@ehr.example.org/token')).toThrow(/carries a user or password in the URL: remove it/);
  });

  it('is taken as https anywhere, or http to this machine', () => {
    for (const url of ['https://ehr.example.org/token', 'http://127.0.0.1:9/token', 'http://localhost:9/token', 'http://[::1]:9/token'])
      expect(make(url)).not.toThrow();
  });

  it('checkEndpointUrl answers the parsed URL, and refuses what is not an http(s) URL', () => {
    expect(checkEndpointUrl('https://storage.example.net/f?sig=1', 'a bulk file URL').host).toBe('storage.example.net');
    expect(() => checkEndpointUrl('not a url', 'a bulk file URL')).toThrow('a bulk file URL is not a URL: give an https:// URL');
    expect(() => checkEndpointUrl('ftp://files.example.net/f', 'a bulk file URL')).toThrow(
      'a bulk file URL is a ftp: URL: give an https:// URL',
    );
    expect(() => checkEndpointUrl('http://127.0.0.2/f', 'a bulk file URL')).toThrow(/is plain http to another machine/);
  });
});
