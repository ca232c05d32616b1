/**
 * The return path: what the cloud sends back to the practice. Signed cloud commands (JWS, verified
 * against the pinned command key) are taken into the outbox's command journal and carried out: HL7
 * messages to the PMS over MLLP (their own outbox file, `outbound.db`, and relay, one message at a
 * time), status write-back to a PMS database, files put where the PMS picks them up, and FHIR
 * resources created or updated on a `fhir[]` source's server.
 *
 * Built from the config by the composition root; without `cloud.commandPublicKey` no command is taken.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import { createMllpOutboundSink } from '../../adapters/hl7v2/mllp-outbound-sink.ts';
import { createMllpSender } from '../../adapters/hl7v2/mllp-sender.ts';
import { createFileWriter } from '../../adapters/file/file-output.ts';
import { connectionOf } from '../../adapters/sql/index.ts';
import { createWriteBack } from '../../adapters/sql/write-back.ts';
import type { SecretStore } from '../../adapters/contracts.ts';
import { createFhirWriteBack } from '../../adapters/fhir/write-back.ts';
import type { Clock } from '../clock.ts';
import { createCommandProcessor, type CommandProcessor } from '../commands/command-processor.ts';
import { createCommandVerifier } from '../commands/command-verifier.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { EventBus } from '../event-bus.ts';
import type { Metrics } from '../metrics.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { SalvageReport } from '../outbox/outbox-salvage.ts';
import { createSqliteOutbox } from '../outbox/sqlite-outbox.ts';
import { createRelayWorker, type RelayWorker } from '../relay/relay-worker.ts';
import type { Sink } from '../sinks/sink.ts';

export interface Outbound {
  outbox: Outbox;
  sink: Sink;
  relay: RelayWorker;
}

export interface ReturnPathDeps {
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  metrics: Metrics;
  /** The seal key's derived keys (crypto/keyring.ts): the outbound outbox's key, the sealer, the partition keyer. */
  keyring: Keyring;
  /** The intake outbox: its command journal keeps commands taken until they are done. */
  outbox: Outbox;
  outboundFile: string;
  keyFile: string;
  damagedDir: string;
  onOutboundSalvaged: (r: SalvageReport) => void;
  /** A source's sealed secrets (its FHIR client key): a FHIR write-back signs with the source's own key. */
  secrets: (sourceId: string) => SecretStore;
  /** The updater's hook for `gateway.update` commands (command-processor.ts `onUpdate`). */
  onUpdate?: (req: { commandId: string; manifestUrl?: string }) => string | undefined;
}

