/**
 * The HTTP layer every remote API source shares (FHIR servers today; the vendors' own REST APIs
 * later): one `request` that takes a quota slot, adds the bearer token, times out, retries what
 * is worth retrying, and says what went wrong with a stable code.
 *
 * - 429 and 503 honour `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3); a wait longer
 *   than `maxRetryAfterMs` is not slept here but handed to the poller (ApiError.retryInMs), which
 *   keeps its cursor and comes back.
 * - Other 5xx and network errors back off exponentially with jitter, up to `maxAttempts`.
 * - 401 is answered by one token renewal and one retry (SMART: an access token may be revoked
 *   before it expires); a second 401 is GW_API_AUTH_FAILED.
 * - Other 4xx are permanent (GW_API_REFUSED) with the OperationOutcome's issue codes, never its text.
 * - Bodies are read under a byte cap (`maxBodyBytes`), or handed over as a stream (NDJSON).
 *
 * Built on Node's fetch rather than fhir-kit-client, which reads every body whole and neither
 * retries nor streams (README, dependency table).
 */
import type { Clock } from '../../gateway/clock.ts';
import { ApiError, outcomeCodes, safeUrl } from './http-error.ts';
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
  /** Per attempt, until the response headers arrive. */
  timeoutMs?: number;
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
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Do not add the bearer token (token endpoint, discovery, manifests' files that say so). */
  anonymous?: boolean;
  /** Statuses answered to the caller rather than thrown (e.g. 202 while a bulk export runs, 410 for a deleted read, 412). */
  accept?: readonly number[];
  /** `manual`: a redirect is answered to the caller as an error (writes: a body carrying PHI is never re-sent elsewhere). Default `follow`. */
  redirect?: 'follow' | 'manual';
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  url: string;
  /** The body as JSON, read under the byte cap. */
  json(): Promise<unknown>;
  /** The body as a byte stream (the caller must read or cancel it). */
  stream(): ReadableStream<Uint8Array>;
}

export interface HttpClient {
  request(r: HttpRequest): Promise<HttpResponse>;
  getJson(url: string, signal?: AbortSignal): Promise<unknown>;
  stats(): { requests: number; retries: number; throttled: number; renewals: number };
}

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

export function createHttpClient(o: HttpClientOptions): HttpClient {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const maxAttempts = Math.max(1, o.maxAttempts ?? 5);
  const initial = o.backoffInitialMs ?? 1000;
  const cap = o.backoffMaxMs ?? 60_000;
  const maxRetryAfter = o.maxRetryAfterMs ?? 120_000;
  const maxBody = o.maxBodyBytes ?? 64 * 1024 * 1024;
  const random = o.random ?? Math.random;
  const doFetch = o.fetch ?? fetch;
  const counts = { requests: 0, retries: 0, throttled: 0, renewals: 0 };

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = o.clock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        o.clock.clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  const backoff = (attempt: number) => Math.min(cap, initial * 2 ** attempt) * (0.5 + random() / 2);

  function wrap(res: Response): HttpResponse {
    return {
      status: res.status,
      headers: res.headers,
      url: res.url,
      async json() {
        const text = await readBodyCapped(res.body, maxBody, safeUrl(res.url));
        if (text.trim() === '') return undefined;
        try {
          return JSON.parse(text) as unknown;
        } catch (e) {
          throw new ApiError('GW_API_REFUSED', `${safeUrl(res.url)} answered ${res.status} with a body that is not JSON`, {
            status: res.status,
            cause: e,
          });
        }
      },
      stream() {
        if (!res.body) return new ReadableStream({ start: (c) => c.close() });
        return res.body;
      },
    };
  }

  async function outcomeOf(res: Response): Promise<string[]> {
    try {
      return outcomeCodes(JSON.parse(await readBodyCapped(res.body, 1024 * 1024, 'error body')));
    } catch {
      return [];
    }
  }

  async function request(r: HttpRequest): Promise<HttpResponse> {
    let renewed = false;
    const where = safeUrl(r.url);
    for (let attempt = 0; ; attempt++) {
      if (r.signal?.aborted) throw r.signal.reason;
      if (o.quota) await o.quota.acquire(r.signal);
      const headers: Record<string, string> = { 'user-agent': o.userAgent ?? 'eyewear-gateway', ...r.headers };
      if (o.auth && !r.anonymous) headers.authorization = await o.auth.header(r.signal);
      const signals = [AbortSignal.timeout(timeoutMs), ...(r.signal ? [r.signal] : [])];
      counts.requests++;
      let res: Response;
      try {
        res = await doFetch(r.url, {
          method: r.method ?? 'GET',
          headers,
          body: r.body,
          signal: AbortSignal.any(signals),
          redirect: r.redirect ?? 'follow',
        });
      } catch (e) {
        if (r.signal?.aborted) throw r.signal.reason;
        const why = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
        if (attempt + 1 >= maxAttempts)
          throw new ApiError('GW_SOURCE_UNREACHABLE', `${where} did not answer (${why})`, { cause: e, detail: { error: why } });
        counts.retries++;
        await sleep(backoff(attempt), r.signal);
        continue;
      }
      if (res.ok || r.accept?.includes(res.status)) return wrap(res);
      if (res.status === 401 && o.auth && !r.anonymous && !renewed) {
        await res.body?.cancel().catch(() => undefined);
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
        if (attempt + 1 >= maxAttempts)
          throw new ApiError('GW_SOURCE_UNREACHABLE', `${where} answered ${res.status} ${maxAttempts} times`, {
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
