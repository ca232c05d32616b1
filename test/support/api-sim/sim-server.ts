/**
 * The part every vendor API simulator shares: an HTTP server in process on 127.0.0.1 (a free
 * port), a clock the test moves (it stamps changes and the `Date` header, which the gateway takes
 * as the server's time), OAuth access tokens with injectable revocation, the vendor's own rate
 * limit answered with 429, and injected faults. Each vendor module (athenahealth.ts, drchrono.ts)
 * adds its routes and its data; the shapes are the vendor's published ones (each module says which).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SimRequest {
  seq: number;
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** A token request (not counted as an API call by the faults). */
  token: boolean;
}

export interface SimFaults {
  /** API calls (1-based, token requests not counted) answered 429 with `Retry-After`. */
  throttle?: { at: number[]; retryAfterSeconds: number };
  /** API calls answered with this status (and no Retry-After). */
  failures?: { at: number[]; status: number };
  /** Each access token stops working after this many API calls (the server revokes it early; its `expires_in` still claims hours). */
  tokenUses?: number;
}

export interface SimClock {
  now(): number;
  advance(ms: number): void;
}

export interface SimReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SimContext {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The raw form or JSON body. */
  body: string;
  headers: IncomingMessage['headers'];
  origin: string;
}

/** Called around each API call (not token requests): a crash test kills the gateway there. */
export interface SimHooks {
  /** Before the call is answered (the gateway waits for this page). */
  before?(call: { n: number; path: string }): void;
  /** Once the answer is written (the gateway is reading, mapping or committing it). */
  after?(call: { n: number; path: string }): void;
}

export interface SimServer {
  origin: string;
  hooks: SimHooks;
  clock: SimClock;
  requests: SimRequest[];
  faults: SimFaults;
  tokens: TokenBook;
  stop(): Promise<void>;
}

/** Access tokens the simulator issued, with their remaining uses. */
export interface TokenBook {
  issue(): string;
  /** Whether an `Authorization` header carries a live token (and spends one of its uses). */
  spend(header: string | undefined): boolean;
  revokeAll(): void;
  issued(): number;
}

function tokenBook(faults: SimFaults): TokenBook {
  const live = new Map<string, number>();
  let issued = 0;
  return {
    issue() {
      const t = randomBytes(18).toString('base64url');
      live.set(t, faults.tokenUses ?? Number.POSITIVE_INFINITY);
      issued++;
      return t;
    },
    spend(header) {
      const m = /^Bearer (\S+)$/.exec(header ?? '');
      const left = m ? live.get(m[1]) : undefined;
      if (left === undefined || left <= 0) return false;
      live.set(m![1], left - 1);
      return true;
    },
    revokeAll: () => live.clear(),
    issued: () => issued,
  };
}

export interface SimOptions {
  /** The vendor's own per-second ceiling (429 past it); 0: none. */
  perSecond?: number;
  /** Start of the simulator's clock (ms); default now. */
  start?: number;
  faults?: SimFaults;
  /** Token requests (answered without faults or the bearer check). */
  token(ctx: SimContext, tokens: TokenBook): SimReply;
  /** API calls; `authorized` says whether the bearer token was live. */
  api(ctx: SimContext, authorized: boolean): SimReply;
  isToken(method: string, path: string): boolean;
}

export async function startSimServer(o: SimOptions): Promise<SimServer> {
  const faults: SimFaults = o.faults ?? {};
  let offset = 0;
  const base = o.start ?? Date.now();
  const realStart = Date.now();
  const clock: SimClock = { now: () => base + (Date.now() - realStart) + offset, advance: (ms) => void (offset += ms) };
  const tokens = tokenBook(faults);
  const requests: SimRequest[] = [];
  const recent: number[] = [];
  let apiCalls = 0;
  let origin = '';
  const hooks: SimHooks = {};

  const send = (res: ServerResponse, r: SimReply) => {
    const text = r.body === undefined ? '' : JSON.stringify(r.body);
    res.writeHead(r.status, {
      date: new Date(clock.now()).toUTCString(),
      ...(text ? { 'content-type': 'application/json' } : {}),
      ...r.headers,
    });
    res.end(text);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', origin);
      const ctx: SimContext = {
        method: req.method ?? 'GET',
        path: u.pathname,
        query: u.searchParams,
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
        origin,
      };
      const token = o.isToken(ctx.method, ctx.path);
      const log = (status: number) =>
        requests.push({
          seq: requests.length + 1,
          method: ctx.method,
          path: ctx.path,
          query: Object.fromEntries(u.searchParams),
          status,
          token,
        });
      let reply: SimReply;
      let n = 0;
      if (token) reply = o.token(ctx, tokens);
      else {
        n = ++apiCalls;
        hooks.before?.({ n, path: ctx.path });
        const now = clock.now();
        while (recent.length && recent[0] <= now - 1000) recent.shift();
        recent.push(now);
        if (faults.throttle?.at.includes(n))
          reply = { status: 429, body: { error: 'throttled' }, headers: { 'retry-after': String(faults.throttle.retryAfterSeconds) } };
        else if (faults.failures?.at.includes(n)) reply = { status: faults.failures.status, body: { error: 'unavailable' } };
        else if (o.perSecond && recent.length > o.perSecond)
          reply = { status: 429, body: { error: 'rate limit' }, headers: { 'retry-after': '1' } };
        else reply = o.api(ctx, tokens.spend(req.headers.authorization));
      }
      log(reply.status);
      send(res, reply);
      if (n > 0) hooks.after?.({ n, path: ctx.path });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    hooks,
    clock,
    requests,
    faults,
    tokens,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The offset of an IANA zone at an instant (ms to add to UTC for the wall clock). */
function zoneOffset(ms: number, timeZone: string): number {
  const p = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const n = (t: string) => Number(p.find((x) => x.type === t)?.value);
  return Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) - Math.floor(ms / 1000) * 1000;
}

/** A wall-clock time in a zone → the instant (ms); NaN when the parts are not a time. */
export function wallToInstant(y: number, mo: number, d: number, h: number, mi: number, s: number, timeZone: string): number {
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  const first = guess - zoneOffset(guess, timeZone);
  return guess - zoneOffset(first, timeZone);
}

/** The wall clock of an instant in a zone, as `YYYY-MM-DDTHH:mm:ss`. */
export function instantToWall(ms: number, timeZone: string): string {
  return new Date(Math.floor(ms / 1000) * 1000 + zoneOffset(ms, timeZone)).toISOString().slice(0, 19);
}

/** `Basic` credentials of a request (RFC 7617, with RFC 6749's form-encoding of each part). */
export function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic (\S+)$/.exec(header ?? '');
  if (!m) return undefined;
  const [id, secret] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
  if (secret === undefined) return undefined;
  const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: dec(id), secret: dec(secret) };
}