export interface ReturnPath {
  readonly outbound?: Outbound;
  readonly commands?: CommandProcessor;
  /** For the sink that carries commands down (MQTT `down/commands`). */
  readonly onCommand?: (jws: string) => void;
  /** Opens the outbound outbox and starts its relay (before the sink, so commands have somewhere to go). */
  open(): Promise<void>;
  /** Carries out commands taken before a restart and not finished. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** The outbound direction: its own outbox file, an MLLP sender to the PMS, and a relay draining one message at a time. */
function buildOutbound(config: GatewayConfig, d: ReturnPathDeps): Outbound {
  const outbox = createSqliteOutbox({
    file: d.outboundFile,
    maxBytes: Math.max(16 * 1024 * 1024, Math.floor(config.outbox.maxBytes / 8)),
    clock: d.clock,
    dedupeWindowMs: config.hl7.dedupeWindowDays * 86_400_000,
    // the outbound direction may be switched on long after the first run: a missing file is new, an empty one damaged
    sealKey: d.keyring.key,
    keyFile: d.keyFile,
    expectData: !d.keyring.created,
    absentIsFresh: true,
    damagedDir: d.damagedDir,
    onSalvaged: d.onOutboundSalvaged,
  });
  // a factory: the sink can be started again after a stop (a closed sender stays closed)
  const sender = () =>
    createMllpSender({
      host: config.outbound.host,
      port: config.outbound.port,
      poolSize: config.outbound.poolSize,
      ackTimeoutMs: config.outbound.ackTimeoutMs,
    });
  const sink = createMllpOutboundSink({ sender, retryOn: config.outbound.retryOn, onOutcome: (x) => d.bus.emit('command.outcome', x) });
  const relay = createRelayWorker({
    outbox,
    sink,
    sealer: d.keyring.sealer,
    clock: d.clock,
    bus: d.bus,
    metrics: d.metrics,
    logger: d.logger.child({ component: 'outbound' }),
    batchSize: 1,
    maxInFlight: config.outbound.poolSize,
    backoffInitialMs: config.relay.backoffInitialMs,
    backoffMaxMs: config.relay.backoffMaxMs,
    idlePollMs: config.relay.idlePollMs,
    lingerMs: 0,
  });
  return { outbox, sink, relay };
}

export function createReturnPath(config: GatewayConfig, d: ReturnPathDeps): ReturnPath {
  const outbound = config.outbound.enabled ? buildOutbound(config, d) : undefined;
  const writeBacks = new Map(
    config.databases
      .filter((db) => db.writeBack.enabled)
      .map((db) => [db.id, createWriteBack({ connection: connectionOf(db, true), statements: db.writeBack.statements })]),
  );
  const fileWriters = new Map(
    config.fileOutputs.map((t) => [
      t.id,
      createFileWriter({
        id: t.id,
        kind: t.kind,
        dir: t.dir,
        sftp: t.kind === 'sftp' ? t.sftp : undefined,
        ftps: t.kind === 'ftps' ? t.ftps : undefined,
        csvDelimiter: t.csvDelimiter,
      }),
    ]),
  );
  const fhirWriteBacks = new Map(
    config.fhir
      .filter((f) => f.writeBack.enabled)
      .map((f) => [f.id, createFhirWriteBack({ config: f, clock: d.clock, secrets: d.secrets(f.id) })]),
  );
  const commands = config.cloud.commandPublicKey
    ? createCommandProcessor({
        verifier: createCommandVerifier({
          publicKeyPem: config.cloud.commandPublicKey,
          gatewayId: config.gateway.id,
          now: () => d.clock.now(),
        }),
        outbound: outbound && {
          outbox: outbound.outbox,
          sealer: d.keyring.sealer,
          notify: () => outbound.relay.notify(),
          partitionKeyer: d.keyring.partitionKeyer,
          identity: {
            sendingApplication: 'EWML',
            sendingFacility: config.gateway.id,
            receivingApplication: config.outbound.receivingApplication,
            receivingFacility: config.outbound.receivingFacility,
          },
        },
        direct: {
          outbox: d.outbox,
          sealer: d.keyring.sealer,
          writeBackFor: (id) => writeBacks.get(id),
          fileWriterFor: (id) => fileWriters.get(id),
          fhirWriteBackFor: (id) => fhirWriteBacks.get(id),
        },
        ...(d.onUpdate ? { onUpdate: d.onUpdate } : {}),
        bus: d.bus,
        logger: d.logger.child({ component: 'commands' }),
        clock: d.clock,
      })
    : undefined;
  const onCommand =
    commands &&
    ((jws: string) => {
      void commands.handle(jws).catch((err: unknown) => d.logger.error({ err }, 'command handling failed'));
    });
  return {
    outbound,
    commands,
    onCommand,
    async open() {
      if (!outbound) return;
      await outbound.outbox.open();
      await outbound.relay.start();
    },
    async resume() {
      if (commands)
        await commands.resumePending().catch((err: unknown) => d.logger.error({ err }, 'pending commands could not be resumed'));
    },
    async close() {
      if (outbound) {
        await outbound.relay.stop();
        await outbound.sink.stop().catch(() => undefined);
        await outbound.outbox.close();
      }
      for (const wb of writeBacks.values()) await wb.close().catch(() => undefined);
    },
  };
}
