/**
 * The composition root: builds every component from the config and wires them together. It holds
 * no per-kind code: source kinds come from adapters/registry.ts, sink kinds from
 * gateway/sinks/index.ts, agent kinds from agents/index.ts, the return path (cloud commands back to
 * the PMS) from gateway/return-path/. Source adapters, the admin API and agents run under a
 * supervisor: one failing to start is reported and retried, and does not take the others down.
 *
 * Start order: outbox → return path → sink → relay → sources → admin API and agents. Stop: the
 * reverse, so no source is acknowledged after the outbox closes.
 *
 * Building is asynchronous: a source kind or sink kind is imported only when the config uses it
 * (a reload that adds a kind's first entry imports it then), so a gateway carries no driver or
 * client it does not run (idle memory: BENCHMARKS.md).
 */
import type { Worker } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import type { ConfigError, ConfigProblem } from '../config/load.ts';
import { keepFields, planReload, prepareReload, type ReloadPlan } from '../config/reload-plan.ts';
import { createRecordValidator } from '../adapters/canonical/validator.ts';
import { loadSourceKinds, type SourceAdapter, type SourceCodec, type SourceKindEntry } from '../adapters/contracts.ts';
import { sourceKinds } from '../adapters/registry.ts';
import { agentKinds } from '../agents/index.ts';
import type { AgentKind } from '../agents/contract.ts';
import { createAgentRunner, type AgentRunner } from '../agents/runner.ts';
import { createPollScheduleRegistry } from './poll-schedule.ts';
import { createAlertBoard } from './alerts.ts';
import { createAdminServer, type AdminServer } from './admin/admin-server.ts';
import { loadOrCreateToken } from './admin/admin-token.ts';
import { systemClock, type Clock } from './clock.ts';
import { openSealKey } from './crypto/key-custody.ts';
import { createPublicStore, createSecretStore } from './crypto/secret-store.ts';
import { createKeyring } from './crypto/keyring.ts';
import { salvageAlert } from './salvage-alert.ts';
import { createEventBus, type EventBus } from './event-bus.ts';
import { createLogger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createDiskGuard } from './outbox/disk-guard.ts';
import { createSqliteOutbox } from './outbox/sqlite-outbox.ts';
import { storageLogLine } from './outbox/outbox-vacuum.ts';
import type { Outbox } from './outbox/outbox.ts';
import { createIntakePipeline, type IntakePipeline } from './pipeline/intake-pipeline.ts';
import { createRelayWorker, type RelayWorker } from './relay/relay-worker.ts';
import { createReturnPath, type Outbound } from './return-path/index.ts';
import { buildSink, type SinkKind } from './sinks/index.ts';
import type { Sink } from './sinks/sink.ts';
import { createSupervisor, type Supervisor } from './supervisor.ts';
import { acquireDataLease, HANDOVER_ENV, type DataLease } from './data-lease.ts';
import { gatewayVersion } from './version.ts';
import {
  createOutboxAlerts,
  createStatusReport,
  listenerOf,
  startReportOf,
  type ComponentStart,
  type StartReport,
} from './status-report.ts';

export interface GatewayOptions {
  config: GatewayConfig;
  logger?: Logger;
  clock?: Clock;
  /** Tests only: sees each outbox writer thread once started (to make it fail). */
  onOutboxWriterThread?: (w: Worker) => void;
  /** The source, sink and agent kinds (default: the registries); only the kinds the config uses are imported. */
  sources?: readonly SourceKindEntry[];
  sinks?: readonly SinkKind[];
  agents?: readonly AgentKind[];
  /** The data folder's lease when the caller took it first (the CLI does, before anything reads the folder). */
  lease?: DataLease;
  /** The updater's hand-over token (default: `process.env[HANDOVER_ENV]`). */
  handOverToken?: string;
  /** Reads the config as `start` did (the CLI: the same file and environment), for a reload while running. */
  loadConfig?: () => GatewayConfig;
  /** The updater's hook for signed `gateway.update` commands (the CLI's start passes it; without it they are refused). */
  onUpdate?: (req: { commandId: string; manifestUrl?: string }) => string | undefined;
}

export type ReloadOutcome =
  | { ok: true; plan: ReloadPlan; waitingForRestart: string[] }
  | { ok: false; code: ConfigError['code'] | 'GW_RELOAD_UNAVAILABLE'; problems: readonly ConfigProblem[] };

export interface GatewayPaths {
  dataDir: string;
  outboxFile: string;
  outboundFile: string;
  damagedDir: string;
  keyFile: string;
  tokenFile: string;
  fileSinkDir: string;
}

