/**
 * Redirects are followed by the client's own rules, never by fetch's: reads only, at most 5 hops,
 * the request's own origin (another https origin only for anonymous requests), no https → http,
 * the Authorization header only to the first origin. Two real servers on 127.0.0.1 are two
 * origins; the https cases use a recording fetch (no test CA reaches Node's fetch here), which
 * never follows anything itself, so what it records is what the client chose to send.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../../adapters/http/http-client.ts';
import { ApiError } from '../../../adapters/http/http-error.ts';
import { systemClock } from '../../../gateway/clock.ts';

interface Seen {
  method: string;
  path: string;
  auth?: string;
  body: string;
}

type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;

function testServer() {
  const seen: Seen[] = [];
  let script: Script = (_q, res) => res.end('{}');
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization, body: Buffer.concat(chunks).toString() });
      script(req, res, seen.length - 1);
    });
  });
  return {
    seen,
    base: '',
    server,
    set(s: Script) {
      script = s;
      seen.length = 0;
    },
  };
}

const a = testServer();
const b = testServer();

beforeAll(async () => {
  for (const s of [a, b]) {
    await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
    s.base = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  }
});
afterAll(async () => {
  for (const s of [a, b]) await new Promise<void>((r) => s.server.close(() => r()));
});

const redirect = (res: ServerResponse, status: number, location: string) => {
  res.writeHead(status, { location });
  res.end();
};
const json = (res: ServerResponse, body: unknown) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const auth = { header: async () => 'Bearer the-token', invalidate: () => undefined };

async function refusal(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

describe('redirects between two origins on this machine', () => {
  it('does not re-send a POST (a token request and its signed assertion) to where a 307 points, on another origin or its own', async () => {
    b.set((_q, res) => json(res, { access_token: 'stolen' }));
    const http = createHttpClient({ clock: systemClock, maxAttempts: 3 });
    const post = () =>
      http.request({
        method: 'POST',
        url: `${a.base}/token`,
        anonymous: true,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'client_assertion=signed.jwt',
      });

    a.set((_q, res) => redirect(res, 307, `${b.base}/token`));
    const e = await refusal(post());
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.retry).toBe('permanent');
    expect(e.status).toBe(307);
    expect(e.message).toBe(
      `${a.base}/token redirected the gateway (307) a POST: a request with a body or an effect is never re-sent to another address`,
    );
    expect(a.seen.map((s) => s.body)).toEqual(['client_assertion=signed.jwt']);
    expect(b.seen).toEqual([]);

    a.set((_q, res, n) => (n === 0 ? redirect(res, 308, '/token2') : json(res, { access_token: 'x' })));
    expect((await refusal(post())).status).toBe(308);
    expect(a.seen.map((s) => s.path)).toEqual(['/token']);
  });

  it('does not follow a GET carrying the token to another origin, and says which origin', async () => {
    a.set((_q, res) => redirect(res, 302, `${b.base}/Patient?name=Doe`));
    b.set((_q, res) => json(res, { resourceType: 'Bundle', entry: [] }));
    const http = createHttpClient({ clock: systemClock, auth });
    const e = await refusal(http.getJson(`${a.base}/Patient?name=Doe`));
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.detail).toEqual({ status: 302, origin: b.base });
    expect(e.message).toBe(
      `${a.base}/Patient redirected the gateway (302) to another origin (${b.base}): a request carrying the token, or whose answer must come from the server itself, is not followed there`,
    );
    expect(e.message).not.toMatch(/Doe/);
    expect(b.seen).toEqual([]);
  });

  it('does not follow a request that is not anonymous to another origin even when the client holds no token', async () => {
    a.set((_q, res) => redirect(res, 301, `${b.base}/metadata`));
    b.set((_q, res) => json(res, { resourceType: 'CapabilityStatement' }));
    const http = createHttpClient({ clock: systemClock });
    expect((await refusal(http.getJson(`${a.base}/metadata`))).detail).toEqual({ status: 301, origin: b.base });
    expect(b.seen).toEqual([]);
  });

  it('follows a GET within its own origin with the token, and answers with the URL that answered', async () => {
    a.set((req, res) => (req.url === '/Patient/1' ? redirect(res, 301, '/Patient/1/_history/2') : json(res, { id: '1' })));
    const http = createHttpClient({ clock: systemClock, auth });
    const res = await http.request({ url: `${a.base}/Patient/1` });
    expect(await res.json()).toEqual({ id: '1' });
    expect(res.url).toBe(`${a.base}/Patient/1/_history/2`);
    expect(a.seen.map((s) => `${s.path} ${s.auth}`)).toEqual(['/Patient/1 Bearer the-token', '/Patient/1/_history/2 Bearer the-token']);
    expect(http.stats().requests).toBe(2);
  });

  it('follows an anonymous GET to another origin without any Authorization header', async () => {
    a.set((_q, res) => redirect(res, 307, `${b.base}/files/1.ndjson?sig=abc`));
    b.set((_q, res) => json(res, { ok: 1 }));
    const http = createHttpClient({ clock: systemClock, auth });
    const res = await http.request({
      url: `${a.base}/bulk/1.ndjson`,
      anonymous: true,
      headers: { Authorization: 'Basic Y2xpZW50OnNlY3JldA==' },
    });
    expect(await res.json()).toEqual({ ok: 1 });
    expect(res.url).toBe(`${b.base}/files/1.ndjson?sig=abc`);
    expect(a.seen.map((s) => s.auth)).toEqual(['Basic Y2xpZW50OnNlY3JldA==']);
    expect(b.seen.map((s) => s.auth)).toEqual([undefined]);
  });

  it('follows at most 5 redirects: the sixth answer, a redirect again, is GW_API_REFUSED', async () => {
    a.set((_q, res, n) => redirect(res, 302, `/loop/${n + 1}`));
    const http = createHttpClient({ clock: systemClock, maxAttempts: 3 });
    const e = await refusal(http.getJson(`${a.base}/loop/0`));
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.message).toBe(`${a.base}/loop/0 redirected the gateway (302) more than 5 times; not followed further`);
    expect(a.seen.map((s) => s.path)).toEqual(['/loop/0', '/loop/1', '/loop/2', '/loop/3', '/loop/4', '/loop/5']);
  });

  it('does not follow plain http to another machine', async () => {
    a.set((_q, res) => redirect(res, 302, 'http://fhir.example.org/files/1'));
    const http = createHttpClient({ clock: systemClock });
    const e = await refusal(http.request({ url: `${a.base}/bulk/1`, anonymous: true }));
    expect(e.detail).toEqual({ status: 302, origin: 'http://fhir.example.org' });
    expect(a.seen).toHaveLength(1);
  });

  it("keeps redirect: 'manual' meaning never follow: the redirect is the caller's answer, refused unless accepted", async () => {
    a.set((_q, res) => redirect(res, 302, '/Appointment/9'));
    const http = createHttpClient({ clock: systemClock, auth });
    const e = await refusal(http.request({ url: `${a.base}/Appointment/1`, redirect: 'manual' }));
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.message).toBe(`${a.base}/Appointment/1 refused the request (302)`);
    const res = await http.request({ url: `${a.base}/Appointment/1`, redirect: 'manual', accept: [302] });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/Appointment/9');
    await res.stream().cancel();
    expect(a.seen.map((s) => s.path)).toEqual(['/Appointment/1', '/Appointment/1']);
  });
});

describe('redirects from https', () => {
  interface Call {
    url: string;
    auth: string | null;
    redirect: RequestInit['redirect'];
  }
  /** A fetch answering from a table of URL → [status, location]; anything else 200 `{}`. */
  function recordingFetch(table: Record<string, [number, string]>) {
    const calls: Call[] = [];
    const f = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      calls.push({ url, auth: new Headers(init?.headers).get('authorization'), redirect: init?.redirect });
      const hit = table[url];
      if (hit) return new Response(null, { status: hit[0], headers: { location: hit[1] } });
      return new Response('{"ok":true}', { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    return { f, calls };
  }

  it('never follows https to plain http, not even to this machine', async () => {
    const { f, calls } = recordingFetch({
      'https://fhir.example.org/bulk/1': [302, 'http://fhir.example.org/bulk/1'],
      'https://fhir.example.org/bulk/2': [307, 'http://127.0.0.1:8080/bulk/2'],
    });
    const http = createHttpClient({ clock: systemClock, fetch: f });
    const down = await refusal(http.request({ url: 'https://fhir.example.org/bulk/1', anonymous: true }));
    expect(down.code).toBe('GW_API_REFUSED');
    expect(down.detail).toEqual({ status: 302, origin: 'http://fhir.example.org' });
    expect(down.message).toBe(
      'https://fhir.example.org/bulk/1 redirected the gateway (302) from https to plain http (http://fhir.example.org); not followed',
    );
    expect((await refusal(http.request({ url: 'https://fhir.example.org/bulk/2', anonymous: true }))).detail).toEqual({
      status: 307,
      origin: 'http://127.0.0.1:8080',
    });
    expect(calls.map((c) => c.url)).toEqual(['https://fhir.example.org/bulk/1', 'https://fhir.example.org/bulk/2']);
    expect(calls.map((c) => c.redirect)).toEqual(['manual', 'manual']);
  });

  it('follows an anonymous GET to another https origin (a presigned bulk file) without the token, and a token-bearing one nowhere', async () => {
    const { f, calls } = recordingFetch({
      'https://fhir.example.org/bulk/3': [302, 'https://storage.example.net/export/3.ndjson?sig=s'],
    });
    const http = createHttpClient({ clock: systemClock, fetch: f, auth });
    const res = await http.request({ url: 'https://fhir.example.org/bulk/3', anonymous: true });
    expect(await res.json()).toEqual({ ok: true });
    expect(res.url).toBe('https://storage.example.net/export/3.ndjson?sig=s');
    expect(calls).toEqual([
      { url: 'https://fhir.example.org/bulk/3', auth: null, redirect: 'manual' },
      { url: 'https://storage.example.net/export/3.ndjson?sig=s', auth: null, redirect: 'manual' },
    ]);

    calls.length = 0;
    const e = await refusal(http.request({ url: 'https://fhir.example.org/bulk/3' }));
    expect(e.detail).toEqual({ status: 302, origin: 'https://storage.example.net' });
    expect(calls).toEqual([{ url: 'https://fhir.example.org/bulk/3', auth: 'Bearer the-token', redirect: 'manual' }]);
  });
});
