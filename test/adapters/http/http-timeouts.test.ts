/**
 * The per-request timeout bounds connect and headers, then each wait for the body's next bytes,
 * never a whole streamed body: a bulk NDJSON file may take far longer than `timeoutMs` to arrive.
 * Real sockets on 127.0.0.1 and real (short) timeouts; every test ends within about a second.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../../adapters/http/http-client.ts';
import { ApiError } from '../../../adapters/http/http-error.ts';
import { ndjsonLines } from '../../../adapters/http/ndjson-lines.ts';
import { systemClock } from '../../../gateway/clock.ts';

const TIMEOUT_MS = 300;
const TICK_MS = 50;

type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let script: Script = (_q, res) => res.end('{}');
let hits = 0;
const sockets = new Set<Socket>();
const timers = new Set<NodeJS.Timeout>();
const server = createServer((req, res) => script(req, res, hits++));
server.on('connection', (s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
let base = '';

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

function reset(s: Script) {
  script = s;
  hits = 0;
}

/** Sends `lines` one every TICK_MS, then ends (or, with `stall`, stops sending and keeps the socket open). */
function trickle(res: ServerResponse, lines: string[], o: { stall?: boolean; type?: string } = {}) {
  res.writeHead(200, { 'content-type': o.type ?? 'application/fhir+ndjson' });
  res.flushHeaders();
  let i = 0;
  const t = setInterval(() => {
    if (i < lines.length) {
      res.write(lines[i++]);
      return;
    }
    clearInterval(t);
    timers.delete(t);
    if (!o.stall) res.end();
  }, TICK_MS);
  timers.add(t);
  res.on('close', () => {
    clearInterval(t);
    timers.delete(t);
  });
}

const patients = (n: number) => Array.from({ length: n }, (_, i) => `{"resourceType":"Patient","id":"p${i}"}\n`);

async function readLines(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of ndjsonLines(stream, 10_000)) out.push(l.text ?? '');
  return out;
}

describe('the per-request timeout', () => {
  it('lets a streamed body that keeps sending take longer than timeoutMs in all (a bulk file is read to its end)', async () => {
    // 16 lines at 50 ms: about 800 ms in all, against a 300 ms timeout
    reset((_q, res) => trickle(res, patients(16)));
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    const res = await http.request({ url: `${base}/bulk/file-1.ndjson`, anonymous: true });
    const lines = await readLines(res.stream());
    expect(lines).toHaveLength(16);
    expect(lines[15]).toBe('{"resourceType":"Patient","id":"p15"}');
    expect(hits).toBe(1);
  });

  it('fails a streamed body that sends nothing for timeoutMs as GW_SOURCE_UNREACHABLE, after the lines that came', async () => {
    reset((_q, res) => trickle(res, patients(2), { stall: true }));
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    const res = await http.request({ url: `${base}/bulk/file-2.ndjson?_type=Patient`, anonymous: true });
    const got: string[] = [];
    const e = await (async () => {
      for await (const l of ndjsonLines(res.stream(), 10_000)) got.push(l.text ?? '');
    })().catch((x: unknown) => x);
    expect(got).toEqual(['{"resourceType":"Patient","id":"p0"}', '{"resourceType":"Patient","id":"p1"}']);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe('GW_SOURCE_UNREACHABLE');
    expect((e as ApiError).retry).toBe('transient');
    expect((e as ApiError).detail).toEqual({ timeoutMs: TIMEOUT_MS });
    expect((e as ApiError).message).toBe(`${base}/bulk/file-2.ndjson sent nothing for ${TIMEOUT_MS} ms in the middle of its answer`);
  });

  it("does not count the consumer's own pauses between reads as the server's silence", async () => {
    reset((_q, res) => trickle(res, patients(3)));
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    const res = await http.request({ url: `${base}/bulk/file-3.ndjson`, anonymous: true });
    const reader = res.stream().getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // a commit of a page that takes longer than the timeout; the server has finished meanwhile
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 2));
    let bytes = first.value?.byteLength ?? 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
    }
    expect(bytes).toBe(patients(3).join('').length);
  });

  it("stops a streamed body at the caller's signal, with the caller's reason", async () => {
    reset((_q, res) => trickle(res, patients(40)));
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    const stop = new AbortController();
    const res = await http.request({ url: `${base}/bulk/file-4.ndjson`, anonymous: true, signal: stop.signal });
    const reader = res.stream().getReader();
    expect((await reader.read()).done).toBe(false);
    const reason = new Error('the source is stopping');
    stop.abort(reason);
    const e = await (async () => {
      for (;;) if ((await reader.read()).done) return 'ended';
    })().catch((x: unknown) => x);
    expect(e).toBe(reason);
  });

  it('still bounds the wait for the headers: a server that never answers is tried maxAttempts times, then GW_SOURCE_UNREACHABLE', async () => {
    reset(() => undefined);
    const http = createHttpClient({ clock: systemClock, timeoutMs: 100, maxAttempts: 2, backoffInitialMs: 1 });
    const e = (await http.getJson(`${base}/metadata`).catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.detail).toEqual({ error: 'TimeoutError' });
    expect(hits).toBe(2);
  });

  it('bounds a JSON body read whole by timeoutMs in total, even while bytes keep coming', async () => {
    // a 16-piece JSON page at 50 ms a piece: no gap reaches the timeout, but the whole does
    reset((_q, res) =>
      trickle(res, ['{"resourceType":"Bundle","entry":[', ...Array(14).fill('{},'), '{}]}'], { type: 'application/fhir+json' }),
    );
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    const e = (await http.getJson(`${base}/Patient?name=Doe`).catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('GW_SOURCE_UNREACHABLE');
    expect(e.message).toBe(`${base}/Patient took more than ${TIMEOUT_MS} ms to send its answer`);
    expect(e.detail).toEqual({ timeoutMs: TIMEOUT_MS });
  });

  it('times a JSON body from its first read, not from the request: headers and body may each take most of the timeout', async () => {
    // headers after 200 ms, the body's end about 150 ms later: 350 ms in all, against 300
    reset((_q, res) => {
      const t = setTimeout(() => trickle(res, ['{"resourceType":', '"Bundle"}'], { type: 'application/fhir+json' }), 200);
      timers.add(t);
    });
    const http = createHttpClient({ clock: systemClock, timeoutMs: TIMEOUT_MS, maxAttempts: 1 });
    expect(await http.getJson(`${base}/Patient`)).toEqual({ resourceType: 'Bundle' });
  });
});