export function gatewayPaths(config: GatewayConfig): GatewayPaths {
  const dataDir = resolve(config.gateway.dataDir);
  return {
    dataDir,
    outboxFile: join(dataDir, 'outbox.db'),
    outboundFile: join(dataDir, 'outbound.db'),
    damagedDir: join(dataDir, 'damaged'),
    keyFile: join(dataDir, 'keys', 'seal.key'),
    tokenFile: join(dataDir, 'admin.token'),
    fileSinkDir: resolve(dataDir, config.fileSink.dir),
  };
}

export function resolveTimezone(tz: string): string {
  return tz || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export interface Gateway {
  start(): Promise<void>;
  /** Stops everything; the lease is released unless `keepLease` (the updater hands it to the next process). */
  stop(o?: { keepLease?: boolean }): Promise<void>;
  status(): Record<string, unknown>;
  /** What started and what did not (with its cause and, for listeners, the address), for the start banner and `/ready`. */
  startReport(): StartReport;
  /** Reads the config again (`GatewayOptions.loadConfig`) and applies what can be applied while running. */
  reloadConfig(): Promise<ReloadOutcome>;
  readonly parts: {
    outbox: Outbox;
    pipeline: IntakePipeline;
    relay: RelayWorker;
    sink: Sink;
    adapters: SourceAdapter[];
    admin?: AdminServer;
    metrics: Metrics;
    bus: EventBus;
    paths: GatewayPaths;
    token: string;
    outbound?: Outbound;
    /** The source adapters' supervisor (by adapter id) and the services' (`admin`, `agent:<id>`). */
    sources: Supervisor;
    services: Supervisor;
    agents: AgentRunner;
    /** The data folder's lease while running (the updater hands it to the next process). */
    lease(): DataLease | undefined;
  };
}

/** Builds the gateway (nothing is started or listening yet); rejects as the build fails, with the data folder's lease released. */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const paths = gatewayPaths(opts.config);
  // one owner per data folder, before anything reads or writes it: a second gateway on the folder
  // stops here (GW_DATA_DIR_IN_USE, naming the holder's pid); the lease is released at stop, and
  // here when the gateway cannot be built (a key missing, a source that cannot be made)
  const takeLease = () => acquireDataLease(paths.dataDir, { handOverToken: opts.handOverToken ?? process.env[HANDOVER_ENV] });
  const lease = opts.lease ?? takeLease();
  try {
    return await assembleGateway(opts, paths, lease, takeLease);
  } catch (err) {
    lease.release();
    throw err;
  }
}

