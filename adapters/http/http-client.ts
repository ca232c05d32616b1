/**
 * The HTTP layer every remote API source shares (FHIR servers today; the vendors' own REST APIs
 * later): one `request` that takes a quota slot, adds the bearer token, times out, retries what
 * is worth retrying, and says what went wrong with a stable code.
 *
 * - 429 and 503 honour `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3); a wait longer
 *   than `maxRetryAfterMs` is not slept here but handed to the poller (ApiError.retryInMs), which
 *   keeps its cursor and comes back.
 * - Other 5xx and network errors back off exponentially with jitter, up to `maxAttempts` (per
 *   client, or per request: a token request carrying a one-time assertion is sent once).
 * - 401 is answered by one token renewal and one retry (SMART: an access token may be revoked
 *   before it expires); a second 401 is GW_API_AUTH_FAILED.
 * - Other 4xx are permanent (GW_API_REFUSED) with the OperationOutcome's issue codes, never its text.
 * - Bodies are read under a byte cap (`maxBodyBytes`), or handed over as a stream (NDJSON).
 *
 * Timeouts: `timeoutMs` bounds each connect-and-headers, and then each wait for the body's next
 * bytes (idle), never a whole body: a bulk NDJSON file may take an hour to arrive and is fine as
 * long as bytes keep coming. A JSON body, read whole into memory, is also bounded in total.
 * The caller's signal aborts everything, body included.
 *
 * Redirects are followed here, not by fetch (which re-POSTs a 307's body to wherever it points,
 * lets an answer come from another origin and follows https to http): only for GET/HEAD, at most
 * {@link MAX_REDIRECTS} hops, to the request's own origin — or, for an `anonymous` request, to
 * another https origin (a bulk file on presigned storage) — never from https to plain http (http
 * only to this machine, for tests), and the Authorization header only ever to the first origin.
 * Any other redirect is GW_API_REFUSED.
 *
 * Built on Node's fetch rather than fhir-kit-client, which reads every body whole and neither
 * retries nor streams (README, dependency table).
 */
import { systemClock, type Clock } from '../../gateway/clock.ts';
import { ApiError, isLoopback, outcomeCodes, safeUrl } from './http-error.ts';
import type { Quota } from './quota.ts';

export interface AuthProvider {
  /** The Authorization header value, fetching or renewing a token as needed. */
  header(signal?: AbortSignal): Promise<string>;
  /** Forget the cached token (it was refused). */
  invalidate(): void;
}

export interface HttpClientOptions {
  clock: Clock;
  auth?: AuthProvider;
  quota?: Quota;
  /**
   * Per attempt, until the response headers arrive; then the longest wait for a body's next
   * bytes; and the longest a JSON body may take to read whole. Default 60 s.
   */
  timeoutMs?: number;
  /**
   * The clock the network timeouts run on (default the real one): they are facts about a socket
   * in real time, while `clock` schedules retries and back-off (and a test's manual clock may
   * jump minutes ahead while a request is in flight).
   */
  networkClock?: Clock;
  /** Attempts for 429/5xx/network errors (1 = no retry). */
  maxAttempts?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Longest Retry-After slept inside one request; longer waits go back to the caller. */
  maxRetryAfterMs?: number;
  /** Largest JSON body read into memory. */
  maxBodyBytes?: number;
  userAgent?: string;
  /** Random in [0,1) for jitter (tests pin it). */
  random?: () => number;
  fetch?: typeof fetch;
}

export interface HttpRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /**
   * The body, or a function making it, called for each attempt just before it is sent (after any
   * quota wait): a body that goes stale, such as a signed client assertion, is made fresh.
   */
  body?: string | (() => Promise<string>);
  /** Do not add the bearer token (token endpoint, discovery, manifests' files that say so). */
  anonymous?: boolean;
  /** Statuses answered to the caller rather than thrown (e.g. 202 while a bulk export runs, 410 for a deleted read, 412). */
  accept?: readonly number[];
  /**
   * `manual`: no redirect is followed; it is answered to the caller (as GW_API_REFUSED unless its
   * status is in `accept`) — writes: a body carrying PHI is never re-sent elsewhere. Default
   * `follow`, under the rules above (reads only, same origin, no downgrade).
   */
  redirect?: 'follow' | 'manual';
  /** Attempts for this request, overriding the client's (1: a request that must not be repeated as it is). */
  maxAttempts?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The URL that answered (the last one, after redirects). */
  url: string;
  /** The body as JSON, read under the byte cap. */
  json(): Promise<unknown>;
  /** The body as a byte stream (the caller must read or cancel it); a read that waits `timeoutMs` for a byte fails GW_SOURCE_UNREACHABLE. */
  stream(): ReadableStream<Uint8Array>;
}

