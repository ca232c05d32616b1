/** The MQTT sink against a real mosquitto and the reference cloud receiver. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { createMqttSink } from '../../../gateway/sinks/mqtt-sink.ts';
import { createCloudEnvelope } from '../../../gateway/crypto/cloud-envelope.ts';
import { systemClock } from '../../../gateway/clock.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { batchOf } from '../../../gateway/sinks/sink.ts';
import { deterministicId } from '../../../adapters/canonical/record-id.ts';
import { startMosquitto, type Broker } from '../../support/mosquitto.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { waitFor } from '../../support/net.ts';

const keys = makeCloudKeys();

function patient(n: number): CanonicalRecord {
  return {
    id: deterministicId('mqtt-test', String(n)), type: 'patient', schemaVersion: '1.0', op: 'upsert', tenantId: 't1', practiceId: 'p1', gatewayId: 'gw1',
    source: { system: 'PMS@X', adapter: 'hl7v2', sourceId: `X|${n}` }, occurredAt: '2026-11-25T10:00:00Z', observedAt: '2026-11-25T10:00:01Z',
    data: { identifiers: [{ system: 'X', value: String(n) }] },
  };
}

describe('MQTT sink', () => {
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  beforeAll(async () => {
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
  });
  afterAll(async () => { await cloud.stop(); await broker.stop(); });

  const makeSink = (ackTimeoutMs = 3000, gatewayId = 'gw1') => createMqttSink({
    url: broker.url, tenantId: 't1', gatewayId, rejectUnauthorized: true, sessionExpirySeconds: 600, keepaliveSeconds: 30, ackTimeoutMs, version: 'test',
    envelope: createCloudEnvelope(keys.publicPem), clock: systemClock, logger: createSilentLogger(), bus: createEventBus(),
  });

  it('delivers a batch as a JWE the cloud can open, and resolves on the cloud ack', async () => {
    const sink = makeSink();
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    const records = [patient(1), patient(2)];
    const res = await sink.deliver(batchOf('b1', records));
    expect(res.rejected).toEqual([]);
    expect(cloud.store.records.get(records[0].id)).toEqual(records[0]);
    await sink.stop();
  });

  it('publishes a retained online status with an offline last will', async () => {
    const sink = makeSink(3000, 'gw-status');
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    const probe = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const status = await new Promise<string>((resolve) => { probe.on('message', (_t, p) => resolve(p.toString())); void probe.subscribeAsync('ewml/v1/t1/gw-status/up/status'); });
    expect(JSON.parse(status)).toMatchObject({ state: 'online', gatewayId: 'gw-status' });
    await sink.stop();
    await probe.endAsync();
  });

  it('passes per-record rejections from the ack back to the relay', async () => {
    const sink = makeSink();
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    const bad = patient(3);
    cloud.controls.rejectIds.add(bad.id);
    const res = await sink.deliver(batchOf('b3', [patient(4), bad]));
    expect(res.rejected).toEqual([{ id: bad.id, reason: 'rejected by test control' }]);
    await sink.stop();
  });

  it('times out (ambiguous) when the cloud does not ack, and fails fast (transient) when the broker is gone', async () => {
    const sink = makeSink(300);
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    cloud.controls.dropAcks = true;
    await expect(sink.deliver(batchOf('b5', [patient(5)]))).rejects.toMatchObject({ code: 'GW_SINK_TIMEOUT', retry: 'ambiguous' });
    cloud.controls.dropAcks = false;
    await broker.stop();
    await waitFor(() => !sink.health().connected, 5000, 'disconnected');
    await expect(sink.deliver(batchOf('b6', [patient(6)]))).rejects.toMatchObject({ code: 'GW_SINK_UNREACHABLE', retry: 'transient' });
    await broker.start();
    await waitFor(() => sink.health().connected, 10_000, 'reconnected');
    await waitFor(() => cloud.client.connected, 10_000, 'cloud reconnected');
    const res = await sink.deliver(batchOf('b7', [patient(7)]));
    expect(res.rejected).toEqual([]);
    await sink.stop();
  });
});

describe('MQTT sink over TLS with a client certificate', () => {
  it('delivers through a broker that requires client certificates, and cannot connect without one', async () => {
    const { makeTestPki } = await import('../../support/tls.ts');
    const pki = makeTestPki();
    const broker = await startMosquitto({ tls: { ca: pki.ca, cert: pki.cert, key: pki.key, requireClientCert: true } });
    const cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey, ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
    const base = {
      url: broker.url, tenantId: 't1', gatewayId: 'gw-tls', rejectUnauthorized: true, sessionExpirySeconds: 600, keepaliveSeconds: 30, ackTimeoutMs: 3000, version: 'test',
      envelope: createCloudEnvelope(keys.publicPem), clock: systemClock, logger: createSilentLogger(), bus: createEventBus(), ca: pki.ca,
    };
    const withCert = createMqttSink({ ...base, cert: pki.clientCert, key: pki.clientKey });
    const withoutCert = createMqttSink({ ...base, gatewayId: 'gw-nocert' });
    try {
      await withCert.start();
      await waitFor(() => withCert.health().connected, 10_000, 'TLS connection');
      const r = patient(99);
      expect(await withCert.deliver(batchOf('tls-1', [r]))).toEqual({ rejected: [] });
      expect(cloud.store.records.get(r.id)).toEqual(r);
      await withoutCert.start();
      await new Promise((res) => setTimeout(res, 1500));
      expect(withoutCert.health().connected).toBe(false);
      await expect(withoutCert.deliver(batchOf('tls-2', [patient(98)]))).rejects.toMatchObject({ code: 'GW_SINK_UNREACHABLE' });
    } finally {
      await withCert.stop(); await withoutCert.stop(); await cloud.stop(); await broker.stop();
    }
  });
});