async function assembleGateway(
  opts: GatewayOptions,
  paths: GatewayPaths,
  firstLease: DataLease,
  takeLease: () => DataLease,
): Promise<Gateway> {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  const version = gatewayVersion();
  const metrics = createMetrics();
  const bus = createEventBus((err, name) => logger.error({ err, event: name }, 'event listener threw'));
  let lease: DataLease | undefined = firstLease;
  // a missing or damaged key beside sealed rows stops here (GW_KEY_MISSING), before anything is built
  const custody = openSealKey({
    keyFile: paths.keyFile,
    outboxFiles: [paths.outboxFile, paths.outboundFile],
    sealedFileDirs: [paths.fileSinkDir],
  });
  const token = config.admin.token ?? loadOrCreateToken(paths.tokenFile);
  const keyring = createKeyring(custody);
  const { sealer, partitionKeyer } = keyring;

  const outbox = createSqliteOutbox({
    file: paths.outboxFile,
    maxBytes: config.outbox.maxBytes,
    maxDeadLetterBytes: Math.min(config.outbox.maxDeadLetterBytes, config.outbox.maxBytes),
    clock,
    groupCommitMaxRecords: config.outbox.groupCommitMaxRecords,
    writer: config.outbox.writer,
    sealKey: keyring.key,
    keyFile: paths.keyFile,
    expectData: !keyring.created,
    damagedDir: paths.damagedDir,
    onSalvaged: salvageAlert(() => alertBoard, 'outboxSalvaged'),
    dedupeWindowMs: config.hl7.dedupeWindowDays * 86_400_000,
    dedupeMaxEntries: config.outbox.dedupeMaxEntries,
    onFull: (bytes, maxBytes) => alerts.outboxFull(bytes, maxBytes),
    onWriterGone: ({ error, restartInMs, restarts }) => {
      logger.error(
        { code: 'GW_OUTBOX_IO', cause: error.code, restartInMs, restarts },
        'outbox writer thread died; restarting it. Input is refused with a negative ACK until then (senders resend); nothing committed is lost',
      );
      bus.emit('component.failed', { component: 'outbox-writer', code: 'GW_OUTBOX_IO' });
    },
    onWriterRestarted: ({ restarts }) => logger.warn({ restarts }, 'outbox writer thread restarted; input is accepted again'),
    onWriterThread: opts.onOutboxWriterThread,
    onStorage: (e) => {
      const l = storageLogLine(e);
      logger[l.level](l.fields, l.message);
    },
  });
  const alertBoard = createAlertBoard({ clock, logger: logger.child({ component: 'alerts' }), bus });
  const alerts = createOutboxAlerts({ board: alertBoard, bus, outbox: () => outbox, maxBytes: config.outbox.maxBytes });
  const diskGuard = createDiskGuard({
    dir: paths.dataDir,
    reserveBytes: config.outbox.diskReserveBytes,
    intervalMs: config.outbox.diskCheckMs,
    clock,
    logger: logger.child({ component: 'disk-guard' }),
    alerts: alertBoard,
    reusableBytes: () => outbox.reusableBytes?.() ?? 0,
  });
  const returnPath = createReturnPath(config, {
    clock,
    logger,
    bus,
    metrics,
    keyring,
    outbox,
    outboundFile: paths.outboundFile,
    keyFile: paths.keyFile,
    damagedDir: paths.damagedDir,
    onOutboundSalvaged: salvageAlert(() => alertBoard, 'outboundSalvaged'),
    secrets: (id) => createSecretStore(paths.dataDir, id, sealer),
    ...(opts.onUpdate ? { onUpdate: opts.onUpdate } : {}),
  });
  const outbound = returnPath.outbound;
  const sink = await buildSink(
    config,
    { clock, logger, bus, fileSinkDir: paths.fileSinkDir, version, onCommand: returnPath.onCommand },
    opts.sinks,
  );
  const relay = createRelayWorker({
    outbox,
    sink,
    sealer,
    clock,
    bus,
    metrics,
    logger: logger.child({ component: 'relay', sink: sink.kind }),
    batchSize: config.relay.batchSize,
    maxInFlight: config.relay.maxInFlight,
    backoffInitialMs: config.relay.backoffInitialMs,
    backoffMaxMs: config.relay.backoffMaxMs,
    idlePollMs: config.relay.idlePollMs,
    lingerMs: config.relay.lingerMs,
    alerts: alertBoard,
  });

  // every source kind builds its adapters and codecs from its own config section
  const sourceDeps = {
    timezone: resolveTimezone(config.gateway.timezone),
    now: () => clock.now(),
    clock,
    workDir: (id: string) => join(paths.dataDir, 'staging', id),
    secrets: (id: string) => createSecretStore(paths.dataDir, id, sealer),
  };
  const buildSources = async (c: GatewayConfig) => {
    const built = { adapters: [] as SourceAdapter[], codecs: [] as SourceCodec<unknown>[] };
    for (const kind of await loadSourceKinds(opts.sources ?? sourceKinds, c)) {
      const parts = kind.build(c, sourceDeps);
      built.adapters.push(...parts.adapters);
      built.codecs.push(...parts.codecs);
    }
    return built;
  };
  const { adapters, codecs } = await buildSources(config);
  // the CDS Hooks service (off by default, imported only when on): its read model sees each commit
  const cds = config.cdsHooks.enabled
    ? (await import('./cds-hooks/index.ts')).createCdsHooksService({
        config: config.cdsHooks,
        timezone: sourceDeps.timezone,
        dataDir: paths.dataDir,
        sealer,
        partitionKeyer,
        clock,
        logger: logger.child({ component: 'cds-hooks' }),
        metrics,
      })
    : undefined;
  const pipeline = createIntakePipeline({
    codecs,
    outbox,
    sealer,
    validator: createRecordValidator(),
    clock,
    bus,
    metrics,
    logger: logger.child({ component: 'pipeline' }),
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
    onEnqueued: () => relay.notify(),
    onCommitted: cds?.onCommitted,
    diskGuard,
    partitionKeyer,
    // which appointments are today's or tomorrow's (the urgent lane, pipeline/record-lane.ts)
    timezone: sourceDeps.timezone,
  });

  const sources = createSupervisor({ clock, logger, bus, label: (id) => `adapter:${id}` });
  const pollSchedules = createPollScheduleRegistry({ logger: logger.child({ component: 'poll-schedule' }) });
  const supervise = (a: SourceAdapter, paused = false) => {
    const alog = logger.child({ component: `adapter:${a.id}`, adapterId: a.id });
    return sources.add(
      {
        id: a.id,
        start: () =>
          a.start({
            intake: (raw) => pipeline.intake(raw),
            intakePage: (page) => pipeline.intakePage(page),
            cursor: (key) => outbox.getCursor(key),
            knownRows: (stream, after, limit) => outbox.listSourceRows(stream, after, limit),
            logger: alog,
            pollSchedule: pollSchedules.forSource(a.id),
          }),
        stop: () => a.stop(),
      },
      { paused },
    );
  };
  for (const a of adapters) void supervise(a);
  let startedAt = 0;
  let running = false;
  /** The config in effect (after reloads): a field that needs a restart keeps its old value here until then. */
  let current = config;
  let waitingForRestart: readonly string[] = [];
  let lastReload: { at: string; changes: number } | undefined;
  /** Reloads run one at a time, and a stop waits for the one under way. */
  let reloading: Promise<unknown> = Promise.resolve();

  /** Validate → plan → apply (config/reload-plan.ts). Nothing changes when the new config does not load or its sources cannot be built. */
  function reloadConfig(): Promise<ReloadOutcome> {
    const r = reloading.then(applyReload);
    reloading = r.catch(() => undefined);
    return r;
  }

  async function applyReload(): Promise<ReloadOutcome> {
    if (!opts.loadConfig) return { ok: false, code: 'GW_RELOAD_UNAVAILABLE', problems: [] };
    if (!running)
      return {
        ok: false,
        code: 'GW_RELOAD_UNAVAILABLE',
        problems: [{ path: '(gateway)', expected: 'a running gateway', found: 'stopped' }],
      };
    const prepared = prepareReload(current, opts.loadConfig);
    if (!prepared.ok) {
      logger.warn(
        { code: prepared.code, problems: prepared.problems.length },
        'config reload refused: the new config does not validate; nothing changed',
      );
      return prepared;
    }
    const { plan, config: next } = prepared;
    // what takes effect now: the new config, but every field that needs a restart as it was
    const effective = keepFields(next, current, plan.apply.restart);
    const { add, remove, recreate } = plan.apply.adapters;
    // built before anything stops: a source that cannot be built leaves the running ones as they are
    const rebuilt = await buildSources(effective);
    const paused = new Set([...remove, ...recreate].filter((id) => sources.state(id) === 'paused'));
    for (const id of [...remove, ...recreate]) {
      if (!sources.ids().includes(id)) continue;
      await sources.remove(id);
      const i = adapters.findIndex((a) => a.id === id);
      if (i >= 0) adapters.splice(i, 1);
    }
    // codecs are pure functions of their config: the new set serves the kept sources as well
    pipeline.setCodecs(rebuilt.codecs);
    for (const id of [...recreate, ...add]) {
      const a = rebuilt.adapters.find((x) => x.id === id);
      if (!a || sources.ids().includes(id)) continue;
      adapters.push(a);
      // a source an agent or a person paused stays paused with its new settings
      await supervise(a, paused.has(id));
    }
    if (plan.apply.live.includes('log.level')) logger.level = effective.log.level;
    current = effective;
    waitingForRestart = planReload(current, next).apply.restart;
    lastReload = { at: new Date(clock.now()).toISOString(), changes: plan.changes.length };
    logger.info(
      {
        changes: plan.changes.length,
        added: add.length,
        removed: remove.length,
        recreated: recreate.length,
        live: plan.apply.live.length,
        waitingForRestart: waitingForRestart.length,
      },
      'config reloaded',
    );
    return { ok: true, plan, waitingForRestart: [...waitingForRestart] };
  }

  const report = createStatusReport(
    {
      config,
      clock,
      version,
      outbox,
      sink,
      relay,
      adapters,
      adapterErrors: sources.errors,
      listenOf: (id) => listenerOf(current, id),
      metrics,
      startedAt: () => (running ? startedAt : 0),
      outbound,
      disk: () => diskGuard.state(),
    },
    alerts,
    bus,
  );
  const services = createSupervisor({ clock, logger, bus });
  const agents = createAgentRunner(opts.agents ?? agentKinds, {
    config,
    current: () => current,
    clock,
    logger,
    bus,
    supervisor: services,
    sourceSupervisor: sources,
    outboxStats: () => outbox.stats(),
    dataDir: paths.dataDir,
    sink: () => ({ kind: sink.kind, ...sink.health() }),
    pollSchedules,
    sources: () =>
      adapters.map((a) => {
        const error = sources.errors.get(a.id);
        return { id: a.id, state: sources.state(a.id) ?? 'stopped', health: a.health(), ...(error ? { error } : {}) };
      }),
  });
  const status = () => {
    const base = report.status();
    const reload = lastReload ? { config: { ...lastReload, waitingForRestart: [...waitingForRestart] } } : {};
    return {
      ...base,
      ...reload,
      ...(agents.agents.length > 0 ? { agents: agents.status() } : {}),
      ...(cds ? { cdsHooks: cds.status() } : {}),
    };
  };
  const admin = config.admin.enabled
    ? createAdminServer({
        host: config.admin.host,
        port: config.admin.port,
        token,
        gatewayId: config.gateway.id,
        logger: logger.child({ component: 'admin' }),
        metrics,
        outbox,
        status,
        ready: () => report.ready(),
        replay: (id) => pipeline.replay(id),
        acknowledgeAlert: (key) => alertBoard.acknowledge(key),
        agentReport: (id) => agents.report(id),
        reloadConfig: opts.loadConfig ? reloadConfig : undefined,
        fhirJwks: (id) =>
          current.fhir.some((f) => f.id === id) ? createPublicStore(paths.dataDir, id).readPublic('jwks.json') : undefined,
      })
    : undefined;
  // the admin API first among the services: agents start after it, and a port taken is retried like a source
  if (admin) void services.add({ id: 'admin', start: () => admin.start(), stop: () => admin.stop() });
  if (cds) void services.add({ id: 'cds-hooks', start: () => cds.start(), stop: () => cds.stop() });

  return {
    parts: {
      outbox,
      pipeline,
      relay,
      sink,
      adapters,
      admin,
      metrics,
      bus,
      paths,
      token,
      outbound,
      sources,
      services,
      agents,
      lease: () => lease,
    },
    status,
    async start() {
      if (running) return;
      // a gateway started again after a stop takes the lease again
      lease ??= takeLease();
      try {
        await outbox.open();
        try {
          // before any source starts: a disk already below its reserve refuses the first input
          await diskGuard.start();
          await returnPath.open();
        } catch (err) {
          // a start that must stop (GW_KEY_MISSING on the outbound file) leaves nothing open behind it
          await diskGuard.stop().catch(() => undefined);
          await outbox.close();
          throw err;
        }
      } catch (err) {
        lease.release();
        lease = undefined;
        throw err;
      }
      running = true;
      startedAt = clock.now();
      try {
        await sink.start();
      } catch (err) {
        logger.error({ err, code: 'GW_START_FAILED' }, 'sink failed to start; records stay queued');
      }
      await relay.start();
      await returnPath.resume();
      // open before any source runs and closed after the last stops: no commit goes unseen
      cds?.openReadModel();
      await sources.startAll();
      // a stop while the sources started: it has stopped them; nothing more starts
      if (!running) return;
      await services.startAll();
      logger.info(
        { version, sink: sink.kind, dataDir: paths.dataDir, adapters: adapters.map((a) => a.id), agents: agents.agents.map((a) => a.id) },
        'gateway started',
      );
    },
    reloadConfig,
    startReport() {
      const components: ComponentStart[] = adapters.map((a) => {
        const cause = sources.errors.get(a.id);
        const listen = listenerOf(current, a.id);
        return {
          component: `adapter:${a.id}`,
          role: 'source',
          state: cause ? 'failed' : 'running',
          ...(cause ? { cause } : {}),
          ...(listen ? { listen } : {}),
        };
      });
      if (admin) {
        const cause = services.errors.get('admin');
        const listen = { host: current.admin.host, port: current.admin.port, setting: 'admin.port' };
        components.push({ component: 'admin', role: 'admin', state: cause ? 'failed' : 'running', ...(cause ? { cause } : {}), listen });
      }
      return startReportOf(components);
    },
    async stop(o = {}) {
      await reloading;
      if (!running) {
        // built (or failed to start) and never running: the folder is free again
        lease?.release();
        lease = undefined;
        return;
      }
      running = false;
      await services.stopAll();
      await sources.stopAll();
      cds?.closeReadModel();
      await relay.stop();
      await sink.stop().catch((err: unknown) => logger.error({ err }, 'sink stop failed'));
      await diskGuard.stop();
      await outbox.close();
      await returnPath.close();
      if (!o.keepLease) lease?.release();
      lease = undefined;
      logger.info(o.keepLease ? 'gateway stopped; the lease is kept for the hand-over' : 'gateway stopped');
      logger.flush?.();
    },
  };
}
