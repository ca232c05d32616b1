/**
 * A FHIR R4 server as a polled source, beside the database poller and on the same commit path:
 * each page of resources and the cursor after it commit in one outbox transaction.
 *
 * Start-up proves the connection end to end before anything is read — the key pair (made on first
 * use), SMART discovery, a token, `/metadata` (R4 only) — then picks each resource's strategy from
 * the capabilities and the vendor profile. A failed start rejects with the code, so the supervisor
 * reports it in `/status` and retries. Each cycle runs the bulk export (when due, for the resources
 * synced in bulk) and one search run per other resource; a resource that fails does not stop the
 * others, and its code shows in `/status`. The outbox at its cap pauses the reads (the page is
 * retried, the cursor stays).
 */
import type { Logger } from 'pino';
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import { sleepUnlessAborted, systemClock, type Clock } from '../../gateway/clock.ts';
import { commitPage } from '../page-commit.ts';
import { pollWait, type AdapterHealth, type IntakeContext, type RawRow, type SecretStore, type SourceAdapter } from '../contracts.ts';
import { loadOrCreateClientKey, type ClientKey } from '../http/client-keys.ts';
import { createHttpClient, type HttpClient } from '../http/http-client.ts';
import { ApiError } from '../http/http-error.ts';
import { createQuota, type Quota, type QuotaStore } from '../http/quota.ts';
import { createSmartBackendAuth, discoverSmart, type SmartBackendAuth } from '../http/smart-backend.ts';
import { bulkDue, bulkRun, readBulkCursor, type BulkOptions } from './bulk-sync.ts';
import { bulkProblem, chooseStrategy, parseCapabilities, requireR4, strategyLabel, type FhirCapabilities } from './capabilities.ts';
import { createRowMapper, type RowMapper } from './fhir-rows.ts';
import { historyRun } from './history-sync.ts';
import { searchCursorKey, searchRun } from './search-sync.ts';
import type { SyncContext } from './sync-context.ts';
import { defaultScope, VENDOR_PROFILES, type SyncStrategy, type VendorProfile } from './vendor-profiles.ts';

export interface FhirSourceOptions {
  id: string;
  vendor: keyof typeof VENDOR_PROFILES;
  baseUrl: string;
  clientId: string;
  resources: readonly FhirResourceName[];
  system: string;
  tokenUrl: string;
  scope: string;
  keyAlg: 'RS384' | 'ES384';
  jwksUrl: string;
  pollIntervalMs: number;
  pageSize?: number;
  overlapSeconds: number;
  dateWindowDays: number;
  bulk: {
    mode: 'auto' | 'never' | 'always';
    level?: 'system' | 'group' | 'patient';
    groupId: string;
    intervalMinutes: number;
    maxWaitMinutes: number;
  };
  rateLimit: { perMinute?: number; perDay?: number };
  timeoutMs: number;
  secrets: SecretStore;
  clock?: Clock;
  /** Largest NDJSON line (one resource) read; longer ones are dead-lettered as unreadable. */
  maxResourceBytes?: number;
  fetch?: typeof fetch;
  /** The wall clock client assertions are stamped with (default Date.now; adapters/http/smart-backend.ts says why it is not `clock`). */
  wallNow?: () => number;
}

/** What `fhir check` and the start prove: discovery, token, capabilities, and the strategy per resource. */
export interface FhirConnection {
  http: HttpClient;
  auth: SmartBackendAuth;
  key: ClientKey;
  tokenUrl: string;
  capabilities: FhirCapabilities;
  strategies: Map<FhirResourceName, SyncStrategy | { problem: string }>;
}

