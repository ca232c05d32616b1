/**
 * The MQTT sink against the Sink contract: a real mosquitto on loopback and the reference cloud
 * acking on down/acks (it can hold its acks, and refuse ids in them).
 */
import { afterAll } from 'vitest';
import { systemClock } from '../../gateway/clock.ts';
import { createCloudEnvelope } from '../../gateway/crypto/cloud-envelope.ts';
import { createEventBus } from '../../gateway/event-bus.ts';
import { createMqttSink } from '../../gateway/sinks/mqtt-sink.ts';
import type { RecordBatch } from '../../gateway/sinks/sink.ts';
import pino from 'pino';
import { startMqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { waitFor } from '../support/net.ts';
import { fedRecord } from '../support/record-feed.ts';
import { sinkContract } from './sink-contract.ts';

const keys = makeCloudKeys();
let broker: Promise<Broker> | undefined;
const mosquitto = () => (broker ??= startMosquitto());
afterAll(async () => {
  if (broker) await (await broker).stop();
});
let made = 0;
let gateways = 0;

sinkContract({
  name: 'MQTT sink (mosquitto, reference cloud)',
  kind: 'mqtt',
  beforeStart: 'refuses',
  atStop: 'rejects',
  restartable: true,
  batch(n) {
    const recs = Array.from({ length: n }, (_, i) =>
      fedRecord({ tag: `mqtt-contract-${++made}`, tenantId: 't-contract', gatewayId: 'gw-contract', patient: i, seq: 1 }),
    );
    return { batchId: `b-mqtt-${made}`, ids: recs.map((r) => r.id), json: recs.map((r) => r.json) } satisfies RecordBatch;
  },
  async make() {
    const b = await mosquitto();
    const cloud = await startMqttReferenceCloud({ url: b.url, privateKey: keys.privateKey, clientId: `ewml-cloud-contract-${++gateways}` });
    const sink = createMqttSink({
      url: b.url,
      tenantId: 't-contract',
      gatewayId: `gw-contract-${gateways}`,
      rejectUnauthorized: true,
      sessionExpirySeconds: 60,
      keepaliveSeconds: 30,
      ackTimeoutMs: 30_000,
      version: 'contract',
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      bus: createEventBus(),
    });
    return {
      sink,
      ready: () => waitFor(() => sink.health().connected, 10_000, 'the MQTT sink connected'),
      async received() {
        return new Set(cloud.store.records.keys());
      },
      stall() {
        cloud.controls.dropAcks = true;
        return {
          release: () => {
            cloud.controls.dropAcks = false;
          },
        };
      },
      refuse(ids) {
        for (const id of ids) cloud.controls.rejectIds.add(id);
      },
      async cleanup() {
        await sink.stop();
        await cloud.stop();
      },
    };
  },
});
