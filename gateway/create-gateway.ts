/**
 * The composition root: builds every component from the config and wires them together. It holds
 * no logic of its own beyond start/stop order and isolation: one component failing to start is
 * reported and retried, and does not take the others down.
 *
 * Start order: outbox → sink → relay → adapters → admin API. Stop: the reverse, so no source is
 * acknowledged after the outbox closes.
 */
import type { Worker } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { createRecordValidator } from '../adapters/canonical/validator.ts';
import type { SourceAdapter, SourceCodec } from '../adapters/contracts.ts';
import { createHl7Codec, createMllpListener, type Hl7CodecOptions } from '../adapters/hl7v2/index.ts';
import { createAlertBoard } from './alerts.ts';
import { createAdminServer, type AdminServer } from './admin/admin-server.ts';
import { loadOrCreateToken } from './admin/admin-token.ts';
import { systemClock, type Clock } from './clock.ts';
import { createCloudEnvelope } from './crypto/cloud-envelope.ts';
import { createRecordSealer } from './crypto/record-sealer.ts';
import { openSealKey } from './crypto/key-custody.ts';
import { createPartitionKeyer } from './crypto/partition-keyer.ts';
import { salvageAlert } from './salvage-alert.ts';
import { createEventBus, type EventBus } from './event-bus.ts';
import { createLogger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createDiskGuard } from './outbox/disk-guard.ts';
import { createSqliteOutbox } from './outbox/sqlite-outbox.ts';
import type { Outbox } from './outbox/outbox.ts';
import type { SalvageReport } from './outbox/outbox-salvage.ts';
import { createIntakePipeline, type IntakePipeline } from './pipeline/intake-pipeline.ts';
import { createRelayWorker, type RelayWorker } from './relay/relay-worker.ts';
import { createFileSink } from './sinks/file-sink.ts';
import { createHttpsSink } from './sinks/https-sink.ts';
import { createMqttSink } from './sinks/mqtt-sink.ts';
import type { Sink } from './sinks/sink.ts';
import { gatewayVersion } from './version.ts';
import { createOutboxAlerts, createStatusReport } from './status-report.ts';
import { createCommandProcessor } from './commands/command-processor.ts';
import { createCommandVerifier } from './commands/command-verifier.ts';
import { createMllpSender } from '../adapters/hl7v2/mllp-sender.ts';
import { createMllpOutboundSink } from '../adapters/hl7v2/mllp-outbound-sink.ts';
import { createFileRowCodec, createFileSource, createFolderFileSource, type FilesConfig } from '../adapters/file/index.ts';
import { connectionOf, createDatabaseSource, createSqlRowCodec, type DatabaseConfig } from '../adapters/sql/index.ts';
import { createWriteBack } from '../adapters/sql/write-back.ts';
import { createFileWriter } from '../adapters/file/file-output.ts';

export interface GatewayOptions {
  config: GatewayConfig;
  logger?: Logger;
  clock?: Clock;
  /** Tests only: sees each outbox writer thread once started (to make it fail). */
  onOutboxWriterThread?: (w: Worker) => void;
}

export interface GatewayPaths { dataDir: string; outboxFile: string; outboundFile: string; damagedDir: string; keyFile: string; tokenFile: string; fileSinkDir: string }

export function gatewayPaths(config: GatewayConfig): GatewayPaths {
  const dataDir = resolve(config.gateway.dataDir);
  return { dataDir, outboxFile: join(dataDir, 'outbox.db'), outboundFile: join(dataDir, 'outbound.db'), damagedDir: join(dataDir, 'damaged'), keyFile: join(dataDir, 'keys', 'seal.key'), tokenFile: join(dataDir, 'admin.token'), fileSinkDir: resolve(dataDir, config.fileSink.dir) };
}

export function resolveTimezone(tz: string): string {
  return tz || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
  readonly parts: { outbox: Outbox; pipeline: IntakePipeline; relay: RelayWorker; sink: Sink; adapters: SourceAdapter[]; admin?: AdminServer; metrics: Metrics; bus: EventBus; paths: GatewayPaths; token: string; outbound?: { outbox: Outbox; sink: Sink; relay: RelayWorker } };
}

