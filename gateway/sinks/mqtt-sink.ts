/**
 * The MQTT v5 sink (mqtt.js). Persistent session (clean start off, session expiry), QoS 1.
 * Topics per ARCHITECTURE.md "Cloud contract":
 *   up   ewml/v1/{tenant}/{gateway}/up/records   one JWE per batch
 *   up   ewml/v1/{tenant}/{gateway}/up/status    retained; last will `offline`
 *   down ewml/v1/{tenant}/{gateway}/down/acks    {batchId, accepted[], rejected[]}
 * A batch counts as delivered only on its ack from the cloud on `down/acks` — a PUBACK only says
 * the broker has it. No ack within `ackTimeoutMs` is ambiguous: the relay resends, the cloud
 * dedupes by record id.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { CloudEnvelope } from '../crypto/cloud-envelope.ts';
import { GatewayError } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import { envelopeJson, type BatchAck, type DeliveryResult, type RecordBatch, type Sink } from './sink.ts';

export interface MqttSinkOptions {
  url: string;
  tenantId: string;
  gatewayId: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  sessionExpirySeconds: number;
  keepaliveSeconds: number;
  ackTimeoutMs: number;
  version: string;
  envelope: CloudEnvelope;
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  /** Called with each message on `down/commands` (a JWS; verified by the command processor). */
  onCommand?: (jws: string) => void;
}

export function mqttTopics(tenantId: string, gatewayId: string) {
  const base = `ewml/v1/${tenantId}/${gatewayId}`;
  return { records: `${base}/up/records`, status: `${base}/up/status`, health: `${base}/up/health`, acks: `${base}/down/acks`, commands: `${base}/down/commands` };
}

interface Waiter { resolve: (r: DeliveryResult) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }

export function createMqttSink(opts: MqttSinkOptions): Sink {
  const topics = mqttTopics(opts.tenantId, opts.gatewayId);
  const waiters = new Map<string, Waiter>();
  let client: MqttClient | undefined;
  let lastError = '';
  let offOutcome: (() => void) | undefined;
  const counts = { published: 0, acks: 0, unknownAcks: 0 };
  const status = (state: string) => JSON.stringify({ state, gatewayId: opts.gatewayId, version: opts.version, at: new Date(opts.clock.now()).toISOString() });

  function onAck(payload: Buffer): void {
    let ack: BatchAck;
    try { ack = JSON.parse(payload.toString('utf8')) as BatchAck; } catch { opts.logger.warn('unparseable ack on down/acks ignored'); return; }
    const w = typeof ack.batchId === 'string' ? waiters.get(ack.batchId) : undefined;
    if (!w) { counts.unknownAcks++; return; }
    counts.acks++;
    waiters.delete(ack.batchId);
    clearTimeout(w.timer);
    w.resolve({ rejected: Array.isArray(ack.rejected) ? ack.rejected : [] });
  }

  return {
    kind: 'mqtt',
    async start() {
      if (client) return;
      const c = mqtt.connect(opts.url, {
        protocolVersion: 5,
        clientId: `ewml-${opts.tenantId}-${opts.gatewayId}`,
        clean: false,
        properties: { sessionExpiryInterval: opts.sessionExpirySeconds },
        keepalive: opts.keepaliveSeconds,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        username: opts.username,
        password: opts.password,
        ca: opts.ca, cert: opts.cert, key: opts.key,
        rejectUnauthorized: opts.rejectUnauthorized,
        will: { topic: topics.status, payload: Buffer.from(JSON.stringify({ state: 'offline', gatewayId: opts.gatewayId })), qos: 1, retain: true },
      });
      client = c;
      c.on('connect', (connack) => {
        // mqtt.js leaves Nagle on; with small acks and PUBACKs that costs ~40 ms per round trip
        (c.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
        lastError = '';
        opts.bus.emit('sink.connected', { sink: 'mqtt' });
        opts.logger.info({ sessionPresent: connack.sessionPresent }, 'MQTT connected');
        c.subscribe(opts.onCommand ? [topics.acks, topics.commands] : [topics.acks], { qos: 1 }, (err) => { if (err) opts.logger.error({ err }, 'subscribe to down/ topics failed'); });
        c.publish(topics.status, status('online'), { qos: 1, retain: true });
      });
      c.on('message', (topic, payload) => {
        if (topic === topics.acks) onAck(payload);
        else if (topic === topics.commands) opts.onCommand?.(payload.toString('utf8'));
      });
      // command outcomes go on up/status, not retained (the retained message stays the online state)
      offOutcome = opts.bus.on('command.outcome', (e) => { if (c.connected) c.publish(topics.status, JSON.stringify({ type: 'command-outcome', ...e, at: new Date(opts.clock.now()).toISOString() }), { qos: 1 }); });
      c.on('close', () => { if (!lastError) lastError = 'disconnected'; opts.bus.emit('sink.disconnected', { sink: 'mqtt', reason: lastError }); });
      c.on('error', (err) => { lastError = (err as NodeJS.ErrnoException).code ?? err.message; opts.logger.warn({ code: lastError }, 'MQTT error'); });
    },
    async stop() {
      const c = client;
      if (!c) return;
      client = undefined;
      offOutcome?.();
      for (const [id, w] of waiters) { clearTimeout(w.timer); w.reject(new GatewayError('GW_SINK_UNREACHABLE', 'sink stopped')); waiters.delete(id); }
      if (c.connected) await new Promise<void>((resolve) => c.publish(topics.status, JSON.stringify({ state: 'offline', gatewayId: opts.gatewayId }), { qos: 1, retain: true }, () => resolve()));
      await c.endAsync();
    },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      const c = client;
      if (!c || !c.connected) throw new GatewayError('GW_SINK_UNREACHABLE', `MQTT broker not connected${lastError ? ` (${lastError})` : ''}`);
      const env = envelopeJson(batch, { gatewayId: opts.gatewayId, tenantId: opts.tenantId, sentAt: new Date(opts.clock.now()).toISOString() });
      const jwe = await opts.envelope.encrypt(Buffer.from(env), { bid: batch.batchId });
      const prior = waiters.get(batch.batchId);
      if (prior) { clearTimeout(prior.timer); prior.reject(new GatewayError('GW_SINK_TIMEOUT', 'superseded by a resend')); }
      const acked = new Promise<DeliveryResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(batch.batchId);
          reject(new GatewayError('GW_SINK_TIMEOUT', `no ack for batch within ${opts.ackTimeoutMs} ms`));
        }, opts.ackTimeoutMs);
        waiters.set(batch.batchId, { resolve, reject, timer });
      });
      c.publish(topics.records, jwe, { qos: 1, properties: { contentType: 'application/jose', userProperties: { bid: batch.batchId } } }, (err) => {
        if (!err) { counts.published++; return; }
        const w = waiters.get(batch.batchId);
        if (w) { waiters.delete(batch.batchId); clearTimeout(w.timer); w.reject(new GatewayError('GW_SINK_UNREACHABLE', 'publish failed', { cause: err })); }
      });
      return acked;
    },
    health: () => ({ connected: client?.connected ?? false, detail: { ...counts, awaitingAck: waiters.size, ...(lastError ? { lastError } : {}) } }),
  };
}
