/**
 * The sink kinds (`relay.sink`): each a descriptor that builds its sink from the config. A new kind
 * is a file here and one line in `sinkKinds`; the composition root picks by `relay.sink`.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../../config/schema.ts';
import type { Clock } from '../clock.ts';
import { createCloudEnvelope } from '../crypto/cloud-envelope.ts';
import type { EventBus } from '../event-bus.ts';
import { createFileSink } from './file-sink.ts';
import { createHttpsSink } from './https-sink.ts';
import { createMqttSink } from './mqtt-sink.ts';
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
  create(config: GatewayConfig, deps: SinkDeps): Sink;
}

export const fileSinkKind: SinkKind = {
  kind: 'file',
  create: (_config, d) => createFileSink({ dir: d.fileSinkDir, clock: d.clock, logger: d.logger.child({ component: 'file-sink' }) }),
};

export const mqttSinkKind: SinkKind = {
  kind: 'mqtt',
  create: (config, d) =>
    createMqttSink({
      ...config.mqtt,
      tenantId: config.gateway.tenantId,
      gatewayId: config.gateway.id,
      ackTimeoutMs: config.relay.ackTimeoutMs,
      version: d.version,
      envelope: createCloudEnvelope(config.cloud.publicKey ?? ''),
      clock: d.clock,
      logger: d.logger.child({ component: 'sink:mqtt' }),
      bus: d.bus,
      onCommand: d.onCommand,
    }),
};

export const httpsSinkKind: SinkKind = {
  kind: 'https',
  create: (config, d) =>
    createHttpsSink({
      ...config.https,
      tenantId: config.gateway.tenantId,
      gatewayId: config.gateway.id,
      envelope: createCloudEnvelope(config.cloud.publicKey ?? ''),
      clock: d.clock,
    }),
};

export const sinkKinds: readonly SinkKind[] = [fileSinkKind, mqttSinkKind, httpsSinkKind];

/** The sink `relay.sink` names, from `kinds` (default: the built-in ones). */
export function buildSink(config: GatewayConfig, deps: SinkDeps, kinds: readonly SinkKind[] = sinkKinds): Sink {
  const k = kinds.find((x) => x.kind === config.relay.sink);
  if (!k) throw new Error(`relay.sink: no sink kind "${config.relay.sink}" (known: ${kinds.map((x) => x.kind).join(', ')})`);
  return k.create(config, deps);
}