export function buildSink(config: GatewayConfig, deps: { clock: Clock; logger: Logger; bus: EventBus; paths: GatewayPaths; version: string; onCommand?: (jws: string) => void }): Sink {
  const kind = config.relay.sink;
  switch (kind) {
    case 'file':
      return createFileSink({ dir: deps.paths.fileSinkDir, clock: deps.clock, logger: deps.logger.child({ component: 'file-sink' }) });
    case 'mqtt':
      return createMqttSink({
        ...config.mqtt, tenantId: config.gateway.tenantId, gatewayId: config.gateway.id, ackTimeoutMs: config.relay.ackTimeoutMs, version: deps.version,
        envelope: createCloudEnvelope(config.cloud.publicKey ?? ''), clock: deps.clock, logger: deps.logger.child({ component: 'sink:mqtt' }), bus: deps.bus, onCommand: deps.onCommand,
      });
    case 'https':
      return createHttpsSink({ ...config.https, tenantId: config.gateway.tenantId, gatewayId: config.gateway.id, envelope: createCloudEnvelope(config.cloud.publicKey ?? ''), clock: deps.clock });
    default:
      return kind satisfies never;
  }
}

/** The outbound direction: its own outbox file, an MLLP sender to the PMS, and a relay draining one message at a time. */
function buildOutbound(config: GatewayConfig, d: { clock: Clock; logger: Logger; bus: EventBus; metrics: Metrics; sealer: ReturnType<typeof createRecordSealer>; paths: GatewayPaths; key: { key: Buffer; created: boolean }; onSalvaged: (r: SalvageReport) => void }) {
  const outbox = createSqliteOutbox({
    file: d.paths.outboundFile, maxBytes: Math.max(16 * 1024 * 1024, Math.floor(config.outbox.maxBytes / 8)), clock: d.clock, dedupeWindowMs: config.hl7.dedupeWindowDays * 86_400_000,
    // the outbound direction may be switched on long after the first run: a missing file is new, an empty one damaged
    sealKey: d.key.key, keyFile: d.paths.keyFile, expectData: !d.key.created, absentIsFresh: true, damagedDir: d.paths.damagedDir, onSalvaged: d.onSalvaged,
  });
  const sender = createMllpSender({ host: config.outbound.host, port: config.outbound.port, poolSize: config.outbound.poolSize, ackTimeoutMs: config.outbound.ackTimeoutMs });
  const sink = createMllpOutboundSink({ sender, retryOn: config.outbound.retryOn, onOutcome: (x) => d.bus.emit('command.outcome', x) });
  const relay = createRelayWorker({
    outbox, sink, sealer: d.sealer, clock: d.clock, bus: d.bus, metrics: d.metrics, logger: d.logger.child({ component: 'outbound' }),
    batchSize: 1, maxInFlight: config.outbound.poolSize, backoffInitialMs: config.relay.backoffInitialMs, backoffMaxMs: config.relay.backoffMaxMs, idlePollMs: config.relay.idlePollMs, lingerMs: 0,
  });
  return { outbox, sink, relay };
}

