/**
 * What `/status`, `/ready` and `/metrics` report, composed from the components' own health and
 * the metrics: ids, counts and ages only. Also the outbox-full alert: raised when the outbox
 * refuses input, cleared once delivery brings it under 90% of its cap; and what a start reports
 * (which listeners and sources run, which did not and why), so the banner, `/ready` and `status`
 * say the same thing.
 */
import { resolve } from 'node:path';
import type { AlertBoard } from './alerts.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { SourceAdapter } from '../adapters/contracts.ts';
import type { Clock } from './clock.ts';
import type { EventBus } from './event-bus.ts';
import type { Metrics } from './metrics.ts';
import type { DiskState } from './outbox/disk-guard.ts';
import type { OutboxLifecycle, RecordQueue } from './outbox/outbox.ts';
import type { RelayWorker } from './relay/relay-worker.ts';
import type { Sink } from './sinks/sink.ts';

export interface StatusSources {
  config: GatewayConfig;
  clock: Clock;
  version: string;
  outbox: Pick<RecordQueue, 'stats'> & Pick<OutboxLifecycle, 'storage'>;
  sink: Sink;
  relay: RelayWorker;
  adapters: readonly SourceAdapter[];
  /** Adapters that failed to start, with the cause's code. */
  adapterErrors: ReadonlyMap<string, string>;
  metrics: Metrics;
  /** When the gateway started (0 while stopped). */
  startedAt: () => number;
  /** The outbound direction, when enabled. */
  outbound?: { outbox: Pick<RecordQueue, 'stats'>; sink: Sink };
  /** Free space on the data volume as the disk guard last saw it. */
  disk?: () => DiskState;
  /** Where a source listens, for the advice when it could not bind (default {@link listenerOf}). */
  listenOf?: (adapterId: string) => Listen | undefined;
  /** The process serving (default this one's), so `status` can check it against the data folder's lease. */
  pid?: number;
}

/** Where a listener binds, and the setting that moves it. */
export interface Listen {
  host: string;
  port: number;
  /** The config field of the port (`hl7.port`, `admin.port`). */
  setting: string;
}

/** What one component did at start. */
export interface ComponentStart {
  /** `adapter:<id>` or `admin`. */
  component: string;
  role: 'source' | 'admin';
  state: 'running' | 'failed';
  /** When failed: the cause's code (EADDRINUSE, EACCES, ECONNREFUSED, a GW_ code, or 'unknown'). */
  cause?: string;
  /** For listeners: where it listens or tried to. */
  listen?: Listen;
}

/**
 * What a start brought up. `nothingRunning`: sources or the admin API were asked for and not one
 * of them runs, so the process would sit there doing nothing anyone can see; `start` in the
 * foreground then stops and exits 1 (a gateway with neither, by config, only relays its outbox).
 */
export interface StartReport {
  components: ComponentStart[];
  nothingRunning: boolean;
}

/**
 * Nothing could run: every component failed, and each is a listener (a port taken is a setup
 * mistake a person must fix). A polled source that could not reach its database or server at start
 * keeps the gateway up: it is retried, as after a reboot where the gateway starts before the PMS.
 */
export function startReportOf(components: ComponentStart[]): StartReport {
  return { components, nothingRunning: components.length > 0 && components.every((c) => c.state === 'failed' && c.listen !== undefined) };
}

/** The listener a config gives a source, where it has one (the MLLP listener). */
export function listenerOf(config: GatewayConfig, adapterId: string): Listen | undefined {
  return adapterId === 'hl7v2' && config.hl7.enabled ? { host: config.hl7.host, port: config.hl7.port, setting: 'hl7.port' } : undefined;
}

