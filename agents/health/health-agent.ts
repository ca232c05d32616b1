/**
 * The health monitor: every `pollMs` (on the context's clock) it samples what the context shows —
 * free space on the data volume, each source's state and health, the sink's connectivity, and the
 * intakes it hears on the bus — and names the causes of the catalogue (catalogue.ts) it finds. A
 * finding is published once, updated silently while it lasts, published again only when its
 * severity changes, and cleared when its cause is gone. The one remedy it applies by itself is a
 * restart of one failing source, within a budget per hour and with back-off (budget.ts), each kept
 * in a bounded history with the state before and after. It never reaches into the gateway's parts:
 * only the context.
 */
import { availableParallelism, freemem, loadavg, totalmem } from 'node:os';
import type { GatewayConfig } from '../../config/schema.ts';
import type { TimerHandle } from '../../gateway/clock.ts';
import { LANES, type OutboxStats } from '../../gateway/outbox/outbox.ts';
import type { Agent, AgentContext, AgentHealth, DiskSpace, SinkView, SourceView } from '../contract.ts';
import { localClock, SLOT_MS, SLOTS_PER_DAY, type LocalSlot } from '../sync/local-time.ts';
import { createBudget, type RemedyBudget } from './budget.ts';
import { HealthCatalogue, type HealthCode } from './catalogue.ts';

export type HealthConfig = GatewayConfig['agents']['health'];
type Severity = 'warning' | 'error';
type Evidence = Record<string, string | number | boolean>;

export interface HealthFinding {
  code: HealthCode;
  subject: string;
  severity: Severity;
  summary: string;
  evidence: Evidence;
  firstSeen: string;
  lastSeen: string;
}

export interface RemedyRecord {
  at: string;
  code: HealthCode;
  subject: string;
  action: 'restartSource' | 'proposeConfigChange';
  before: Evidence;
  after: Evidence;
  outcome: 'healed' | 'not-healed' | 'failed' | 'proposed';
  /** Restarts of this subject in the hour up to and including this one. */
  usedInHour: number;
}

/** One sample of the host and of this process (all its threads). */
export interface HostSample {
  rssBytes: number;
  /** The PC's available memory (libuv: MemAvailable on Linux). */
  freeMemBytes: number;
  totalMemBytes: number;
  /** The 1-minute load average (0 on Windows, which has none). */
  load1: number;
  cores: number;
  /** CPU time this process has used, all threads, user + system. */
  processCpuMicros: number;
}

export const sampleHost = (): HostSample => {
  const cpu = process.cpuUsage();
  return {
    rssBytes: process.memoryUsage.rss(),
    freeMemBytes: freemem(),
    totalMemBytes: totalmem(),
    load1: loadavg()[0],
    cores: availableParallelism(),
    processCpuMicros: cpu.user + cpu.system,
  };
};

export interface HealthAgentOptions {
  id?: string;
  /** A clock no one can set, in ms (default: the context clock's `monotonic()`): a clock jump is the wall clock leaving it. */
  monotonicMs?: () => number;
  /** Samples the host and this process (default: node:os and process). */
  host?: () => HostSample;
}

export interface HealthAgent extends Agent {
  /** The poll under way, if any (tests wait for it after moving the clock). */
  settled(): Promise<void>;
  report(): Record<string, unknown>;
}

const MiB = 1024 * 1024;
const HOUR = 3_600_000;
/** Arrivals kept per source (the rhythm is a median over them). */
const MAX_ARRIVALS = 1000;
const MAX_DISK_SAMPLES = 1000;
const iso = (t: number) => new Date(t).toISOString();
const codeOf = (e: unknown) => String((e as NodeJS.ErrnoException | undefined)?.code ?? (e instanceof Error ? e.name : 'unknown'));

/** A query cancelled at a lock or a timeout: PostgreSQL, MariaDB (by name, or errno where mysql2 has none), SQL Server. */
const LOCK_CODES = [
  '57014',
  '55P03',
  '40P01',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_TIMEOUT',
  'ERRNO:1969',
  'ETIMEOUT',
  'EREQUEST:1222',
  'EREQUEST:1205',
];
/** A login refused, or a server that is not the pinned one: trying again cannot help, and repeated logins can lock the account. */
const LOGIN_CODES = ['ERR_SSH_AUTH', 'ERR_SSH_HOST_KEY', '28P01', '28000', 'ER_ACCESS_DENIED_ERROR', 'ELOGIN', '530', 'GW_API_AUTH_FAILED'];

/** What a person must do about a source's error code (catalogue: AGENT_HEALTH_SOURCE_FAILING). */
export function sourceAdvice(code: string): string {
  if (code === 'EADDRINUSE') return 'another program holds its port: free the port or change it in the config';
  if (code === 'EACCES' || code === 'EPERM')
    return 'not allowed (a port below 1024, or a file not readable): change the port or the permissions';
  if (['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'].includes(code))
    return 'the PMS server or database is down or unreachable: start it, check its address and the firewall (`eyewear-gateway db check` for a database)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'its host name does not resolve: check the host in the config and DNS';
  if (LOCK_CODES.includes(code))
    return 'a query waited on a lock or ran past its limit (the read-only connection gives up on a lock after lock_timeout, 2 s, and on any query after databases[].statementTimeoutMs): a lock held on a table the source reads, or a database too slow to answer; see who holds it (PostgreSQL: pg_locks and pg_stat_activity; MariaDB: SHOW PROCESSLIST; SQL Server: sp_who2)';
  if (code === 'ERR_SSH_AUTH')
    return 'the SFTP server refused the login, and its host key is still the pinned one (the same server): the password or key was probably changed on it; update sftp.password or sftp.privateKey in the config';
  if (code === 'ERR_SSH_HOST_KEY')
    return "the SFTP server's host key is not the pinned one: a different server answers, or its key was changed; check with the practice before updating sftp.hostKeySha256";
  if (['28P01', 'ER_ACCESS_DENIED_ERROR', 'ELOGIN', '28000', '530'].includes(code))
    return 'the login was refused: the password was probably changed; update it in the config';
  return 'see the log for this code and fix what it names';
}

