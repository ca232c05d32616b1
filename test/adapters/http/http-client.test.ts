import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../../adapters/http/http-error.ts';
import { createHttpClient, retryAfterMs } from '../../../adapters/http/http-client.ts';
import { ndjsonLines } from '../../../adapters/http/ndjson-lines.ts';
import { createQuota } from '../../../adapters/http/quota.ts';
import { createManualClock, systemClock } from '../../../gateway/clock.ts';

type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let script: Script = (_q, res) => res.end('{}');
let hits = 0;
const seen: { auth?: string; path: string }[] = [];
const server = createServer((req, res) => {
  seen.push({ auth: req.headers.authorization, path: req.url ?? '' });
  script(req, res, hits++);
});
let base = '';

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function reset(s: Script) {
  script = s;
  hits = 0;
  seen.length = 0;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/fhir+json', ...headers });
  res.end(JSON.stringify(body));
};

const outcome = {
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code: 'not-found', diagnostics: 'Patient Jane Doe DOB 1970-01-01' }],
};

describe('the shared HTTP client', () => {
  it('retries a 503 and a 429 after the Retry-After the server gave, then answers', async () => {
    reset((_q, res, n) => {
      if (n === 0) return json(res, 503, outcome, { 'retry-after': '0' });
      if (n === 1) return json(res, 429, {}, { 'retry-after': '0' });
      json(res, 200, { resourceType: 'Bundle' });
    });
    const http = createHttpClient({ clock: systemClock, backoffInitialMs: 1 });
    expect(await http.getJson(`${base}/Patient`)).toEqual({ resourceType: 'Bundle' });
    expect(hits).toBe(3);
    expect(http.stats()).toEqual({ requests: 3, retries: 2, throttled: 1, renewals: 0 });
  });

  it('hands a Retry-After longer than it sleeps back to the poller as retryInMs, without waiting', async () => {
    reset((_q, res) => json(res, 429, {}, { 'retry-after': '3600' }));
    const http = createHttpClient({ clock: systemClock, maxRetryAfterMs: 60_000 });
    const e = (await http.getJson(`${base}/Patient`).catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.retry).toBe('transient');
    expect(e.retryInMs).toBe(3_600_000);
    expect(hits).toBe(1);
  });

  it('answers a 401 with one token renewal and one retry; a second 401 is GW_API_AUTH_FAILED', async () => {
    let tokens = 0;
    let invalidated = 0;
    const auth = { header: async () => `Bearer t${++tokens}`, invalidate: () => void invalidated++ };
    reset((req, res) => (req.headers.authorization === 'Bearer t2' ? json(res, 200, { ok: 1 }) : json(res, 401, {})));
    const http = createHttpClient({ clock: systemClock, auth });
    expect(await http.getJson(`${base}/Patient`)).toEqual({ ok: 1 });
    expect(invalidated).toBe(1);
    expect(seen.map((s) => s.auth)).toEqual(['Bearer t1', 'Bearer t2']);

    reset((_q, res) => json(res, 401, {}));
    const e = (await http.getJson(`${base}/Patient`).catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_API_AUTH_FAILED');
    expect(hits).toBe(2);
    expect(invalidated).toBe(2);
  });

  it("refuses a 404 as GW_API_REFUSED with the OperationOutcome's codes and none of its text", async () => {
    reset((_q, res) => json(res, 404, outcome));
    const http = createHttpClient({ clock: systemClock });
    const e = (await http.getJson(`${base}/Patient/1?name=Doe`).catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.retry).toBe('permanent');
    expect(e.detail).toEqual({ status: 404, outcome: 'error:not-found' });
    expect(e.message).toBe(`${base}/Patient/1 refused the request (404)`);
    expect(JSON.stringify(e.detail) + e.message).not.toMatch(/Jane|Doe|1970/);
  });

  it('gives up on a server that does not answer after maxAttempts, as GW_SOURCE_UNREACHABLE', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const http = createHttpClient({ clock: systemClock, maxAttempts: 3, backoffInitialMs: 1 });
    const e = (await http.getJson(`http://127.0.0.1:${port}/metadata`).catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.detail.error).toBe('ECONNREFUSED');
    expect(http.stats().requests).toBe(3);
  });

  it('reads no body past its byte cap', async () => {
    reset((_q, res) => json(res, 200, { big: 'x'.repeat(5000) }));
    const http = createHttpClient({ clock: systemClock, maxBodyBytes: 1000 });
    const e = (await http.getJson(`${base}/Patient`).catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_API_REFUSED');
    expect(e.detail).toEqual({ maxBodyBytes: 1000 });
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.UTC(2026, 11, 2, 12, 0, 0);
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe('the call budget', () => {
  it('waits for the minute window and refuses past the daily cap until midnight UTC', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 23, 59, 0));
    const q = createQuota({ perMinute: 2, perDay: 3 }, clock);
    await q.acquire();
    await q.acquire();
    let third = false;
    const p = q.acquire().then(() => {
      third = true;
    });
    await Promise.resolve();
    expect(third).toBe(false);
    clock.advance(60_000);
    await p;
    expect(third).toBe(true);
    // the day turned at the advance: the count starts again
    expect(q.stats().callsToday).toBe(1);
    clock.advance(60_000);
    await q.acquire();
    await q.acquire();
    const e = (await q.acquire().catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe('GW_API_QUOTA_EXHAUSTED');
    expect(e.retryInMs).toBe(Date.UTC(2026, 11, 4) - clock.now());
  });
});

describe('the call budget per second and per hour', () => {
  it('holds a call until the second has room, and the hour as well when it is spent, waiting for the longer of the two', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    const q = createQuota({ perSecond: 2, perMinute: 0, perHour: 3, perDay: 0 }, clock);
    await q.acquire();
    await q.acquire();
    let third = false;
    const p3 = q.acquire().then(() => {
      third = true;
    });
    await Promise.resolve();
    expect(third).toBe(false);
    clock.advance(999);
    await Promise.resolve();
    expect(third).toBe(false);
    clock.advance(1);
    await p3;
    // the hour has had three: the fourth waits until the first leaves the hour, not one second
    let fourth = false;
    const p4 = q.acquire().then(() => {
      fourth = true;
    });
    clock.advance(1000);
    await Promise.resolve();
    expect(fourth).toBe(false);
    clock.advance(3_600_000 - 2000);
    await p4;
    expect(fourth).toBe(true);
    expect(q.stats()).toMatchObject({ callsToday: 4, perSecond: 2, perHour: 3, waitedMs: 1000 + 3_600_000 - 1000 });
  });
});

describe('the call budget across a restart', () => {
  it("keeps the day's count in its store every 25 calls and at flush, and starts from it the same day, not another", async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 10));
    let saved: { day: number; calls: number } | undefined;
    const store = { load: () => saved, save: (s: { day: number; calls: number }) => void (saved = { ...s }) };
    const q = createQuota({ perMinute: 0, perDay: 40 }, clock, store);
    for (let i = 0; i < 30; i++) await q.acquire();
    expect(saved).toEqual({ day: Math.floor(clock.now() / 86_400_000), calls: 25 });
    q.flush();
    expect(saved?.calls).toBe(30);
    const again = createQuota({ perMinute: 0, perDay: 40 }, clock, store);
    expect(again.stats().callsToday).toBe(30);
    for (let i = 0; i < 10; i++) await again.acquire();
    expect(((await again.acquire().catch((x: unknown) => x)) as ApiError).code).toBe('GW_API_QUOTA_EXHAUSTED');
    clock.advance(86_400_000);
    expect(createQuota({ perMinute: 0, perDay: 40 }, clock, store).stats().callsToday).toBe(0);
  });
});

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(new TextEncoder().encode(s));
      c.close();
    },
  });
}

describe('NDJSON lines', () => {
  it('splits lines across chunks, drops CR and blank lines, keeps the last line without a newline, and numbers every line', async () => {
    const out = [];
    for await (const l of ndjsonLines(streamOf(['{"a":', '1}\r\n\n{"b"', ':2}\n{"c":3}']), 100)) out.push(l);
    expect(out).toEqual([
      { n: 0, text: '{"a":1}' },
      { n: 2, text: '{"b":2}' },
      { n: 3, text: '{"c":3}' },
    ]);
  });

  it('does not assemble a line past the cap: it is reported as too long and the next line is read', async () => {
    const out = [];
    for await (const l of ndjsonLines(streamOf(['{"a":"', 'x'.repeat(50), 'y'.repeat(50), '"}\n{"ok":1}\n']), 40)) out.push(l);
    expect(out).toEqual([
      { n: 0, text: undefined },
      { n: 1, text: '{"ok":1}' },
    ]);
  });
});