/** One failed component in words: what did not start, the code and cause, and what to do. PHI-free (ids, addresses, codes). */
export function startProblem(c: ComponentStart): string {
  const what =
    c.role === 'admin'
      ? 'admin API'
      : c.listen
        ? `listener ${c.component.replace(/^adapter:/, '')}`
        : `source ${c.component.replace(/^adapter:/, '')}`;
  const cause = c.cause ?? 'unknown';
  const l = c.listen;
  const hostSetting = l ? l.setting.replace(/\.port$/, '.host') : '';
  const advice = !l
    ? 'see the log for the cause and fix what it names'
    : cause === 'EADDRINUSE'
      ? `${l.host}:${l.port} is already in use by another program (or another gateway): free the port or change ${l.setting}`
      : cause === 'EACCES'
        ? `not allowed to listen on ${l.host}:${l.port} (ports below 1024 need privileges): choose another ${l.setting}`
        : cause === 'EADDRNOTAVAIL'
          ? `${l.host} is not an address of this machine: change ${hostSetting}`
          : `could not listen on ${l.host}:${l.port}: see the log; free the port or change ${l.setting}`;
  return `${what} not started: GW_START_FAILED (${cause}) — ${advice}`;
}

export interface Alerts {
  readonly board: AlertBoard;
  readonly active: AlertBoard['active'];
  /** Call when the outbox refuses input for lack of space. */
  outboxFull(bytes: number, maxBytes: number): void;
}

/** The outbox-full alert on the board: raised when the outbox refuses input, cleared once delivery brings it under 90% of its cap. */
export function createOutboxAlerts(o: {
  board: AlertBoard;
  bus: EventBus;
  outbox: () => Pick<RecordQueue, 'stats'>;
  maxBytes: number;
}): Alerts {
  const { board } = o;
  o.bus.on('relay.delivered', () => {
    if (board.isActive('outboxFull') && o.outbox().stats().bytes < o.maxBytes * 0.9) {
      board.clear('outboxFull', 'outbox below 90% of its cap; accepting input again');
      o.bus.emit('outbox.drained', { bytes: o.outbox().stats().bytes });
    }
  });
  return {
    board,
    active: board.active,
    outboxFull(bytes, maxBytes) {
      board.raise('outboxFull', {
        code: 'GW_OUTBOX_FULL',
        blocksReady: true,
        fields: { bytes, maxBytes },
        detail: `outbox full (${bytes} of ${maxBytes} bytes): new input refused until the relay drains it; check cloud connectivity`,
      });
      o.bus.emit('outbox.full', { bytes, maxBytes });
    },
  };
}