export interface HttpClient {
  request(r: HttpRequest): Promise<HttpResponse>;
  getJson(url: string, signal?: AbortSignal): Promise<unknown>;
  stats(): { requests: number; retries: number; throttled: number; renewals: number };
}

/** Redirect hops followed for one request (fetch's own limit is 20; a FHIR server needs one or two). */
export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Parses Retry-After: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

export async function readBodyCapped(body: ReadableStream<Uint8Array> | null, max: number, what: string): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => undefined);
      throw new ApiError('GW_API_REFUSED', `${what}: the response is larger than ${max} bytes`, { detail: { maxBodyBytes: max } });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Waits `ms` on `clock`; the signal ends the wait early with its reason. */
export function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clock.clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One fetch that answered: its response, the URL that answered and the controller that aborts it (and its body). */
interface Sent {
  res: Response;
  url: string;
  ctl: AbortController;
}

/** A response as the client holds it: the public shape plus its body as text within limits. */
interface HeldResponse extends HttpResponse {
  text(maxBytes: number): Promise<string>;
}

const timedOut = () => new DOMException('no answer within the timeout', 'TimeoutError');
const errorName = (e: unknown) => (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;

function withoutAuthorization(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
}

export function createHttpClient(o: HttpClientOptions): HttpClient {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const maxAttempts = Math.max(1, o.maxAttempts ?? 5);
  const initial = o.backoffInitialMs ?? 1000;
  const cap = o.backoffMaxMs ?? 60_000;
  const maxRetryAfter = o.maxRetryAfterMs ?? 120_000;
  const maxBody = o.maxBodyBytes ?? 64 * 1024 * 1024;
  const random = o.random ?? Math.random;
  const doFetch = o.fetch ?? fetch;
  const net = o.networkClock ?? systemClock;
  const counts = { requests: 0, retries: 0, throttled: 0, renewals: 0 };

  const sleep = (ms: number, signal?: AbortSignal) => sleepOn(o.clock, ms, signal);

  const backoff = (attempt: number) => Math.min(cap, initial * 2 ** attempt) * (0.5 + random() / 2);

  /**
   * The body behind a guard: each read waits at most `timeoutMs` for bytes (then the fetch is
   * aborted and the read fails GW_SOURCE_UNREACHABLE), and `text` also bounds the whole read.
   * The stream pulls only while its reader waits (highWaterMark 0), so a consumer that takes its
   * time between reads (a commit per page of a bulk file) is not counted as the server's silence.
   */
  function hold(sent: Sent, r: HttpRequest): HeldResponse {
    const { res, url, ctl } = sent;
    const where = safeUrl(url);
    let stopped: 'idle' | 'total' | undefined;
    const stop = (why: 'idle' | 'total') => {
      stopped ??= why;
      ctl.abort(timedOut());
    };
    const failure = (e: unknown): unknown => {
      if (r.signal?.aborted) return r.signal.reason;
      if (stopped === 'idle')
        return new ApiError('GW_SOURCE_UNREACHABLE', `${where} sent nothing for ${timeoutMs} ms in the middle of its answer`, {
          cause: e,
          detail: { timeoutMs },
        });
      if (stopped === 'total')
        return new ApiError('GW_SOURCE_UNREACHABLE', `${where} took more than ${timeoutMs} ms to send its answer`, {
          cause: e,
          detail: { timeoutMs },
        });
      if (e instanceof ApiError) return e;
      const why = errorName(e);
      return new ApiError('GW_SOURCE_UNREACHABLE', `${where} broke off its answer (${why})`, { cause: e, detail: { error: why } });
    };
    let body: ReadableStream<Uint8Array> | undefined;
    const stream = (): ReadableStream<Uint8Array> => {
      if (body) return body;
      const source = res.body;
      if (!source) {
        body = new ReadableStream({ start: (c) => c.close() });
        return body;
      }
      const reader = source.getReader();
      body = new ReadableStream<Uint8Array>(
        {
          async pull(c) {
            const t = net.setTimeout(() => stop('idle'), timeoutMs, { unref: true });
            try {
              const { done, value } = await reader.read();
              if (done) c.close();
              else c.enqueue(value);
            } catch (e) {
              throw failure(e);
            } finally {
              net.clearTimeout(t);
            }
          },
          cancel: (reason) => reader.cancel(reason),
        },
        { highWaterMark: 0 },
      );
      return body;
    };
    const text = async (maxBytes: number): Promise<string> => {
      const t = net.setTimeout(() => stop('total'), timeoutMs, { unref: true });
      try {
        return await readBodyCapped(stream(), maxBytes, where);
      } finally {
        net.clearTimeout(t);
      }
    };
    return {
      status: res.status,
      headers: res.headers,
      url,
      text,
      async json() {
        const t = await text(maxBody);
        if (t.trim() === '') return undefined;
        try {
          return JSON.parse(t) as unknown;
        } catch (e) {
          throw new ApiError('GW_API_REFUSED', `${where} answered ${res.status} with a body that is not JSON`, {
            status: res.status,
            cause: e,
          });
        }
      },
      stream,
    };
  }

  async function outcomeOf(res: HeldResponse): Promise<string[]> {
    try {
      return outcomeCodes(JSON.parse(await res.text(1024 * 1024)));
    } catch {
      return [];
    }
  }

  /** One fetch, timed out (connect and headers only) on its own controller, which the caller's signal also aborts. */
  async function fetchOnce(url: string, init: RequestInit, signal: AbortSignal | undefined): Promise<Sent> {
    const ctl = new AbortController();
    const t = net.setTimeout(() => ctl.abort(timedOut()), timeoutMs, { unref: true });
    try {
      const res = await doFetch(url, { ...init, redirect: 'manual', signal: signal ? AbortSignal.any([ctl.signal, signal]) : ctl.signal });
      return { res, url, ctl };
    } finally {
      net.clearTimeout(t);
    }
  }

  /** Where a redirect may be followed to, or GW_API_REFUSED saying why not (origins only: a path or query can carry identifiers or a signature). */
  function nextHop(r: HttpRequest, from: string, status: number, location: string, hop: number): string {
    const where = safeUrl(r.url);
    const method = r.method ?? 'GET';
    const refuse = (why: string, detail: Record<string, string | number> = {}) =>
      new ApiError('GW_API_REFUSED', `${where} redirected the gateway (${status}) ${why}`, { status, detail: { status, ...detail } });
    if (method !== 'GET' && method !== 'HEAD')
      throw refuse(`a ${method}: a request with a body or an effect is never re-sent to another address`);
    if (hop >= MAX_REDIRECTS) throw refuse(`more than ${MAX_REDIRECTS} times; not followed further`);
    let next: URL;
    try {
      next = new URL(location, from);
    } catch {
      throw refuse('to something that is not a URL');
    }
    const first = new URL(r.url);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') throw refuse(`to a ${next.protocol} URL; not followed`);
    if (next.username || next.password) throw refuse('to a URL with a user or password in it; not followed');
    if (next.protocol === 'http:' && new URL(from).protocol === 'https:')
      throw refuse(`from https to plain http (${next.origin}); not followed`, { origin: next.origin });
    if (next.protocol === 'http:' && !isLoopback(next))
      throw refuse(`to plain http on another machine (${next.origin}); not followed`, { origin: next.origin });
    if (next.origin !== first.origin && !r.anonymous)
      throw refuse(
        `to another origin (${next.origin}): a request carrying the token, or whose answer must come from the server itself, is not followed there`,
        { origin: next.origin },
      );
    return next.toString();
  }

  /** Sends one attempt, following the redirects the rules allow. */
  async function send(r: HttpRequest, headers: Record<string, string>, body: string | undefined): Promise<Sent> {
    const firstOrigin = new URL(r.url).origin;
    let url = r.url;
    for (let hop = 0; ; hop++) {
      counts.requests++;
      const sent = await fetchOnce(
        url,
        {
          method: r.method ?? 'GET',
          // the Authorization header (the bearer token, or a caller's own credentials) goes only to the first origin
          headers: new URL(url).origin === firstOrigin ? headers : withoutAuthorization(headers),
          body,
        },
        r.signal,
      );
      const location = sent.res.headers.get('location');
      if (r.redirect === 'manual' || !REDIRECT_STATUSES.has(sent.res.status) || location === null) return sent;
      await sent.res.body?.cancel().catch(() => undefined);
      url = nextHop(r, url, sent.res.status, location, hop);
    }
  }

  async function request(r: HttpRequest): Promise<HttpResponse> {
    let renewed = false;
    const where = safeUrl(r.url);
    const attempts = Math.max(1, r.maxAttempts ?? maxAttempts);
    for (let attempt = 0; ; attempt++) {
      if (r.signal?.aborted) throw r.signal.reason;
      if (o.quota) await o.quota.acquire(r.signal);
      const headers: Record<string, string> = { 'user-agent': o.userAgent ?? 'eyewear-gateway', ...r.headers };
      if (o.auth && !r.anonymous) headers.authorization = await o.auth.header(r.signal);
      const body = typeof r.body === 'function' ? await r.body() : r.body;
      let res: HeldResponse;
      try {
        res = hold(await send(r, headers, body), r);
      } catch (e) {
        if (r.signal?.aborted) throw r.signal.reason;
        if (e instanceof ApiError) throw e; // a redirect refused: permanent
        const why = errorName(e);
        if (attempt + 1 >= attempts)
          throw new ApiError('GW_SOURCE_UNREACHABLE', `${where} did not answer (${why})`, { cause: e, detail: { error: why } });
        counts.retries++;
        await sleep(backoff(attempt), r.signal);
        continue;
      }
      if ((res.status >= 200 && res.status < 300) || r.accept?.includes(res.status)) return res;
      if (res.status === 401 && o.auth && !r.anonymous && !renewed) {
        await res
          .stream()
          .cancel()
          .catch(() => undefined);
        o.auth.invalidate();
        renewed = true;
        counts.renewals++;
        attempt--; // the renewal's retry is not a failure's
        continue;
      }
      const issues = await outcomeOf(res);
      const detail: Record<string, string | number> = { status: res.status, ...(issues.length ? { outcome: issues.join(',') } : {}) };
      if (res.status === 401 || res.status === 403)
        throw new ApiError('GW_API_AUTH_FAILED', `${where} refused the gateway's credentials (${res.status})`, {
          status: res.status,
          detail,
        });
      if (res.status === 429 || res.status >= 500) {
        if (res.status === 429) counts.throttled++;
        const after = retryAfterMs(res.headers.get('retry-after'), o.clock.now());
        if (after !== undefined && after > maxRetryAfter)
          throw new ApiError('GW_SOURCE_UNREACHABLE', `${where} asked the gateway to wait ${Math.round(after / 1000)} s (${res.status})`, {
            status: res.status,
            retryInMs: after,
            detail,
          });
        if (attempt + 1 >= attempts)
          throw new ApiError('GW_SOURCE_UNREACHABLE', `${where} answered ${res.status} ${attempts === 1 ? 'once' : `${attempts} times`}`, {
            status: res.status,
            retryInMs: after,
            detail,
          });
        counts.retries++;
        await sleep(after ?? backoff(attempt), r.signal);
        continue;
      }
      throw new ApiError('GW_API_REFUSED', `${where} refused the request (${res.status})`, { status: res.status, detail });
    }
  }

  return {
    request,
    async getJson(url, signal) {
      return (await request({ url, headers: { accept: 'application/fhir+json, application/json' }, signal })).json();
    },
    stats: () => ({ ...counts }),
  };
}
