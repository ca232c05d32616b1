/**
 * A vendor's REST API as a polled source, beside the database poller and the FHIR source and on
 * the same commit path: each page of rows and the cursor after it commit in one outbox
 * transaction.
 *
 * Start-up proves the way in before anything is read — an OAuth source gets its token (a
 * refresh-token source rotates and seals its refresh token there) — and then reads in the
 * background: each cycle runs every entity that is due from its position to the end (the first
 * run of each is its first load, with progress in `/status`). A failed start rejects with the
 * code, so the supervisor reports it in `/status` and retries. One entity failing does not stop
 * the others; its code shows in `/status` as `<entity>.error`. The outbox at its cap pauses the
 * reads (the page is retried, the cursor stays).
 *
 * Calls are kept under the profile's (or the entry's) limits per second, minute, hour and day by
 * the gateway itself (adapters/http/quota.ts); a 429 or 503 is answered by waiting its
 * `Retry-After` (adapters/http/http-client.ts), a longer wait by handing the cycle back with the
 * cursor kept.
 */
import type { Logger } from 'pino';
import { sleepUnlessAborted, systemClock, type Clock } from '../../gateway/clock.ts';
import { commitPage } from '../page-commit.ts';
import {
  pollWait,
  type AdapterHealth,
  type IntakeContext,
  type MapResult,
  type RawRow,
  type SecretStore,
  type SourceAdapter,
} from '../contracts.ts';
import { createHttpClient, type HttpClient } from '../http/http-client.ts';
import { ApiError } from '../http/http-error.ts';
import { createQuota, type Quota, type QuotaStore } from '../http/quota.ts';
import { createApiRowMapper, type ApiRowMapper } from './api-rows.ts';
import type { ResolvedApiSource } from './api-types.ts';
import { createApiAuth, type ApiAuth } from './auth/index.ts';
import { entityDue, entityRun, readEntityCursor, type SyncContext } from './entity-sync.ts';

export interface ApiSourceOptions {
  source: ResolvedApiSource;
  secrets: SecretStore;
  /** The practice's IANA zone (times without an offset; modified-since in practice time). */
  timezone: string;
  clock?: Clock;
  fetch?: typeof fetch;
  /** HTTP attempts per request for 429/5xx/network errors (default 5). */
  maxAttempts?: number;
  /** Longest Retry-After slept inside one request (default 2 minutes). */
  maxRetryAfterMs?: number;
  /** First back-off of a retried request (default 1 s; tests make it small). */
  backoffInitialMs?: number;
}

/** What `api check` and a start prove: the way in, and the client that reads. */
export interface ApiConnection {
  http: HttpClient;
  auth: ApiAuth;
}

export type ApiSource = SourceAdapter & {
  readonly source: ResolvedApiSource;
  /** Proves the way in as a start does, without reading or committing anything. */
  connect(signal?: AbortSignal): Promise<ApiConnection>;
  /** Maps a row of one of this source's streams (the dead-letter replay, `api check`). */
  mapRow(stream: string, row: RawRow): MapResult;
  /** Requests made since it was built (for tests and the bench). */
  requests(): number;
};

/** The day's call count, kept beside the source's public files (a count, no PHI). */
function quotaStore(secrets: SecretStore): QuotaStore {
  return {
    load() {
      const t = secrets.readPublic('quota.json');
      if (!t) return undefined;
      try {
        const v = JSON.parse(t) as { day?: unknown; calls?: unknown };
        return typeof v.day === 'number' && typeof v.calls === 'number' ? { day: v.day, calls: v.calls } : undefined;
      } catch {
        return undefined;
      }
    },
    save: (state) => secrets.writePublic('quota.json', JSON.stringify(state)),
  };
}

