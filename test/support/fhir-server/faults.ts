/**
 * Faults a test asks the FHIR API to show, decided per request by its ordinal (1-based, counting
 * every request under the base URL; the token endpoint is not counted): a vendor quota (429 with
 * `Retry-After`, RFC 6585 §4 and RFC 9110 §10.2.3), throttling every Nth request, transient 500/503
 * answers, and connections cut in the middle of a response. Error bodies are OperationOutcomes
 * with fixed texts (no PHI).
 */
import type { ServerResponse } from 'node:http';
import type { IssueCode } from './http-util.ts';
import type { FaultOptions } from './types.ts';

export type FaultDecision =
  | { kind: 'drop' }
  | { kind: 'status'; status: number; code: IssueCode; text: string; headers: Record<string, string> };

export interface Faults {
  /** Counts one API request and says whether a fault answers it instead. */
  next(): FaultDecision | undefined;
  /** API requests counted so far. */
  count(): number;
  /** Cuts the response of the API request with this ordinal too (a test that knows only now which one it is). */
  dropAt(ordinal: number): void;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

export function createFaults(o: FaultOptions, clock: () => number): Faults {
  let n = 0;
  const drops = new Set(o.dropConnectionAt ?? []);
  const minute = { window: -1, used: 0 };
  const day = { window: -1, used: 0 };
  const every = (k: number | undefined) => k !== undefined && k > 0 && n % k === 0;

  const quota = (): FaultDecision | undefined => {
    const limit = o.rateLimit;
    if (!limit) return undefined;
    const now = clock();
    for (const [w, size, max, what] of [
      [minute, MINUTE, limit.perMinute, 'per-minute rate limit'],
      [day, DAY, limit.perDay, 'daily quota'],
    ] as const) {
      const index = Math.floor(now / size);
      if (w.window !== index) {
        w.window = index;
        w.used = 0;
      }
      w.used++;
      if (max !== undefined && w.used > max) {
        const retryAfter = Math.max(1, Math.ceil(((index + 1) * size - now) / 1000));
        return { kind: 'status', status: 429, code: 'throttled', text: `${what} exceeded`, headers: { 'Retry-After': String(retryAfter) } };
      }
    }
    return undefined;
  };

  return {
    count: () => n,
    dropAt: (k) => void drops.add(k),
    next: () => {
      n++;
      const q = quota();
      if (q) return q;
      if (drops.has(n)) return { kind: 'drop' };
      const f = o.failures;
      if (f && (f.at?.includes(n) || every(f.every))) {
        return f.status === 503
          ? { kind: 'status', status: 503, code: 'transient', text: 'service unavailable, try again', headers: { 'Retry-After': '1' } }
          : { kind: 'status', status: 500, code: 'exception', text: 'internal server error', headers: {} };
      }
      if (o.throttle && every(o.throttle.every)) {
        return {
          kind: 'status',
          status: 429,
          code: 'throttled',
          text: 'too many requests',
          headers: { 'Retry-After': String(o.throttle.retryAfterSeconds) },
        };
      }
      return undefined;
    },
  };
}

/**
 * Makes a response die half-way: the status line, the headers and the first half of the first
 * body chunk go out, then the socket is destroyed (the client sees a premature close).
 */
export function armDrop(res: ServerResponse, onDrop: () => void): void {
  const write = res.write.bind(res) as (chunk: Buffer) => boolean;
  let cut = false;
  const cutAt = (chunk: unknown) => {
    if (cut) return;
    cut = true;
    onDrop();
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.alloc(0);
    if (buf.length > 0) write(buf.subarray(0, Math.max(1, buf.length >> 1)));
    else res.flushHeaders();
    setImmediate(() => res.socket?.destroy());
  };
  res.write = ((chunk: unknown) => {
    cutAt(chunk);
    return false;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    cutAt(typeof chunk === 'function' ? undefined : chunk);
    return res;
  }) as typeof res.end;
}