export function createGateway(opts: GatewayOptions): Gateway {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger({ level: config.log.level });
  const version = gatewayVersion();
  const paths = gatewayPaths(config);
  const metrics = createMetrics();
  const bus = createEventBus((err, name) => logger.error({ err, event: name }, 'event listener threw'));
  // a missing or damaged key beside sealed rows stops here (GW_KEY_MISSING), before anything is built
  const custody = openSealKey({ keyFile: paths.keyFile, outboxFiles: [paths.outboxFile, paths.outboundFile], sealedFileDirs: [paths.fileSinkDir] });
  const sealKey = custody.key;
  const sealer = createRecordSealer(sealKey);
  const partitionKeyer = createPartitionKeyer(sealKey);
  const token = config.admin.token ?? loadOrCreateToken(paths.tokenFile);

  const outbox = createSqliteOutbox({
    file: paths.outboxFile, maxBytes: config.outbox.maxBytes, maxDeadLetterBytes: Math.min(config.outbox.maxDeadLetterBytes, config.outbox.maxBytes), clock, groupCommitMaxRecords: config.outbox.groupCommitMaxRecords, writer: config.outbox.writer, sealKey,
    keyFile: paths.keyFile, expectData: !custody.created, damagedDir: paths.damagedDir, onSalvaged: salvageAlert(() => alertBoard, 'outboxSalvaged'),
    dedupeWindowMs: config.hl7.dedupeWindowDays * 86_400_000,
    onFull: (bytes, maxBytes) => alerts.outboxFull(bytes, maxBytes),
    onWriterGone: ({ error, restartInMs, restarts }) => {
      logger.error({ code: 'GW_OUTBOX_IO', cause: error.code, restartInMs, restarts }, 'outbox writer thread died; restarting it. Input is refused with a negative ACK until then (senders resend); nothing committed is lost');
      bus.emit('component.failed', { component: 'outbox-writer', code: 'GW_OUTBOX_IO' });
    },
    onWriterRestarted: ({ restarts }) => logger.warn({ restarts }, 'outbox writer thread restarted; input is accepted again'),
    onWriterThread: opts.onOutboxWriterThread,
  });
  const alertBoard = createAlertBoard({ clock, logger: logger.child({ component: 'alerts' }), bus });
  const alerts = createOutboxAlerts({ board: alertBoard, bus, outbox: () => outbox, maxBytes: config.outbox.maxBytes });
  const diskGuard = createDiskGuard({
    dir: paths.dataDir, reserveBytes: config.outbox.diskReserveBytes, intervalMs: config.outbox.diskCheckMs, clock, logger: logger.child({ component: 'disk-guard' }), alerts: alertBoard,
    reusableBytes: () => outbox.reusableBytes?.() ?? 0,
  });
  const outbound = config.outbound.enabled ? buildOutbound(config, { clock, logger, bus, metrics, sealer, paths, key: custody, onSalvaged: salvageAlert(() => alertBoard, 'outboundSalvaged') }) : undefined;
  const writeBacks = new Map((config.databases as unknown as DatabaseConfig[]).filter((d) => d.writeBack.enabled).map((d) => [d.id, createWriteBack({ connection: connectionOf(d, true), statements: d.writeBack.statements })]));
  const fileWriters = new Map(config.fileOutputs.map((t) => [t.id, createFileWriter({ id: t.id, kind: t.kind, dir: t.dir, sftp: t.kind === 'sftp' ? t.sftp : undefined, ftps: t.kind === 'ftps' ? t.ftps : undefined, csvDelimiter: t.csvDelimiter })]));
  const commands = config.cloud.commandPublicKey
    ? createCommandProcessor({
      verifier: createCommandVerifier({ publicKeyPem: config.cloud.commandPublicKey, gatewayId: config.gateway.id, now: () => clock.now() }),
      outbound: outbound && {
        outbox: outbound.outbox, sealer, notify: () => outbound.relay.notify(), partitionKeyer,
        identity: { sendingApplication: 'EWML', sendingFacility: config.gateway.id, receivingApplication: config.outbound.receivingApplication, receivingFacility: config.outbound.receivingFacility },
      },
      direct: { outbox, sealer, writeBackFor: (id) => writeBacks.get(id), fileWriterFor: (id) => fileWriters.get(id) },
      bus, logger: logger.child({ component: 'commands' }), now: () => clock.now(),
    })
    : undefined;
  const onCommand = commands && ((jws: string) => { void commands.handle(jws).catch((err: unknown) => logger.error({ err }, 'command handling failed')); });
  const sink = buildSink(config, { clock, logger, bus, paths, version, onCommand });
  const relay = createRelayWorker({
    outbox, sink, sealer, clock, bus, metrics, logger: logger.child({ component: 'relay', sink: sink.kind }),
    batchSize: config.relay.batchSize, maxInFlight: config.relay.maxInFlight, backoffInitialMs: config.relay.backoffInitialMs,
    backoffMaxMs: config.relay.backoffMaxMs, idlePollMs: config.relay.idlePollMs, lingerMs: config.relay.lingerMs, alerts: alertBoard,
  });
  const timezone = resolveTimezone(config.gateway.timezone);
  const codecs: SourceCodec<unknown>[] = [createHl7Codec({ profile: config.hl7.profile, timezone, overrides: config.hl7.profileOverrides as Hl7CodecOptions['overrides'] }) as SourceCodec<unknown>];
  const databases = config.databases.map((d) => createDatabaseSource(d as DatabaseConfig, () => clock.now(), { timezone }));
  for (const d of databases) codecs.push(createSqlRowCodec(d) as unknown as SourceCodec<unknown>);
  const fileEnv = { timezone, now: () => clock.now() };
  for (const f of config.files) codecs.push(createFileRowCodec(f as unknown as FilesConfig, fileEnv) as unknown as SourceCodec<unknown>);
  const pipeline = createIntakePipeline({
    codecs, outbox, sealer, validator: createRecordValidator(), clock, bus, metrics, logger: logger.child({ component: 'pipeline' }),
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
    onEnqueued: () => relay.notify(),
    diskGuard,
    partitionKeyer,
  });
  const adapters: SourceAdapter[] = [];
  if (config.hl7.enabled) adapters.push(createMllpListener({ ...config.hl7, now: () => clock.now() }));
  // `folders` (HL7 files only) is the first form of a file source: the same source, profile hl7v2, polled
  for (const f of config.folders) {
    adapters.push(createFolderFileSource({
      id: f.id, dir: f.dir, polling: true, pollMs: f.pollMs, extensions: f.extensions.map((x) => x.toLowerCase()), stableMs: f.stableMs, marker: '', after: 'move',
      import: { adapterId: f.id, profile: 'hl7v2', format: 'hl7v2', csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' }, maxWholeFileBytes: 64 * 1024 * 1024, pageSize: 500, timezone, now: () => clock.now() },
    }));
  }
  adapters.push(...databases);
  for (const f of config.files) adapters.push(createFileSource(f as unknown as FilesConfig, { ...fileEnv, stagingDir: join(paths.dataDir, 'staging', f.id) }));
  const adapterErrors = new Map<string, string>();
  const retryTimers = new Set<NodeJS.Timeout>();
  let startedAt = 0;
  let running = false;

  async function startAdapter(a: SourceAdapter, attempt: number): Promise<void> {
    const alog = logger.child({ component: `adapter:${a.id}`, adapterId: a.id });
    try {
      await a.start({
        intake: (raw) => pipeline.intake(raw), intakePage: (page) => pipeline.intakePage(page),
        cursor: (key) => outbox.getCursor(key), knownRows: (stream, after, limit) => outbox.listSourceRows(stream, after, limit), logger: alog,
      });
      adapterErrors.delete(a.id);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      adapterErrors.set(a.id, code);
      const delay = Math.min(60_000, 2000 * 2 ** Math.min(attempt, 5));
      alog.error({ code: 'GW_START_FAILED', cause: code, retryInMs: delay }, 'adapter failed to start; the rest of the gateway runs on');
      bus.emit('component.failed', { component: `adapter:${a.id}`, code });
      const t = setTimeout(() => { retryTimers.delete(t); if (running) void startAdapter(a, attempt + 1); }, delay);
      retryTimers.add(t);
    }
  }

  const report = createStatusReport({ config, clock, version, outbox, sink, relay, adapters, adapterErrors, metrics, startedAt: () => (running ? startedAt : 0), outbound, disk: () => diskGuard.state() }, alerts, bus);
  const status = () => report.status();
  const admin = config.admin.enabled
    ? createAdminServer({
      host: config.admin.host, port: config.admin.port, token, logger: logger.child({ component: 'admin' }), metrics, outbox,
      status, ready: () => report.ready(), replay: (id) => pipeline.replay(id), acknowledgeAlert: (key) => alertBoard.acknowledge(key),
    })
    : undefined;

  return {
    parts: { outbox, pipeline, relay, sink, adapters, admin, metrics, bus, paths, token, outbound },
    status,
    async start() {
      if (running) return;
      await outbox.open();
      // before any source starts: a disk already below its reserve refuses the first input
      await diskGuard.start();
      // a start that must stop (GW_KEY_MISSING on the outbound file) leaves nothing open behind it
      if (outbound) await outbound.outbox.open().catch(async (err: unknown) => { await diskGuard.stop(); await outbox.close(); throw err; });
      if (outbound) await outbound.relay.start();
      running = true;
      startedAt = clock.now();
      try { await sink.start(); } catch (err) { logger.error({ err, code: 'GW_START_FAILED' }, 'sink failed to start; records stay queued'); }
      await relay.start();
      if (commands) await commands.resumePending().catch((err: unknown) => logger.error({ err }, 'pending commands could not be resumed'));
      for (const a of adapters) await startAdapter(a, 0);
      if (admin) {
        try { await admin.start(); } catch (err) { logger.error({ code: 'GW_START_FAILED', cause: (err as NodeJS.ErrnoException).code }, 'admin API failed to start; the gateway runs on without it'); }
      }
      logger.info({ version, sink: sink.kind, dataDir: paths.dataDir, adapters: adapters.map((a) => a.id) }, 'gateway started');
    },
    async stop() {
      if (!running) return;
      running = false;
      for (const t of retryTimers) clearTimeout(t);
      retryTimers.clear();
      await admin?.stop();
      for (const a of [...adapters].reverse()) await a.stop().catch((err: unknown) => logger.error({ err }, 'adapter stop failed'));
      await relay.stop();
      await sink.stop().catch((err: unknown) => logger.error({ err }, 'sink stop failed'));
      await diskGuard.stop();
      await outbox.close();
      if (outbound) { await outbound.relay.stop(); await outbound.sink.stop().catch(() => undefined); await outbound.outbox.close(); }
      for (const wb of writeBacks.values()) await wb.close().catch(() => undefined);
      logger.info('gateway stopped');
      logger.flush?.();
    },
  };
}