export type FhirSource = SourceAdapter & {
  /** Proves the connection as a start does, without reading or committing anything. */
  connect(signal?: AbortSignal): Promise<FhirConnection>;
  readonly profile: VendorProfile;
  unmapped(): Record<string, number>;
  rowMapper: RowMapper;
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

export function createFhirSource(o: FhirSourceOptions): FhirSource {
  const clock = o.clock ?? systemClock;
  const profile = VENDOR_PROFILES[o.vendor];
  const baseUrl = o.baseUrl.replace(/\/+$/, '');
  const pageSize = o.pageSize ?? profile.pageSize;
  const rowMapper = createRowMapper({ system: o.system, adapter: 'fhir', now: () => clock.now() });
  const bulkOptions: BulkOptions = {
    ...o.bulk,
    level: o.bulk.level ?? profile.bulkLevel,
    maxLineBytes: o.maxResourceBytes ?? 16 * 1024 * 1024,
  };
  let quota: Quota | undefined;
  let ctx: IntakeContext | undefined;
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  let conn: FhirConnection | undefined;
  let state: AdapterHealth = { status: 'down', detail: { state: 'not started' } };
  const notes = new Map<string, string | number>();
  const outcomes = new Map<string, number>();
  const errors = new Map<string, string>();

  async function connect(signal?: AbortSignal): Promise<FhirConnection> {
    const problem = profile.checkBaseUrl?.(new URL(baseUrl));
    if (problem) throw new ApiError('GW_API_REFUSED', `fhir.${o.id}.baseUrl: ${problem}`, { detail: { vendor: o.vendor } });
    const key = await loadOrCreateClientKey(o.secrets, o.keyAlg);
    quota ??= createQuota(
      { perMinute: o.rateLimit.perMinute ?? profile.rateLimit.perMinute, perDay: o.rateLimit.perDay ?? profile.rateLimit.perDay },
      clock,
      quotaStore(o.secrets),
    );
    const bare = createHttpClient({ clock, quota, timeoutMs: o.timeoutMs, fetch: o.fetch, maxAttempts: 3, backoffInitialMs: 500 });
    let tokenUrl = o.tokenUrl;
    if (!tokenUrl) {
      const smart = await discoverSmart(bare, baseUrl, signal);
      if (!smart?.token_endpoint)
        throw new ApiError(
          'GW_API_REFUSED',
          `${baseUrl} publishes no SMART configuration with a token endpoint: set fhir.${o.id}.tokenUrl`,
        );
      const algs = smart.token_endpoint_auth_signing_alg_values_supported;
      if (algs && !algs.includes(o.keyAlg))
        throw new ApiError(
          'GW_API_AUTH_FAILED',
          `the server does not accept ${o.keyAlg} client assertions (it takes ${algs.join(', ')}): set fhir.${o.id}.keyAlg`,
        );
      tokenUrl = smart.token_endpoint;
    }
    const scope = o.scope || defaultScope(profile, o.resources);
    const auth = createSmartBackendAuth({
      http: bare,
      clock,
      clientId: o.clientId,
      tokenUrl,
      scope,
      key,
      jwksUrl: o.jwksUrl || undefined,
      wallNow: o.wallNow,
    });
    const http = createHttpClient({ clock, quota, auth, timeoutMs: o.timeoutMs, fetch: o.fetch });
    await auth.header(signal);
    const capabilities = parseCapabilities(await http.getJson(`${baseUrl}/metadata`, signal));
    requireR4(capabilities);
    const strategies = new Map<FhirResourceName, SyncStrategy | { problem: string }>();
    const blocked = o.bulk.mode === 'never' ? undefined : bulkProblem(capabilities, profile, bulkOptions.level, o.bulk.groupId);
    for (const r of o.resources) {
      const c = chooseStrategy(capabilities, profile, r, o.bulk.mode, blocked);
      strategies.set(r, 'strategy' in c ? c.strategy : c);
    }
    return { http, auth, key, tokenUrl, capabilities, strategies };
  }

  function commit(stream: string, rows: RawRow[], cursor: { key: string; value: string }, firstLoad?: boolean): Promise<boolean> {
    return commitPage(
      ctx!,
      { adapter: o.id, format: `fhir:${o.id}`, stream, rows, map: (row) => rowMapper.map(row), cursor, firstLoad },
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
  /** Resources the cycle under way committed as changed (what the poll schedule learns from). */
  let cycleChanges = 0;

  const sleep = (ms: number) => sleepUnlessAborted(clock, ms, abort?.signal);

  function syncContext(c: FhirConnection, logger: Logger, signal: AbortSignal): SyncContext {
    return {
      sourceId: o.id,
      baseUrl,
      http: c.http,
      clock,
      logger,
      signal,
      pageSize,
      cursor: (k) => ctx!.cursor(k),
      commit,
      note: (k, v) => notes.set(k, v),
      outcome: (codes) => {
        for (const code of codes) {
          const seen = outcomes.get(code);
          // bounded: codes come from the server (a value set, but not trusted to be one)
          if (seen === undefined && outcomes.size >= 50) continue;
          outcomes.set(code, (seen ?? 0) + 1);
          // one log line per code, not one per error-file line
          if (seen === undefined)
            logger.warn({ outcome: code }, 'the server returned an OperationOutcome issue (counted in /status from now on)');
        }
      },
    };
  }

  /** One cycle; returns how long to wait before the next (longer when a server asked for it). */
  async function cycle(c: FhirConnection, s: SyncContext): Promise<number> {
    let serverMinMs: number | undefined;
    let soonerMs: number | undefined;
    cycleChanges = 0;
    const fail = (what: string, e: unknown) => {
      const code = e instanceof ApiError ? e.code : 'GW_SOURCE_UNREACHABLE';
      errors.set(what, `${code}: ${(e as Error).message}`.slice(0, 300));
      ctx!.logger.error({ code, resource: what, ...(e instanceof ApiError ? e.detail : {}) }, `${what} not read; tried again next cycle`);
      if (e instanceof ApiError && e.retryInMs !== undefined) serverMinMs = Math.max(serverMinMs ?? 0, Math.min(e.retryInMs, 86_400_000));
    };
    const bulkTypes = [...c.strategies].filter(([, st]) => 'kind' in st && st.kind === 'bulk').map(([r]) => r);
    if (bulkTypes.length) {
      try {
        if (bulkDue(readBulkCursor(s), bulkTypes, bulkOptions, clock.now())) {
          const n = await bulkRun(s, bulkTypes, bulkOptions);
          if (n === undefined) return 0;
          // an export still running on the server: the searches go on, and its status is asked again soon
          if (typeof n === 'object') soonerMs = n.pendingMs;
          else {
            errors.delete('bulk');
            notes.set('bulk.lastImported', n);
          }
        }
      } catch (e) {
        if (s.signal.aborted) return 0;
        notes.set('bulk.state', 'failed');
        fail('bulk', e);
      }
    }
    for (const [r, st] of c.strategies) {
      if (s.signal.aborted) return 0;
      if (!('kind' in st) || st.kind === 'bulk') continue;
      try {
        const n = await searchRun(s, r, st, strategyLabel(st), { overlapMs: o.overlapSeconds * 1000, dateWindowDays: o.dateWindowDays });
        if (n === undefined) return 0;
        notes.set(`${r}.lastRead`, n);
        // a search never returns what is gone: the history's DELETE entries are the deletes
        if (c.capabilities.resources[r]?.interactions.includes('history-type')) {
          const ran = JSON.parse(ctx!.cursor(searchCursorKey(o.id, r)) ?? '{}') as { since?: string };
          const gone = await historyRun(s, r, {
            overlapMs: o.overlapSeconds * 1000,
            firstSince: ran.since ?? new Date(clock.now()).toISOString(),
          });
          if (gone === undefined) return 0;
          if (gone > 0) notes.set(`${r}.lastDeleted`, gone);
        }
        errors.delete(r);
      } catch (e) {
        if (s.signal.aborted) return 0;
        fail(r, e);
      }
    }
    return pollWait(ctx, { configuredMs: o.pollIntervalMs, changes: cycleChanges, serverMinMs, soonerMs });
  }

  /** The loop never rejects: whatever a cycle throws (a damaged cursor, a closed outbox) is reported and tried again, the rest of the gateway runs on. */
  async function run(c: FhirConnection, signal: AbortSignal): Promise<void> {
    const s = syncContext(c, ctx!.logger, signal);
    let failures = 0;
    while (!signal.aborted) {
      notes.set('state', 'reading');
      let wait: number;
      try {
        wait = await cycle(c, s);
        failures = 0;
        errors.delete('cycle');
      } catch (e) {
        if (signal.aborted) break;
        failures++;
        wait = Math.min(o.pollIntervalMs, 1000 * 2 ** Math.min(failures, 6));
        const code = (e as { code?: unknown }).code;
        errors.set('cycle', `${typeof code === 'string' ? code : 'GW_SOURCE_UNREACHABLE'}: ${(e as Error).message}`.slice(0, 300));
        ctx!.logger.error({ code: typeof code === 'string' ? code : undefined, err: e }, 'FHIR sync cycle failed; tried again');
      }
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
      // the reason is the gateway's own text (codes, versions, setting names), never a server's
      state = {
        status: 'down',
        detail: { state: 'not connected (run `eyewear-gateway fhir check`)', error: code, reason: (e as Error).message.slice(0, 300) },
      };
      abort = undefined;
      throw Object.assign(new Error(`fhir ${o.id}: ${(e as Error).message}`, { cause: e }), { code });
    }
    for (const [r, st] of conn.strategies) if ('problem' in st) errors.set(r, `GW_API_REFUSED: ${st.problem}`);
    c.logger.info(
      { fhirVersion: conn.capabilities.fhirVersion, resources: o.resources.length, vendor: o.vendor },
      'connected to the FHIR server; reading',
    );
    state = { status: 'up', detail: {} };
    loop = run(conn, abort.signal);
  }

  return {
    id: o.id,
    profile,
    rowMapper,
    connect,
    unmapped: () => rowMapper.unmapped(),
    async start(c) {
      if (loop) return;
      // a second start while the first is connecting waits for it: one loop, ever
      starting ??= begin(c).finally(() => {
        starting = undefined;
      });
      return starting;
    },
    async stop() {
      // abort first: a start still connecting (its retries, a Retry-After) gives up at once
      abort?.abort(new Error('stopping'));
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
        vendor: profile.label,
        fhirVersion: conn.capabilities.fhirVersion,
        software: conn.capabilities.software,
        ...Object.fromEntries(notes),
      };
      for (const [r, st] of conn.strategies) {
        detail[`${r}.strategy`] = 'problem' in st ? 'none' : strategyLabel(st);
        detail[`${r}.searchParams`] = (conn.capabilities.resources[r]?.searchParams ?? []).join(',').slice(0, 200);
      }
      for (const [t, n] of Object.entries(rowMapper.unmapped())) detail[`unmapped.${t}`] = n;
      for (const [code, n] of outcomes) detail[`outcome.${code}`] = n;
      for (const [what, e] of errors) detail[`${what}.error`] = e;
      const q = quota?.stats();
      if (q) detail.callsToday = q.callsToday;
      // answers 429 since the start (each one waited out): the health monitor's throttling signal
      detail.throttled = conn.http.stats().throttled;
      const exp = conn.auth.expiresAt();
      if (exp) detail.tokenExpiresAt = new Date(exp).toISOString();
      return { status: errors.size ? 'degraded' : 'up', detail };
    },
  };
}
