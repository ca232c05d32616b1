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
import type { GatewayConfig } from '../../config/schema.ts';
import type { TimerHandle } from '../../gateway/clock.ts';
import type { Agent, AgentContext, AgentHealth, DiskSpace, SourceView } from '../contract.ts';
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
  action: 'restartSource';
  before: Evidence;
  after: Evidence;
  outcome: 'healed' | 'not-healed' | 'failed';
  /** Restarts of this subject in the hour up to and including this one. */
  usedInHour: number;
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

/** What a person must do about a source's error code (catalogue: AGENT_HEALTH_SOURCE_FAILING). */
export function sourceAdvice(code: string): string {
  if (code === 'EADDRINUSE') return 'another program holds its port: free the port or change it in the config';
  if (code === 'EACCES' || code === 'EPERM')
    return 'not allowed (a port below 1024, or a file not readable): change the port or the permissions';
  if (['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET'].includes(code))
    return 'the PMS server or database is down or unreachable: start it, check its address and the firewall (`eyewear-gateway db check` for a database)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'its host name does not resolve: check the host in the config and DNS';
  if (['28P01', 'ER_ACCESS_DENIED_ERROR', 'ELOGIN', '28000'].includes(code))
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

export function createHealthAgent(cfg: HealthConfig, id = 'health'): HealthAgent {
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
  const failingSince = new Map<string, number>();
  const budgets = new Map<string, RemedyBudget>();
  let sinkDownSince: number | undefined;
  /** When the outbox writer was seen restarted (one entry per restart), within the last hour. */
  let writerRestartTimes: number[] = [];
  let writerRestartsSeen: number | undefined;
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
    for (const m of [failingSince, budgets, arrivals]) for (const sid of m.keys()) if (!ids.has(sid)) m.delete(sid);
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
      const allowed = cfg.source.restartsPerHour > 0 ? b.check(now) : ({ ok: false, why: 'budget', until: now } as const);
      if (allowed.ok) toRestart.push(v.id);
      const used = b.usedInHour(now) + (allowed.ok ? 1 : 0);
      const next = allowed.ok
        ? 'restarting it now'
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
      if (quiet <= Math.max(cfg.silence.factor * usual, cfg.silence.minSilenceMs)) continue;
      const open = v.health.detail?.openConnections;
      raise(
        seen,
        'AGENT_HEALTH_SOURCE_SILENT',
        v.id,
        'warning',
        `source ${v.id} has sent nothing since ${iso(last)} (${Math.round(quiet / 60_000)} min; it usually sends every ${Math.round(usual / 1000)} s, the median of ${gaps.length} gaps)${open !== undefined ? `; ${open} connection(s) still open` : ''}: check the sending system (the PMS's interface engine and its outbound queue)`,
        {
          source: v.id,
          lastMessageAt: iso(last),
          silentForMinutes: Math.round(quiet / 60_000),
          medianGapSeconds: Math.round(usual / 1000),
          gaps: gaps.length,
          ...(open !== undefined ? { openConnections: Number(open) } : {}),
        },
      );
    }
  }

  function checkSink(now: number, seen: Set<string>): void {
    const s = ctx!.sink();
    // down takes a failure seen: a request/response sink (HTTPS) is "not connected" until its first
    // delivery, and an idle gateway has none to make
    if (s.connected || s.kind === 'none' || s.detail?.lastError === undefined || s.detail.lastError === '') {
      sinkDownSince = undefined;
      return;
    }
    sinkDownSince ??= now;
    if (now - sinkDownSince < cfg.sink.downAfterMs) return;
    const lastError = String(s.detail?.lastError ?? 'unknown');
    const st = ctx!.outboxStats();
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

  function checkOutboxWriter(now: number, seen: Set<string>): void {
    const st = ctx!.outboxStats();
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
    const seen = new Set<string>();
    // a disk that could not be read keeps its finding as it was
    if (disk) checkDisk(now, disk, seen);
    else if (active.has(keyOf('AGENT_HEALTH_DISK_FILLING', 'disk'))) seen.add(keyOf('AGENT_HEALTH_DISK_FILLING', 'disk'));
    const views = c.sources();
    const toRestart = checkSources(now, views, seen);
    checkSilence(now, views, seen);
    checkSink(now, seen);
    checkOutboxWriter(now, seen);
    clearGone(seen);
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

  const arrive = (adapter: string) => {
    if (!ctx) return;
    const now = ctx.clock.now();
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