export function createApiSource(o: ApiSourceOptions): ApiSource {
  const clock = o.clock ?? systemClock;
  const src = o.source;
  const mapper: ApiRowMapper = createApiRowMapper({
    sourceId: src.id,
    system: src.system,
    entities: src.entities,
    timezone: o.timezone,
    now: () => clock.now(),
  });
  let quota: Quota | undefined;
  let ctx: IntakeContext | undefined;
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  let conn: ApiConnection | undefined;
  let madeRequests = 0;
  let state: AdapterHealth = { status: 'down', detail: { state: 'not started' } };
  const notes = new Map<string, string | number>();
  const errors = new Map<string, string>();

  async function connect(signal?: AbortSignal): Promise<ApiConnection> {
    quota ??= createQuota(src.rateLimit, clock, quotaStore(o.secrets));
    const common = {
      clock,
      quota,
      timeoutMs: src.timeoutMs,
      fetch: o.fetch,
      maxRetryAfterMs: o.maxRetryAfterMs,
      backoffInitialMs: o.backoffInitialMs,
      userAgent: 'eyewear-gateway',
    };
    const bare = createHttpClient({ ...common, maxAttempts: 3, backoffInitialMs: o.backoffInitialMs ?? 500 });
    const auth = createApiAuth(src.auth, { http: bare, clock, secrets: o.secrets });
    const http = createHttpClient({ ...common, auth: auth.provider, maxAttempts: o.maxAttempts ?? 5 });
    if (auth.provider) await auth.provider.header(signal);
    const counted: HttpClient = {
      ...http,
      request: (r) => {
        madeRequests++;
        return http.request(r);
      },
    };
    return { http: counted, auth };
  }

  function commit(stream: string, rows: RawRow[], cursor: { key: string; value: string }, firstLoad?: boolean): Promise<boolean> {
    return commitPage(
      ctx!,
      { adapter: src.id, format: `api:${src.id}`, stream, rows, map: (row) => mapper.map(stream, row), cursor, firstLoad },
      {
        clock,
        signal: abort!.signal,
        onState: (st) => notes.set('state', st),
        onCommitted: (n) => {
          cycleChanges += n;
        },
      },
    );
  }
  /** Rows the cycle under way committed as changed (what the poll schedule learns from). */
  let cycleChanges = 0;

  const sleep = (ms: number) => sleepUnlessAborted(clock, ms, abort?.signal);

  function syncContext(c: ApiConnection, logger: Logger, signal: AbortSignal): SyncContext {
    return {
      source: src,
      http: c.http,
      headers: c.auth.headers,
      clock,
      logger,
      signal,
      timezone: o.timezone,
      cursor: (k) => ctx!.cursor(k),
      commit,
      note: (k, v) => notes.set(k, v),
    };
  }

  /** One cycle; returns how long to wait before the next (longer when a server asked for it). */
  async function cycle(s: SyncContext): Promise<number> {
    let serverMinMs: number | undefined;
    cycleChanges = 0;
    const requestsBefore = madeRequests;
    for (const e of src.entities) {
      if (s.signal.aborted) return 0;
      const c = readEntityCursor(s, src.id, e.name);
      notes.set(`${e.name}.phase`, c.phase);
      if (!entityDue(c, e, clock.now())) continue;
      try {
        const n = await entityRun(s, e);
        if (n === undefined) return 0;
        notes.set(`${e.name}.phase`, 'incremental');
        notes.set(`${e.name}.lastRead`, n);
        errors.delete(e.name);
      } catch (err) {
        if (s.signal.aborted) return 0;
        const code = err instanceof ApiError ? err.code : 'GW_SOURCE_UNREACHABLE';
        errors.set(e.name, `${code}: ${(err as Error).message}`.slice(0, 300));
        ctx!.logger.error(
          { code, entity: e.name, ...(err instanceof ApiError ? err.detail : {}) },
          `${e.name} not read to its end; it goes on from its cursor next cycle`,
        );
        if (err instanceof ApiError && err.retryInMs !== undefined)
          serverMinMs = Math.max(serverMinMs ?? 0, Math.min(err.retryInMs, 86_400_000));
      }
    }
    const requests = madeRequests - requestsBefore;
    return pollWait(ctx, { configuredMs: src.pollIntervalMs, changes: cycleChanges, requests, serverMinMs });
  }

  async function run(c: ApiConnection, signal: AbortSignal): Promise<void> {
    const s = syncContext(c, ctx!.logger, signal);
    while (!signal.aborted) {
      notes.set('state', 'reading');
      const wait = await cycle(s);
      notes.set('state', 'idle');
      notes.set('lastCycleAt', new Date(clock.now()).toISOString());
      if (!(await sleep(wait))) break;
    }
  }

  async function begin(c: IntakeContext): Promise<void> {
    ctx = c;
    abort = new AbortController();
    state = { status: 'degraded', detail: { state: 'connecting' } };
    try {
      conn = await connect(abort.signal);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : 'GW_SOURCE_UNREACHABLE';
      // the reason is the gateway's own text (codes, setting names), never a server's
      state = {
        status: 'down',
        detail: { state: 'not connected (run `eyewear-gateway api check`)', error: code, reason: (e as Error).message.slice(0, 300) },
      };
      abort = undefined;
      throw Object.assign(new Error(`api ${src.id}: ${(e as Error).message}`, { cause: e }), { code });
    }
    c.logger.info({ profile: src.profileName, entities: src.entities.length, auth: src.auth.kind }, 'API source connected; reading');
    state = { status: 'up', detail: {} };
    loop = run(conn, abort.signal);
  }

  return {
    id: src.id,
    source: src,
    connect,
    mapRow: (stream, row) => mapper.map(stream, row),
    requests: () => madeRequests,
    async start(c) {
      if (loop) return;
      // a second start while the first is connecting waits for it: one loop, ever
      starting ??= begin(c).finally(() => {
        starting = undefined;
      });
      return starting;
    },
    async stop() {
      if (starting) await starting.catch(() => undefined);
      abort?.abort(new Error('stopping'));
      await loop?.catch(() => undefined);
      quota?.flush();
      loop = undefined;
      abort = undefined;
      state = { status: 'down', detail: { state: 'stopped' } };
    },
    health() {
      if (!conn || !loop) return state;
      const detail: Record<string, string | number | boolean> = {
        profile: src.profile.label,
        auth: src.auth.kind,
        ...Object.fromEntries(notes),
      };
      for (const [what, e] of errors) detail[`${what}.error`] = e;
      // answers 429 since the start (each one waited out): the health monitor's throttling signal
      detail.throttled = conn.http.stats().throttled;
      const q = quota?.stats();
      if (q) {
        detail.callsToday = q.callsToday;
        if (q.waitedMs > 0) detail.quotaWaitedMs = q.waitedMs;
      }
      const exp = conn.auth.provider?.expiresAt();
      if (exp) detail.tokenExpiresAt = new Date(exp).toISOString();
      const gen = conn.auth.refreshGeneration?.();
      if (gen !== undefined) detail.refreshTokenGeneration = gen;
      return { status: errors.size ? 'degraded' : 'up', detail };
    },
  };
}
