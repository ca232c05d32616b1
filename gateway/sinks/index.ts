/**
 * The sink kinds (`relay.sink`): each a descriptor that imports its sink's file and builds the sink
 * from the config, so only the configured kind is loaded (the MQTT client and the JWE code stay out
 * of a gateway writing to the file sink: BENCHMARKS.md). A new kind is a file here and one entry in
 * `sinkKinds`; the composition root picks by `relay.sink`.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import type { Clock } from '../clock.ts';
import type { EventBus } from '../event-bus.ts';
import type { Sink } from './sink.ts';

export interface SinkDeps {
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  /** Where the file sink writes (`<dataDir>/<fileSink.dir>`). */
  fileSinkDir: string;
  version: string;
  /** A cloud command arrived on the sink's channel (MQTT `down/commands`), as its compact JWS. */
  onCommand?: (jws: string) => void;
}

export interface SinkKind {
  readonly kind: GatewayConfig['relay']['sink'];
  /** Imports what the kind needs (a kind not configured is never imported) and builds its sink. */
  create(config: GatewayConfig, deps: SinkDeps): Sink | Promise<Sink>;
}

const envelopeFor = async (config: GatewayConfig) =>
  (await import('../crypto/cloud-envelope.ts')).createCloudEnvelope(config.cloud.publicKey ?? '');

export const fileSinkKind: SinkKind = {
  kind: 'file',
  create: async (_config, d) =>
    (await import('./file-sink.ts')).createFileSink({
      dir: d.fileSinkDir,
      clock: d.clock,
      logger: d.logger.child({ component: 'file-sink' }),
    }),
};

export const mqttSinkKind: SinkKind = {
  kind: 'mqtt',
  create: async (config, d) =>
    (await import('./mqtt-sink.ts')).createMqttSink({
      ...config.mqtt,
      tenantId: config.gateway.tenantId,
      gatewayId: config.gateway.id,
      ackTimeoutMs: config.relay.ackTimeoutMs,
      version: d.version,
      envelope: await envelopeFor(config),
      clock: d.clock,
      logger: d.logger.child({ component: 'sink:mqtt' }),
      bus: d.bus,
      onCommand: d.onCommand,
      // an enrolled data folder's device certificate, unless the config names a client certificate itself
      identity: config.mqtt.cert ? undefined : (await import('../identity/index.ts')).identityForSink(config, d),
    }),
};

export const httpsSinkKind: SinkKind = {
  kind: 'https',
  create: async (config, d) =>
    (await import('./https-sink.ts')).createHttpsSink({
      ...config.https,
      tenantId: config.gateway.tenantId,
      gatewayId: config.gateway.id,
      envelope: await envelopeFor(config),
      clock: d.clock,
    }),
};

export const sinkKinds: readonly SinkKind[] = [fileSinkKind, mqttSinkKind, httpsSinkKind];

/** The sink `relay.sink` names, from `kinds` (default: the built-in ones). */
export async function buildSink(config: GatewayConfig, deps: SinkDeps, kinds: readonly SinkKind[] = sinkKinds): Promise<Sink> {
  const k = kinds.find((x) => x.kind === config.relay.sink);
  if (!k) throw new Error(`relay.sink: no sink kind "${config.relay.sink}" (known: ${kinds.map((x) => x.kind).join(', ')})`);
  return k.create(config, deps);
}