export function createStatusReport(s: StatusSources, alerts: Alerts, bus: EventBus) {
  const { outbox, sink, metrics, clock, config } = s;
  // message types answered AA but not mapped, so a technician sees what the PMS sends that we skip:
  // the types as sent (they come from input, so at most 100 of them, each at most 40 printable
  // characters), and everything past that under `other`, still counted
  const ignoredByType = new Map<string, number>();
  bus.on('intake.ignored', (e) => {
    const t = e.messageType;
    const shown = t.length <= 40 && /^[\x20-\x7e]+$/.test(t) && (ignoredByType.size < 100 || ignoredByType.has(t)) ? t : 'other';
    ignoredByType.set(shown, (ignoredByType.get(shown) ?? 0) + 1);
  });
  metrics.gauge('ewml_outbox_records', 'Records in the outbox, by state.', () => {
    const st = outbox.stats();
    return [
      { labels: { state: 'pending' }, value: st.pending },
      { labels: { state: 'in_flight' }, value: st.inFlight },
      { labels: { state: 'waiting_retry' }, value: st.waitingRetry },
    ];
  });
  metrics.gauge('ewml_outbox_bytes', 'Bytes held by the outbox (records and dead letters).', () => outbox.stats().bytes);
  metrics.gauge('ewml_outbox_max_bytes', 'The outbox byte cap.', () => config.outbox.maxBytes);
  metrics.observedCounter(
    'ewml_outbox_commits_total',
    'Outbox transactions committed since start, by writer (a commit carries every intake that arrived while the previous one ran).',
    () => {
      const st = outbox.stats();
      const inline = st.inlineCommits ?? 0;
      return [
        { labels: { writer: 'thread' }, value: (st.commits ?? 0) - inline },
        { labels: { writer: 'inline' }, value: inline },
      ];
    },
  );
  metrics.observedCounter(
    'ewml_outbox_writer_restarts_total',
    'Times the outbox writer thread died and was restarted since start (writes are refused while it restarts).',
    () => outbox.stats().writerRestarts ?? 0,
  );
  metrics.gauge('ewml_dead_letters', 'Dead letters waiting for a replay or discard.', () => outbox.stats().deadLetters);
  metrics.gauge('ewml_outbox_oldest_age_seconds', 'Age of the oldest record in the outbox.', () => {
    const o = outbox.stats().oldestCreatedAt;
    return o === null ? 0 : Math.max(0, (clock.now() - o) / 1000);
  });
  metrics.gauge('ewml_sink_connected', 'Whether the sink is connected (1) or not (0).', () => (sink.health().connected ? 1 : 0));

  /** Ready or why not; with the version and pid, so the updater's health gate knows which process answered. */
  function ready(): { ready: boolean; reasons: string[]; version: string; pid: number } {
    const listenOf = s.listenOf ?? ((id: string) => listenerOf(config, id));
    const reasons = [...s.adapterErrors].map(([id, cause]) => {
      const listen = listenOf(id);
      return startProblem({ component: `adapter:${id}`, role: 'source', state: 'failed', cause, ...(listen ? { listen } : {}) });
    });
    if (!s.startedAt()) reasons.push('gateway not running');
    reasons.push(...alerts.board.readyBlockers());
    if (s.startedAt() && outbox.stats().writer === 'restarting') reasons.push('outbox writer restarting');
    return { ready: reasons.length === 0, reasons, version: s.version, pid: s.pid ?? process.pid };
  }

  return {
    status(): Record<string, unknown> {
      const st = outbox.stats();
      const startedAt = s.startedAt();
      const count = (outcome: string) =>
        s.adapters.reduce((t, a) => t + metrics.counter('ewml_intake_total', { adapter: a.id, outcome }), 0);
      return {
        gateway: {
          id: config.gateway.id,
          pid: s.pid ?? process.pid,
          dataDir: resolve(config.gateway.dataDir),
          tenantId: config.gateway.tenantId,
          practiceId: config.gateway.practiceId,
          version: s.version,
          startedAt: startedAt ? new Date(startedAt).toISOString() : null,
          uptimeSeconds: startedAt ? Math.round((clock.now() - startedAt) / 1000) : 0,
        },
        adapters: Object.fromEntries(
          s.adapters.map((a) => [
            a.id,
            { ...a.health(), ...(s.adapterErrors.has(a.id) ? { status: 'down', error: s.adapterErrors.get(a.id) } : {}) },
          ]),
        ),
        outbox: {
          ...st,
          oldestAgeSeconds: st.oldestCreatedAt === null ? null : Math.round((clock.now() - st.oldestCreatedAt) / 1000),
          // the file's footprint: its size, what it holds live, its free pages and the resend log's entries
          ...(outbox.storage ? { storage: outbox.storage() } : {}),
        },
        sink: { kind: sink.kind, ...sink.health() },
        // the device certificate (gateway/identity/): its state and, when expired or revoked, the code and what to do
        ...identityOf(sink.health().detail),
        relay: s.relay.health(),
        counts: {
          accepted: count('accepted'),
          duplicate: count('duplicate'),
          ignored: count('ignored'),
          rejected: metrics.total('ewml_intake_rejected_total'),
          delivered: metrics.counter('ewml_records_delivered_total', { sink: sink.kind }),
          enqueuedRecords: metrics.total('ewml_records_enqueued_total'),
          deadLettered: metrics.total('ewml_records_dead_lettered_total'),
        },
        ignoredByType: Object.fromEntries([...ignoredByType].sort((a, b) => b[1] - a[1])),
        ...(s.disk ? { disk: s.disk() } : {}),
        ...(s.outbound ? { outbound: { ...s.outbound.outbox.stats(), sink: s.outbound.sink.health() } } : {}),
        alerts: alerts.active,
        ready: ready(),
      };
    },
    ready,
  };
}

/** The MQTT sink's identity fields (`identityState`, `identityCode`, …) as one `identity` object; nothing when not enrolled. */
function identityOf(detail: Record<string, string | number | boolean> | undefined): { identity?: Record<string, string> } {
  if (!detail || typeof detail.identityState !== 'string') return {};
  const identity: Record<string, string> = {};
  for (const [k, v] of Object.entries(detail))
    if (k.startsWith('identity') && typeof v === 'string') identity[k.charAt(8).toLowerCase() + k.slice(9)] = v;
  return { identity };
}