/** What a person must do about the sink's last error (catalogue: AGENT_HEALTH_SINK_DOWN). */
export function sinkAdvice(code: string): string {
  if (code === 'ECONNREFUSED')
    return 'nothing listens at the configured broker/server URL: check `mqtt.url` (or `https.url`) and that the service is up';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the cloud host name does not resolve: check DNS and the internet link';
  if (['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'].includes(code))
    return 'no route to the cloud: check the internet link and the firewall (outbound port)';
  if (/cert|tls|ssl|self.signed|unable to verify/i.test(code)) return 'TLS refused: see the sink’s `lastErrorAction` in `/status`';
  if (/not authori[sz]ed|bad user|password/i.test(code)) return 'the broker refused our login or certificate: re-enrol the gateway';
  return 'see the sink’s `lastError` in `/status` and the log';
}

/** Least squares slope (y per x) of the points; undefined for fewer than two distinct x. */
function slopeOf(points: ReadonlyArray<{ t: number; free: number }>): number | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  let mx = 0;
  let my = 0;
  for (const p of points) {
    mx += p.t / n;
    my += p.free / n;
  }
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.t - mx) * (p.free - my);
    sxx += (p.t - mx) ** 2;
  }
  return sxx === 0 ? undefined : sxy / sxx;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function createHealthAgent(cfg: HealthConfig, opts: HealthAgentOptions = {}): HealthAgent {
  const id = opts.id ?? 'health';
  const monotonic = () => {
    const c = ctx!.clock;
    return opts.monotonicMs ? opts.monotonicMs() : c.monotonic ? c.monotonic() : c.now();
  };
  const host = opts.host ?? sampleHost;
  let ctx: AgentContext | undefined;
  let timer: TimerHandle | undefined;
  let running = false;
  let inFlight: Promise<void> | undefined;
  let polls = 0;
  let cpuMicros = 0;
  let lastCpuMicros = 0;
  let diskError: string | undefined;
  let lastDisk: (DiskSpace & { bytesPerHour?: number; hoursLeft?: number }) | undefined;
  let diskSamples: Array<{ t: number; free: number }> = [];
  const arrivals = new Map<string, number[]>();
  /** Per source: its `throttled` count at each poll of the last hour. */
  const throttleSamples = new Map<string, Array<{ t: number; n: number }>>();
  /** Per source: the last longer interval proposed (one a day), as it was proposed. */
  const throttleProposals = new Map<string, { at: number; path: string; from: number; value: number }>();
  /** Per source, per local day (`YYYY-MM-DD`, oldest first): the half hours of the week it sent in. */
  const sentSlots = new Map<string, Map<string, { weekday: number; slots: Set<number> }>>();
  let localZone: string | undefined;
  let localFn: ((t: number) => LocalSlot) | undefined;
  /** The practice's local half hour (the zone followed through reloads). */
  /** `gateway.timezone`, read at each poll (not at each intake: config() copies the whole config). */
  let zoneNow = '';
  const localAt = (t: number): LocalSlot => {
    const zone = zoneNow;
    if (!localFn || zone !== localZone) {
      localZone = zone;
      localFn = localClock(zone);
    }
    return localFn(t);
  };
  const failingSince = new Map<string, number>();
  const budgets = new Map<string, RemedyBudget>();
  let sinkDownSince: number | undefined;
  /** When the outbox writer was seen restarted (one entry per restart), within the last hour. */
  let writerRestartTimes: number[] = [];
  let writerRestartsSeen: number | undefined;
  /** The last poll's wall and monotonic times, and the process CPU then (for the share over a poll). */
  let lastTick: { wall: number; mono: number; cpu: number } | undefined;
  /** Each lane's oldest undelivered record and the dead letters at the last poll, and since when (monotonic) nothing was delivered. */
  let oldestWatch: { oldest: Array<number | null>; deadLetters: number; firstMono: number } | undefined;
  let jumps: Array<{ mono: number; at: number; byMs: number }> = [];
  let lastHost: (HostSample & { gatewayPercentOfCore?: number }) | undefined;
  /** Polls in a row over each threshold (memory and CPU, gateway and host). */
  const over = { rss: 0, hostMem: 0, cpu: 0, load: 0 };
  const active = new Map<string, HealthFinding>();
  const history: RemedyRecord[] = [];
  const counts = { raised: 0, cleared: 0, remedies: 0 };

  const keyOf = (code: HealthCode, subject: string) => `${code}|${subject}`;

  function raise(seen: Set<string>, code: HealthCode, subject: string, severity: Severity, summary: string, evidence: Evidence): void {
    const c = ctx!;
    const k = keyOf(code, subject);
    seen.add(k);
    const now = iso(c.clock.now());
    const f = active.get(k);
    if (f && f.severity === severity) {
      f.summary = summary;
      f.evidence = evidence;
      f.lastSeen = now;
      return;
    }
    active.set(k, { code, subject, severity, summary, evidence, firstSeen: f?.firstSeen ?? now, lastSeen: now });
    counts.raised++;
    c.logger[severity === 'error' ? 'error' : 'warn']({ code, subject, ...evidence }, summary);
    c.publishFinding({ code, severity, summary, subject });
  }

  function clearGone(seen: Set<string>): void {
    for (const [k, f] of active) {
      if (seen.has(k)) continue;
      active.delete(k);
      counts.cleared++;
      ctx!.logger.info(
        { code: f.code, subject: f.subject, firstSeen: f.firstSeen },
        `cleared: ${HealthCatalogue[f.code].title.toLowerCase()} (${f.subject}) no longer holds`,
      );
      ctx!.clearFinding(f.code, f.subject);
    }
  }

  function checkDisk(now: number, d: DiskSpace, seen: Set<string>): void {
    const last = diskSamples.at(-1);
    // space freed, or the clock moved back: the old trend says nothing about what comes next
    if (last && (d.freeBytes - last.free >= MiB || now < last.t)) diskSamples = [];
    diskSamples.push({ t: now, free: d.freeBytes });
    diskSamples = diskSamples.filter((s) => s.t >= now - cfg.disk.windowMs).slice(-MAX_DISK_SAMPLES);
    lastDisk = { ...d };
    const k = keyOf('AGENT_HEALTH_DISK_FILLING', 'disk');
    const span = now - diskSamples[0].t;
    const slope = diskSamples.length >= 3 && span >= cfg.disk.minSpanMs ? slopeOf(diskSamples) : undefined;
    const base = {
      freeBytes: d.freeBytes,
      reserveBytes: d.reserveBytes,
      samples: diskSamples.length,
      spanMinutes: Math.round(span / 60_000),
    };
    if (d.reserveBytes > 0 && d.freeBytes <= d.reserveBytes) {
      raise(
        seen,
        'AGENT_HEALTH_DISK_FILLING',
        'disk',
        'error',
        `the data disk is at its reserve (${(d.freeBytes / MiB).toFixed(1)} MiB free, reserve ${(d.reserveBytes / MiB).toFixed(1)} MiB): input is refused until space is freed on the data volume`,
        base,
      );
      return;
    }
    if (slope === undefined || slope >= 0) return;
    const bytesPerHour = Math.round(-slope * HOUR);
    const hoursLeft = (d.freeBytes - d.reserveBytes) / (-slope * HOUR);
    lastDisk.bytesPerHour = bytesPerHour;
    lastDisk.hoursLeft = Math.round(hoursLeft * 10) / 10;
    if (hoursLeft > cfg.disk.warnHours * (active.has(k) ? 1.25 : 1)) return;
    // an error steps back to a warning only with a margin, so a rate hovering at errorHours does not flap
    const wasError = active.get(k)?.severity === 'error';
    const severity: Severity = hoursLeft <= cfg.disk.errorHours * (wasError ? 1.25 : 1) ? 'error' : 'warning';
    raise(
      seen,
      'AGENT_HEALTH_DISK_FILLING',
      'disk',
      severity,
      `the data disk will reach its reserve in about ${lastDisk.hoursLeft} h at this rate (${(bytesPerHour / MiB).toFixed(1)} MiB/h, ${(d.freeBytes / MiB).toFixed(1)} MiB free over a reserve of ${(d.reserveBytes / MiB).toFixed(1)} MiB): find what fills the data volume and free space`,
      { ...base, bytesPerHour, hoursLeft: lastDisk.hoursLeft },
    );
  }

  /** The error code of a source that is failing now, or undefined. */
  function failure(v: SourceView): string | undefined {
    // 'starting' with an error: the supervisor's retry after a failed start, not a success yet
    if (v.state === 'failed' || (v.state === 'starting' && v.error !== undefined)) return v.error ?? 'unknown';
    const e = v.health.detail?.error;
    if (v.state === 'running' && v.health.status === 'down' && e !== undefined) return String(e);
    return undefined;
  }

  function budgetOf(sourceId: string): RemedyBudget {
    let b = budgets.get(sourceId);
    if (!b)
      budgets.set(
        sourceId,
        (b = createBudget({
          perHour: cfg.source.restartsPerHour,
          backoffInitialMs: cfg.source.backoffInitialMs,
          backoffMaxMs: cfg.source.backoffMaxMs,
        })),
      );
    return b;
  }

  const viewEvidence = (v: SourceView | undefined): Evidence =>
    v ? { state: v.state, status: v.health.status, ...(failure(v) ? { error: failure(v)! } : {}) } : { state: 'gone' };

  /** Sources failing long enough: raised, and the ones whose restart the budget allows now. */
  function checkSources(now: number, views: SourceView[], seen: Set<string>): string[] {
    const toRestart: string[] = [];
    // a source a reload removed leaves nothing behind
    const ids = new Set(views.map((v) => v.id));
    for (const m of [failingSince, budgets, arrivals, sentSlots, throttleSamples, throttleProposals])
      for (const sid of m.keys()) if (!ids.has(sid)) m.delete(sid);
    for (const v of views) {
      // a first start under way tells nothing yet (a retry after a failure still carries that failure's code)
      if (v.state === 'starting' && v.error === undefined) {
        const k = keyOf('AGENT_HEALTH_SOURCE_FAILING', v.id);
        if (active.has(k)) seen.add(k);
        continue;
      }
      const err = failure(v);
      if (err === undefined) {
        if (failingSince.delete(v.id)) budgets.get(v.id)?.reset();
        continue;
      }
      const since = failingSince.get(v.id) ?? now;
      failingSince.set(v.id, since);
      if (now - since < cfg.source.failingAfterMs) continue;
      const b = budgetOf(v.id);
      const login = LOGIN_CODES.includes(err);
      const allowed =
        cfg.source.restartsPerHour > 0 && !login ? b.check(now) : ({ ok: false, why: login ? 'login' : 'budget', until: now } as const);
      if (allowed.ok) toRestart.push(v.id);
      const used = b.usedInHour(now) + (allowed.ok ? 1 : 0);
      const next = allowed.ok
        ? 'restarting it now'
        : allowed.why === 'login'
          ? 'not restarted: the same login cannot succeed by trying again, and repeated attempts can lock the account'
          : allowed.why === 'backoff'
            ? `next restart at ${iso(allowed.until)}`
            : `restart budget spent (${used} of ${cfg.source.restartsPerHour} this hour)`;
      raise(
        seen,
        'AGENT_HEALTH_SOURCE_FAILING',
        v.id,
        'error',
        `source ${v.id} is ${v.state === 'failed' ? 'failing to start' : 'failing'} (${err}) since ${iso(since)}; ${next}; what to do: ${sourceAdvice(err)}`,
        { source: v.id, state: v.state, error: err, failingSince: iso(since), restarts: used, restartsPerHour: cfg.source.restartsPerHour },
      );
    }
    return toRestart;
  }

  async function restart(sourceId: string): Promise<void> {
    const c = ctx!;
    const now = c.clock.now();
    const b = budgetOf(sourceId);
    const before = viewEvidence(c.sources().find((s) => s.id === sourceId));
    b.use(now);
    let outcome: RemedyRecord['outcome'] = 'not-healed';
    let failedCode: string | undefined;
    try {
      await c.restartSource(sourceId);
    } catch (e) {
      outcome = 'failed';
      failedCode = codeOf(e);
    }
    const v = c.sources().find((s) => s.id === sourceId);
    const after = { ...viewEvidence(v), ...(failedCode ? { restartError: failedCode } : {}) };
    if (outcome !== 'failed' && v && failure(v) === undefined && v.state === 'running') outcome = 'healed';
    const rec: RemedyRecord = {
      at: iso(now),
      code: 'AGENT_HEALTH_SOURCE_FAILING',
      subject: sourceId,
      action: 'restartSource',
      before,
      after,
      outcome,
      usedInHour: b.usedInHour(now),
    };
    history.push(rec);
    while (history.length > cfg.historySize) history.shift();
    counts.remedies++;
    c.logger[outcome === 'healed' ? 'info' : 'warn'](
      {
        code: rec.code,
        subject: sourceId,
        outcome,
        before: JSON.stringify(before),
        after: JSON.stringify(after),
        usedInHour: rec.usedInHour,
      },
      `restarted source ${sourceId}: ${outcome}`,
    );
    if (outcome === 'healed') {
      failingSince.delete(sourceId);
      b.reset();
      const k = keyOf('AGENT_HEALTH_SOURCE_FAILING', sourceId);
      if (active.has(k)) clearGone(new Set([...active.keys()].filter((x) => x !== k)));
    }
  }

  function checkSilence(now: number, views: SourceView[], seen: Set<string>): void {
    for (const v of views) {
      if (!cfg.silence.sources.includes(v.id)) continue;
      const ts = arrivals.get(v.id);
      if (v.state !== 'running' || !ts || ts.length < 2) continue;
      const gaps = ts.slice(1).map((t, i) => t - ts[i]);
      if (gaps.length < cfg.silence.minGaps) continue;
      const usual = median(gaps);
      const last = ts[ts.length - 1];
      const quiet = now - last;
      const limit = Math.max(cfg.silence.factor * usual, cfg.silence.minSilenceMs);
      if (quiet <= limit) continue;
      // outside the hours it sent in on earlier days (closed, at night) quiet is its habit: nothing new is
      // raised, and a finding raised in its hours stays until its next message; in its hours the quiet
      // counts from when they began today (the first message of the morning may come a little late)
      const h = habitAt(v.id, now);
      const habit = h.habit;
      const k = keyOf('AGENT_HEALTH_SOURCE_SILENT', v.id);
      if (h.habit === 'no' || (h.habit === 'yes' && now - Math.max(last, h.since) <= limit)) {
        if (active.has(k)) seen.add(k);
        continue;
      }
      const open = v.health.detail?.openConnections;
      raise(
        seen,
        'AGENT_HEALTH_SOURCE_SILENT',
        v.id,
        'warning',
        `source ${v.id} has sent nothing since ${iso(last)} (${Math.round(quiet / 60_000)} min; it usually sends every ${Math.round(usual / 1000)} s, the median of ${gaps.length} gaps${habit === 'yes' ? ', and at this time on earlier days' : ''})${open !== undefined ? `; ${open} connection(s) still open` : ''}: check the sending system (the PMS's interface engine and its outbound queue)`,
        {
          source: v.id,
          lastMessageAt: iso(last),
          silentForMinutes: Math.round(quiet / 60_000),
          medianGapSeconds: Math.round(usual / 1000),
          gaps: gaps.length,
          hoursLearned: habit !== 'unknown',
          ...(open !== undefined ? { openConnections: Number(open) } : {}),
        },
      );
    }
  }

  /**
   * Sources answered 429 (too many requests) at least `perHour` times in the last hour, from their
   * `throttled` count. The remedy is a proposal, at most one a source a day: a longer poll interval
   * (applied only when a person or the cloud accepts it through the config reload).
   */
  function checkThrottle(now: number, views: SourceView[], seen: Set<string>): void {
    const cfgNow = ctx!.config();
    for (const v of views) {
      const n = v.health.detail?.throttled;
      if (typeof n !== 'number') {
        throttleSamples.delete(v.id);
        continue;
      }
      let xs = throttleSamples.get(v.id);
      if (!xs) throttleSamples.set(v.id, (xs = []));
      // a restart counts from 0 again: what came before is no longer comparable
      if (xs.length && n < xs[xs.length - 1].n) xs.length = 0;
      xs.push({ t: now, n });
      while (xs.length > 1 && xs[1].t <= now - HOUR) xs.shift();
      const inHour = n - xs[0].n;
      const k = keyOf('AGENT_HEALTH_SOURCE_THROTTLED', v.id);
      // raised at perHour, kept until the hour's count falls under half of it
      if (inHour < (active.has(k) ? Math.ceil(cfg.throttle.perHour / 2) : cfg.throttle.perHour)) continue;
      const where = [
        ['fhir', cfgNow.fhir.findIndex((f) => f.id === v.id)],
        ['apis', cfgNow.apis.findIndex((a) => a.id === v.id)],
      ].find(([, i]) => (i as number) >= 0) as [string, number] | undefined;
      const current = where ? (cfgNow[where[0] as 'fhir' | 'apis'][where[1]] as { pollIntervalMs: number }).pollIntervalMs : undefined;
      let proposed = '';
      const last = throttleProposals.get(v.id);
      if (where && current !== undefined && (last === undefined || now - last.at >= 24 * HOUR)) {
        const path = `${where[0]}[${where[1]}].pollIntervalMs`;
        const value = Math.min(current * 2, 86_400_000);
        throttleProposals.set(v.id, { at: now, path, from: current, value });
        const id = ctx!.proposeConfigChange({
          path,
          value,
          reason: `source ${v.id} was answered 429 (too many requests) ${inHour} times in the last hour: reading half as often keeps it inside the server's limit`,
        });
        history.push({
          at: iso(now),
          code: 'AGENT_HEALTH_SOURCE_THROTTLED',
          subject: v.id,
          action: 'proposeConfigChange',
          before: { pollIntervalMs: current, throttledInHour: inHour },
          after: { proposed: path, value, proposal: id },
          outcome: 'proposed',
          usedInHour: 1,
        });
        while (history.length > cfg.historySize) history.shift();
        counts.remedies++;
      }
      const p = throttleProposals.get(v.id);
      if (p)
        proposed =
          current === p.value
            ? `; the longer interval proposed at ${iso(p.at)} (${p.path} ${p.from} → ${p.value} ms) is in effect`
            : `; proposed at ${iso(p.at)}: ${p.path} ${p.from} → ${p.value} ms, applied once accepted (/status agents.proposals)`;
      raise(
        seen,
        'AGENT_HEALTH_SOURCE_THROTTLED',
        v.id,
        'warning',
        `source ${v.id} was answered 429 (too many requests) ${inHour} times in the last hour: the server limits how often the gateway may ask; each wait is honoured and nothing is lost, but its reads lag${proposed}; what to do: accept the longer interval, or ask the vendor for a higher limit and set its rateLimit in the config`,
        { source: v.id, throttledInHour: inHour, throttled: n, ...(current !== undefined ? { pollIntervalMs: current } : {}) },
      );
    }
  }

  /** Database streams that sort their whole table for every page (`<stream>.needsIndex` in the source's health). */
  function checkIndexes(views: SourceView[], seen: Set<string>): void {
    for (const v of views) {
      for (const [k, val] of Object.entries(v.health.detail ?? {})) {
        if (!k.endsWith('.needsIndex')) continue;
        const stream = k.slice(0, -'.needsIndex'.length);
        const m = /^(\S+) \((.+)\), (\d+) rows$/.exec(String(val));
        const [table, columns, rows] = m ? [m[1], m[2], Number(m[3])] : [String(val), '', Number.NaN];
        raise(
          seen,
          'AGENT_HEALTH_DB_INDEX_MISSING',
          `${v.id}/${stream}`,
          'warning',
          `stream ${stream} of source ${v.id} sorts the whole table ${table}${Number.isFinite(rows) ? ` (${rows} rows)` : ''} for every page it reads: the index on its watermark (${columns || 'see db check'}) is missing, dropped perhaps by a PMS upgrade; each poll loads the PMS's database: ask its administrator to create an index on ${table} (${columns || 'the columns db check names'}), then it is seen within the hour`,
          { source: v.id, stream, table, columns, ...(Number.isFinite(rows) ? { rows } : {}) },
        );
      }
    }
  }

  function checkSink(now: number, s: SinkView, st: OutboxStats, seen: Set<string>): void {
    // down takes a failure seen: a request/response sink (HTTPS) is "not connected" until its first
    // delivery, and an idle gateway has none to make
    if (s.connected || s.kind === 'none' || s.detail?.lastError === undefined || s.detail.lastError === '') {
      sinkDownSince = undefined;
      return;
    }
    sinkDownSince ??= now;
    if (now - sinkDownSince < cfg.sink.downAfterMs) return;
    const lastError = String(s.detail?.lastError ?? 'unknown');
    const oldestAgeSeconds = st.oldestCreatedAt === null ? 0 : Math.round((now - st.oldestCreatedAt) / 1000);
    // every record not yet delivered: waiting its turn, in flight, or waiting for a retry
    const undelivered = st.pending + st.inFlight + st.waitingRetry;
    raise(
      seen,
      'AGENT_HEALTH_SINK_DOWN',
      s.kind,
      'error',
      `the ${s.kind} sink has been disconnected since ${iso(sinkDownSince)} (${lastError}); ${undelivered} record(s) wait in the outbox, nothing is lost; what to do: ${sinkAdvice(lastError)}`,
      { sink: s.kind, lastError, downSince: iso(sinkDownSince), undelivered, oldestAgeSeconds },
    );
  }

  function checkOutboxWriter(now: number, st: OutboxStats, seen: Set<string>): void {
    const total = st.writerRestarts;
    if (total === undefined) return;
    // the count is per open: one lower than seen means the outbox was opened again
    const rise = writerRestartsSeen === undefined || total < writerRestartsSeen ? 0 : total - writerRestartsSeen;
    writerRestartsSeen = total;
    for (let i = 0; i < rise; i++) writerRestartTimes.push(now);
    writerRestartTimes = writerRestartTimes.filter((t) => t > now - HOUR && t <= now);
    const n = writerRestartTimes.length;
    if (n < cfg.outbox.writerRestartsPerHour) return;
    raise(
      seen,
      'AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE',
      'outbox',
      'error',
      `the outbox writer thread died and was restarted ${n} times in the last hour (GW_OUTBOX_IO; input is refused while it restarts, nothing committed is lost): check the system log for I/O errors on the data disk or memory pressure`,
      { restartsInHour: n, writerRestarts: total, writer: st.writer ?? 'running' },
    );
  }

  /**
   * The wall clock against the monotonic one since the last poll: a difference past `jumpMs` is a
   * jump. The learned times are moved by it, so the jump is not read as a silence or a disk trend.
   */
  function checkClock(now: number, mono: number, seen: Set<string>): void {
    const prev = lastTick;
    if (prev) {
      const byMs = Math.round(now - prev.wall - (mono - prev.mono));
      if (Math.abs(byMs) >= cfg.clock.jumpMs) {
        jumps.push({ mono, at: now, byMs });
        for (const ts of arrivals.values()) for (let i = 0; i < ts.length; i++) ts[i] += byMs;
        for (const x of diskSamples) x.t += byMs;
        for (const [k, t] of failingSince) failingSince.set(k, t + byMs);
        if (sinkDownSince !== undefined) sinkDownSince += byMs;
        writerRestartTimes = writerRestartTimes.map((t) => t + byMs);
        ctx!.logger.warn({ code: 'AGENT_HEALTH_CLOCK_JUMPED', byMs, from: iso(prev.wall), to: iso(now) }, 'the system clock jumped');
      }
    }
    jumps = jumps.filter((j) => mono - j.mono < cfg.clock.showForMs).slice(-100);
    const last = jumps.at(-1);
    if (!last) return;
    // the monotonic clock stops while the machine sleeps, so a forward jump may be a sleep as well
    const dir = last.byMs > 0 ? 'forward (set by a person or a time service, or the machine was asleep)' : 'back';
    const size = Math.abs(last.byMs);
    const human =
      size >= 3_600_000
        ? `${Math.floor(size / 3_600_000)} h ${Math.round((size % 3_600_000) / 60_000)} min`
        : size >= 60_000
          ? `${Math.round(size / 60_000)} min`
          : `${Math.round(size / 1000)} s`;
    raise(
      seen,
      'AGENT_HEALTH_CLOCK_JUMPED',
      'clock',
      'warning',
      `the system clock jumped ${dir} by ${human} (wall clock now ${iso(last.at)})${jumps.length > 1 ? `, ${jumps.length} jumps within ${Math.round(cfg.clock.showForMs / 60_000)} min` : ''}: check the time service (chrony or systemd-timesyncd, w32time on Windows) and run \`eyewear-gateway doctor\`, whose clock check compares with the cloud`,
      { byMs: last.byMs, at: iso(last.at), jumps: jumps.length },
    );
  }

  /** Memory and CPU, the gateway's own and the PC's, each over its threshold for `sustainPolls` polls. */
  function checkHost(h: HostSample, mono: number, seen: Set<string>): void {
    const prev = lastTick;
    const share = prev && mono > prev.mono ? ((h.processCpuMicros - prev.cpu) / 1000 / (mono - prev.mono)) * 100 : undefined;
    lastHost = { ...h, ...(share !== undefined ? { gatewayPercentOfCore: Math.round(share) } : {}) };
    const MiBf = (b: number) => Math.round(b / MiB);
    const freePercent = h.totalMemBytes > 0 ? (100 * h.freeMemBytes) / h.totalMemBytes : 100;
    const loadPerCore = h.cores > 0 ? h.load1 / h.cores : 0;
    // over the threshold counts up; back under it (with a 10% margin once a finding is active) counts down to zero
    const track = (k: keyof typeof over, code: HealthCode, subject: string, isOver: boolean, clearUnder: boolean) => {
      const on = active.has(keyOf(code, subject));
      over[k] = isOver ? over[k] + 1 : on && !clearUnder ? over[k] : 0;
      return over[k] >= (code === 'AGENT_HEALTH_CPU_BUSY' ? cfg.cpu.sustainPolls : cfg.memory.sustainPolls);
    };
    const rssLimit = cfg.memory.rssWarnMiB * MiB;
    if (track('rss', 'AGENT_HEALTH_MEMORY_HIGH', 'gateway', h.rssBytes > rssLimit, h.rssBytes < rssLimit * 0.9))
      raise(
        seen,
        'AGENT_HEALTH_MEMORY_HIGH',
        'gateway',
        'warning',
        `the gateway holds ${MiBf(h.rssBytes)} MiB of memory (over ${cfg.memory.rssWarnMiB} MiB for ${over.rss} polls): see what it is doing in \`eyewear-gateway status\` (a large import or backlog), and tell the cloud team with GET /agents/health; a service restart gives it back`,
        { rssMiB: MiBf(h.rssBytes), rssWarnMiB: cfg.memory.rssWarnMiB, polls: over.rss },
      );
    const freeLimit = cfg.memory.hostFreeWarnPercent;
    if (track('hostMem', 'AGENT_HEALTH_MEMORY_HIGH', 'host', freePercent < freeLimit, freePercent > freeLimit * 1.1))
      raise(
        seen,
        'AGENT_HEALTH_MEMORY_HIGH',
        'host',
        'warning',
        `the PC is short of memory: ${MiBf(h.freeMemBytes)} MiB available of ${MiBf(h.totalMemBytes)} (${freePercent.toFixed(1)}%, under ${freeLimit}% for ${over.hostMem} polls), ${MiBf(h.rssBytes)} MiB of it the gateway's: close what else uses memory on the PC, or add memory`,
        {
          freeMiB: MiBf(h.freeMemBytes),
          totalMiB: MiBf(h.totalMemBytes),
          freePercent: Math.round(freePercent * 10) / 10,
          rssMiB: MiBf(h.rssBytes),
          polls: over.hostMem,
        },
      );
    const cpuLimit = cfg.cpu.gatewayWarnPercent;
    if (share !== undefined && track('cpu', 'AGENT_HEALTH_CPU_BUSY', 'gateway', share > cpuLimit, share < cpuLimit * 0.9))
      raise(
        seen,
        'AGENT_HEALTH_CPU_BUSY',
        'gateway',
        'warning',
        `the gateway has used ${Math.round(share)}% of a CPU core (over ${cpuLimit}% for ${over.cpu} polls): a large first load or backlog takes CPU for a while (its progress is in \`eyewear-gateway status\`); if it lasts with nothing to import, tell the cloud team`,
        { gatewayPercentOfCore: Math.round(share), polls: over.cpu, cores: h.cores },
      );
    const loadLimit = cfg.cpu.hostLoadPerCore;
    if (track('load', 'AGENT_HEALTH_CPU_BUSY', 'host', loadPerCore > loadLimit, loadPerCore < loadLimit * 0.9))
      raise(
        seen,
        'AGENT_HEALTH_CPU_BUSY',
        'host',
        'warning',
        `the PC is overloaded: a load of ${loadPerCore.toFixed(2)} per core over ${h.cores} core(s) (over ${loadLimit} for ${over.load} polls)${share !== undefined ? `, ${Math.round(share)}% of a core the gateway's` : ''}: other programs load the PC, and the PMS may answer slowly too`,
        {
          loadPerCore: Math.round(loadPerCore * 100) / 100,
          cores: h.cores,
          polls: over.load,
          ...(share !== undefined ? { gatewayPercentOfCore: Math.round(share) } : {}),
        },
      );
  }

  /** The enrolled device certificate, as the sink shows it (its `identity*` detail fields). */
  function checkCertificate(now: number, detail: Record<string, string | number | boolean> | undefined, seen: Set<string>): void {
    const state = detail?.identityState;
    if (typeof state !== 'string') return;
    const notAfter = Date.parse(String(detail!.identityNotAfter));
    const renewAt = Date.parse(String(detail!.identityRenewAt));
    const days = (notAfter - now) / 86_400_000;
    const daysLeft = Number.isFinite(notAfter) ? Math.round(days * 10) / 10 : Number.NaN;
    const serial = String(detail!.identitySerial ?? '');
    const lastRenewalError = detail!.identityLastRenewalError === undefined ? undefined : String(detail!.identityLastRenewalError);
    const ev: Evidence = {
      serial,
      state,
      notAfter: String(detail!.identityNotAfter),
      renewAt: String(detail!.identityRenewAt),
      ...(Number.isFinite(daysLeft) ? { daysLeft } : {}),
      ...(lastRenewalError ? { lastRenewalError } : {}),
      ...(detail!.identityCode !== undefined ? { code: String(detail!.identityCode) } : {}),
    };
    if (state === 'expired' || state === 'revoked' || state === 'damaged' || (Number.isFinite(notAfter) && now >= notAfter)) {
      const action = detail!.identityAction ?? 're-enrol: eyewear-gateway enrol CODE --cloud URL --force';
      raise(
        seen,
        'AGENT_HEALTH_CERT_EXPIRING',
        'certificate',
        'error',
        `the device certificate ${serial} is ${state === 'valid' || state === 'renewing' ? 'expired' : state}${detail!.identityCode ? ` (${detail!.identityCode})` : ''}: the broker refuses this gateway and records wait in the outbox; what to do: ${action}`,
        ev,
      );
      return;
    }
    if (!Number.isFinite(notAfter) || !Number.isFinite(renewAt)) return;
    const renewing = now >= renewAt;
    const overdue = now - renewAt >= cfg.certificate.overdueMs;
    // a renewal due is under way or about to be: a finding only once one failed, or it is overdue
    if (!renewing || (!lastRenewalError && !overdue)) return;
    if (!overdue && days > cfg.certificate.warnDays) return;
    const severity: Severity = days <= cfg.certificate.errorDays ? 'error' : 'warning';
    const left = notAfter - now;
    const inWords =
      left >= 2 * 86_400_000
        ? `${Math.floor(days)} days`
        : left >= HOUR
          ? `${Math.round(left / HOUR)} h`
          : `${Math.max(1, Math.round(left / 60_000))} min`;
    raise(
      seen,
      'AGENT_HEALTH_CERT_EXPIRING',
      'certificate',
      severity,
      `the device certificate ${serial} expires in ${inWords} (${ev.notAfter}) and has not been renewed (due since ${ev.renewAt}${lastRenewalError ? `; last renewal failed: ${lastRenewalError}` : ''}); it retries every 10 minutes: restore the link to the cloud's enrolment endpoint before it runs out, or re-enrol`,
      ev,
    );
  }

  /**
   * The same oldest record still undelivered for `stuckAfterMs` (monotonic time since it was first
   * seen the oldest, so neither a clock jump nor a backlog found at start reads as stuck at once)
   * while the sink is connected (a down sink is its own finding).
   */
  function checkBacklog(now: number, mono: number, s: SinkView, st: OutboxStats, seen: Set<string>): void {
    if (!s.connected || st.oldestCreatedAt === null) {
      oldestWatch = undefined;
      return;
    }
    const age = now - st.oldestCreatedAt;
    // progress: a lane's oldest record left it (delivered), so its oldest moved later or it emptied; a
    // record dead-lettered is no delivery, and a record arriving in an empty lane is none either.
    // Without progress for stuckAfterMs the outbox is stuck; a long backlog that drains is not.
    const oldest = st.lanes ? LANES.map((l) => st.lanes![l].oldestCreatedAt) : [st.oldestCreatedAt];
    const prev = oldestWatch;
    const moved = prev !== undefined && oldest.some((t, i) => prev.oldest[i] !== null && (t === null || t > prev.oldest[i]!));
    const progress = moved && st.deadLetters <= prev.deadLetters;
    oldestWatch = { oldest, deadLetters: st.deadLetters, firstMono: prev === undefined || progress ? mono : prev.firstMono };
    const waited = mono - oldestWatch.firstMono;
    const k = keyOf('AGENT_HEALTH_OUTBOX_STUCK', 'outbox');
    if (waited < cfg.outbox.stuckAfterMs) return;
    const wasError = active.get(k)?.severity === 'error';
    const severity: Severity = waited >= cfg.outbox.stuckAfterMs * (wasError ? 3.5 : 4) ? 'error' : 'warning';
    const undelivered = st.pending + st.inFlight + st.waitingRetry;
    raise(
      seen,
      'AGENT_HEALTH_OUTBOX_STUCK',
      'outbox',
      severity,
      `${undelivered} record(s) wait in the outbox, the oldest undelivered for ${Math.round(waited / 60_000)} min, though the ${s.kind} sink is connected (${st.waitingRetry} waiting for a retry): the cloud is not acknowledging them; see the relay's and the sink's last error in \`eyewear-gateway status\`, and tell the cloud team the gateway id if it lasts (nothing is lost)`,
      {
        undelivered,
        waitingRetry: st.waitingRetry,
        inFlight: st.inFlight,
        oldestAgeSeconds: Math.round(age / 1000),
        waitedSeconds: Math.round(waited / 1000),
        deadLetters: st.deadLetters,
        sink: s.kind,
      },
    );
  }

  async function poll(): Promise<void> {
    const c = ctx!;
    let disk: DiskSpace | undefined;
    try {
      disk = await c.diskSpace();
      if (diskError) c.logger.info('free disk space readable again');
      diskError = undefined;
    } catch (e) {
      if (!diskError) c.logger.warn({ cause: codeOf(e) }, 'free disk space could not be read; the disk trend waits');
      diskError = codeOf(e);
    }
    if (!running) return;
    // the CPU the monitor's own work takes per poll, on this thread only (not the outbox writer's;
    // statfs itself runs on libuv's thread pool: a few µs, test/bench/health-bench.ts)
    const cpu0 = process.threadCpuUsage();
    const now = c.clock.now();
    const mono = monotonic();
    const seen = new Set<string>();
    zoneNow = c.config().gateway.timezone;
    checkClock(now, mono, seen);
    let h: HostSample | undefined;
    try {
      h = host();
      checkHost(h, mono, seen);
    } catch (e) {
      c.logger.warn({ cause: codeOf(e) }, 'host figures could not be read');
    }
    // a disk that could not be read keeps its finding as it was
    if (disk) checkDisk(now, disk, seen);
    else if (active.has(keyOf('AGENT_HEALTH_DISK_FILLING', 'disk'))) seen.add(keyOf('AGENT_HEALTH_DISK_FILLING', 'disk'));
    const views = c.sources();
    const toRestart = checkSources(now, views, seen);
    checkSilence(now, views, seen);
    checkThrottle(now, views, seen);
    checkIndexes(views, seen);
    // each read once a poll (outbox stats are counted from the writer's figures, the sink's from its client)
    const sink = c.sink();
    const st = c.outboxStats();
    checkSink(now, sink, st, seen);
    checkOutboxWriter(now, st, seen);
    checkBacklog(now, mono, sink, st, seen);
    checkCertificate(now, sink.detail, seen);
    clearGone(seen);
    lastTick = { wall: now, mono, cpu: h?.processCpuMicros ?? lastTick?.cpu ?? 0 };
    const used = process.threadCpuUsage(cpu0);
    lastCpuMicros = used.user + used.system;
    cpuMicros += lastCpuMicros;
    polls++;
    for (const sid of toRestart) if (running) await restart(sid);
  }

  function arm(): void {
    if (!running || !ctx) return;
    timer = ctx.clock.setTimeout(
      () => {
        timer = undefined;
        inFlight = poll()
          .catch((e: unknown) => ctx?.logger.error({ err: e }, 'health poll failed'))
          .finally(() => {
            inFlight = undefined;
            arm();
          });
      },
      cfg.pollMs,
      { unref: true },
    );
  }

  /**
   * Whether a source sent in the local half hour holding `t` on other days: from the same weekday
   * once one such earlier day is known, else from the same half hour of any earlier day; undefined
   * before any earlier day (the first day after a start).
   */
  function sentAt(sourceId: string, t: number, today: string): boolean | undefined {
    const days = sentSlots.get(sourceId);
    if (!days) return undefined;
    const here = localAt(t);
    const earlier = [...days].filter(([day]) => day !== today);
    if (!earlier.length) return undefined;
    const weekday = Math.floor(here.bucket / SLOTS_PER_DAY);
    const sameWeekday = earlier.filter(([, x]) => x.weekday === weekday);
    if (sameWeekday.length) return sameWeekday.some(([, x]) => x.slots.has(here.bucket));
    const ofDay = here.bucket % SLOTS_PER_DAY;
    return earlier.some(([, x]) => [...x.slots].some((b) => b % SLOTS_PER_DAY === ofDay));
  }

  /** Its hours: a half hour it sent in, or one between two it sent in (a feed sending at :45 has the :00 half hours too). */
  const habitual = (sourceId: string, t: number, today: string) =>
    sentAt(sourceId, t, today) === true || (sentAt(sourceId, t - SLOT_MS, today) === true && sentAt(sourceId, t + SLOT_MS, today) === true);

  /**
   * `yes` with the start of the run of its hours that `now` is in (quiet before that is the night's,
   * not a silence), `no` outside its hours, `unknown` before any earlier day is known.
   */
  function habitAt(sourceId: string, now: number): { habit: 'yes'; since: number } | { habit: 'no' | 'unknown' } {
    // "earlier days" are the days before today: today's own arrivals say nothing of its habit
    const here = localAt(now);
    if (sentAt(sourceId, now, here.dayKey) === undefined) return { habit: 'unknown' };
    if (!habitual(sourceId, now, here.dayKey)) return { habit: 'no' };
    let since = now + here.msToNextSlot - SLOT_MS;
    for (let k = 0; k < 2 * SLOTS_PER_DAY && habitual(sourceId, since - SLOT_MS, here.dayKey); k++) since -= SLOT_MS;
    return { habit: 'yes', since };
  }

  const arrive = (adapter: string) => {
    if (!ctx) return;
    const now = ctx.clock.now();
    const here = localAt(now);
    let days = sentSlots.get(adapter);
    if (!days) sentSlots.set(adapter, (days = new Map()));
    let day = days.get(here.dayKey);
    if (!day) {
      days.set(here.dayKey, (day = { weekday: Math.floor(here.bucket / SLOTS_PER_DAY), slots: new Set() }));
      // five weeks of habits: each weekday seen a few times
      while (days.size > 35) days.delete(days.keys().next().value as string);
    }
    day.slots.add(here.bucket);
    let ts = arrivals.get(adapter);
    if (!ts) arrivals.set(adapter, (ts = []));
    // the clock moved back: gaps across the jump would be negative, so the rhythm is learned again
    if (ts.length > 0 && now < ts[ts.length - 1]) ts.length = 0;
    ts.push(now);
    // the rhythm is learned from the arrivals within the lookback before the last one
    while (ts.length > MAX_ARRIVALS || (ts.length > 0 && ts[0] < now - cfg.silence.lookbackMs)) ts.shift();
    const k = keyOf('AGENT_HEALTH_SOURCE_SILENT', adapter);
    if (active.has(k)) clearGone(new Set([...active.keys()].filter((x) => x !== k)));
  };

  return {
    id,
    async start(c) {
      ctx = c;
      running = true;
      zoneNow = c.config().gateway.timezone;
      for (const name of ['intake.accepted', 'intake.duplicate', 'intake.ignored', 'intake.rejected'] as const)
        c.events.on(name, (e) => arrive(e.adapter));
      inFlight = poll().finally(() => {
        inFlight = undefined;
      });
      await inFlight;
      arm();
    },
    async stop() {
      running = false;
      ctx?.clock.clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
    settled: async () => {
      await inFlight;
    },
    health(): AgentHealth {
      return {
        status: diskError ? 'degraded' : 'up',
        detail: {
          polls,
          activeFindings: active.size,
          remedies: counts.remedies,
          cpuMicrosPerPoll: polls ? Math.round(cpuMicros / polls) : 0,
          ...(diskError ? { diskError } : {}),
        },
      };
    },
    report() {
      const now = ctx?.clock.now() ?? 0;
      return {
        polls,
        pollMs: cfg.pollMs,
        cpu: { microsTotal: cpuMicros, microsPerPoll: polls ? Math.round(cpuMicros / polls) : 0, lastPollMicros: lastCpuMicros },
        counts: { ...counts },
        disk: lastDisk ? { ...lastDisk, samples: diskSamples.length } : { error: diskError ?? 'not sampled yet' },
        host: lastHost
          ? {
              rssMiB: Math.round(lastHost.rssBytes / MiB),
              freeMiB: Math.round(lastHost.freeMemBytes / MiB),
              totalMiB: Math.round(lastHost.totalMemBytes / MiB),
              load1: Math.round(lastHost.load1 * 100) / 100,
              cores: lastHost.cores,
              ...(lastHost.gatewayPercentOfCore !== undefined ? { gatewayPercentOfCore: lastHost.gatewayPercentOfCore } : {}),
            }
          : { error: 'not sampled yet' },
        clockJumps: jumps.map((j) => ({ at: iso(j.at), byMs: j.byMs })),
        sources: [...new Set([...arrivals.keys(), ...failingSince.keys(), ...budgets.keys()])].map((sid) => {
          const ts = arrivals.get(sid) ?? [];
          const gaps = ts.slice(1).map((t, i) => t - ts[i]);
          return {
            id: sid,
            ...(ts.length ? { lastMessageAt: iso(ts[ts.length - 1]) } : {}),
            gaps: gaps.length,
            ...(gaps.length >= cfg.silence.minGaps ? { medianGapSeconds: Math.round(median(gaps) / 1000) } : {}),
            ...(failingSince.has(sid) ? { failingSince: iso(failingSince.get(sid)!) } : {}),
            restartsInHour: budgets.get(sid)?.usedInHour(now) ?? 0,
          };
        }),
        sinkDownSince: sinkDownSince === undefined ? null : iso(sinkDownSince),
        findings: [...active.values()],
        remedies: [...history],
      };
    },
  };
}
