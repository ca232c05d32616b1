/** The MQTT sink against a real mosquitto and the reference cloud receiver. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { brokerAddress, createMqttSink } from '../../../gateway/sinks/mqtt-sink.ts';
import { publishPacketBytes } from '../../../gateway/sinks/mqtt-packet-plan.ts';
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
    id: deterministicId('mqtt-test', String(n)),
    type: 'patient',
    schemaVersion: '1.0',
    op: 'upsert',
    tenantId: 't1',
    practiceId: 'p1',
    gatewayId: 'gw1',
    source: { system: 'PMS@X', adapter: 'hl7v2', sourceId: `X|${n}` },
    occurredAt: '2026-11-25T10:00:00Z',
    observedAt: '2026-11-25T10:00:01Z',
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
  afterAll(async () => {
    await cloud.stop();
    await broker.stop();
  });

  const makeSink = (ackTimeoutMs = 3000, gatewayId = 'gw1') =>
    createMqttSink({
      url: broker.url,
      tenantId: 't1',
      gatewayId,
      rejectUnauthorized: true,
      sessionExpirySeconds: 600,
      keepaliveSeconds: 30,
      ackTimeoutMs,
      version: 'test',
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      logger: createSilentLogger(),
      bus: createEventBus(),
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
    const status = await new Promise<string>((resolve) => {
      probe.on('message', (_t, p) => resolve(p.toString()));
      void probe.subscribeAsync('ewml/v1/t1/gw-status/up/status');
    });
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
    const cloud = await startMqttReferenceCloud({
      url: broker.url,
      privateKey: keys.privateKey,
      ca: pki.ca,
      cert: pki.clientCert,
      key: pki.clientKey,
    });
    const base = {
      url: broker.url,
      tenantId: 't1',
      gatewayId: 'gw-tls',
      rejectUnauthorized: true,
      sessionExpirySeconds: 600,
      keepaliveSeconds: 30,
      ackTimeoutMs: 3000,
      version: 'test',
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      logger: createSilentLogger(),
      bus: createEventBus(),
      ca: pki.ca,
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
      await withCert.stop();
      await withoutCert.stop();
      await cloud.stop();
      await broker.stop();
    }
  });
});

describe('MQTT sink under a broker maximum packet size', () => {
  const LIMIT = 16 * 1024;
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  beforeAll(async () => {
    broker = await startMosquitto({ maxPacketSize: LIMIT });
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
  });
  afterAll(async () => {
    await cloud.stop();
    await broker.stop();
  });

  /** A patient record whose JSON is about `bytes` long (an address line pads it). */
  const sized = (n: number, bytes: number): CanonicalRecord => ({
    ...patient(n),
    id: deterministicId('mqtt-size', String(n)),
    data: { identifiers: [{ system: 'X', value: String(n) }], addresses: [{ lines: ['a'.repeat(bytes)] }] },
  });

  const sinkFor = (gatewayId: string, bus = createEventBus(), maxPacketBytes?: number, url = broker.url) =>
    createMqttSink({
      url,
      tenantId: 't1',
      gatewayId,
      rejectUnauthorized: true,
      sessionExpirySeconds: 600,
      keepaliveSeconds: 30,
      ackTimeoutMs: 3000,
      version: 'test',
      maxPacketBytes,
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      logger: createSilentLogger(),
      bus,
    });

  it('sizes packets as the broker does: a publish of exactly the limit is taken, a larger one closes the connection', async () => {
    const shape = { topic: 'ewml/v1/t1/gw-edge/up/records', contentType: 'application/jose', userProperties: { bid: 'x'.repeat(36) } };
    const payloadFor = (packetBytes: number) => {
      let n = packetBytes - 1000;
      while (publishPacketBytes(shape, n) < packetBytes) n++;
      return n;
    };
    const exact = payloadFor(LIMIT);
    expect(publishPacketBytes(shape, exact)).toBe(LIMIT);
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    const opts = { qos: 1 as const, properties: { contentType: shape.contentType, userProperties: shape.userProperties } };
    await c.publishAsync(shape.topic, Buffer.alloc(exact, 0x61), opts);
    expect(c.connected).toBe(true);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    // mosquitto 2.0 counts a packet without its remaining-length bytes, so it lets up to 3 bytes
    // more through than MQTT v5 §3.1.2.11.4's whole-packet count, which the planner keeps to (the
    // stricter reading; a managed broker may apply it): 4 bytes over is refused by both
    c.publish(shape.topic, Buffer.alloc(exact + 4, 0x61), opts);
    await closed;
    await c.endAsync(true);
  });

  it('splits a batch larger than the announced maximum into publishes under it, resolves when all are acked, and is never disconnected', async () => {
    const bus = createEventBus();
    let disconnects = 0;
    bus.on('sink.disconnected', () => {
      disconnects++;
    });
    const sink = sinkFor('gw-pkt', bus);
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    expect(sink.health().detail?.maxPacketBytes).toBe(LIMIT);
    // 40 records of ~1.5 KB: ~60 KB of JSON, ~80 KB sealed — five times the limit
    const records = Array.from({ length: 40 }, (_, k) => sized(1000 + k, 1500));
    const res = await sink.deliver(batchOf('big-1', records));
    expect(res.rejected).toEqual([]);
    for (const r of records) expect(cloud.store.records.get(r.id)).toEqual(r);
    expect(cloud.store.duplicates).toBe(0);
    expect(disconnects).toBe(0);
    expect(sink.health().detail?.splitBatches).toBe(1);
    expect(sink.health().detail?.published).toBeGreaterThan(4);
    await sink.stop();
  });

  it('refuses a record too large for any packet (GW_SINK_REJECTED reason names the limit) and delivers the rest of its batch', async () => {
    const sink = sinkFor('gw-pkt-big');
    await sink.start();
    await waitFor(() => sink.health().connected, 5000, 'connected');
    const small = [sized(2000, 200), sized(2001, 200)];
    const huge = sized(2002, 20_000);
    const res = await sink.deliver(batchOf('big-2', [small[0], huge, small[1]]));
    expect(res.rejected).toHaveLength(1);
    expect(res.rejected[0].id).toBe(huge.id);
    expect(res.rejected[0].reason).toMatch(
      /^larger than the broker's maximum packet size 16384 bytes \(this record alone needs a \d+-byte packet\); raise the broker's limit \(or mqtt\.maxPacketBytes\), then replay this dead letter$/,
    );
    expect(cloud.store.records.has(huge.id)).toBe(false);
    for (const r of small) expect(cloud.store.records.get(r.id)).toEqual(r);
    expect(sink.health().detail?.oversized).toBe(1);
    await sink.stop();
  });
});

describe('MQTT sink with a configured maximum packet size (a broker that announces none)', () => {
  it('keeps every publish within mqtt.maxPacketBytes and delivers the exact record set', async () => {
    const broker = await startMosquitto();
    const cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    const probe = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const sizes: number[] = [];
    probe.on('message', (_t, p) => sizes.push(p.length));
    await probe.subscribeAsync('ewml/v1/t1/gw-cfg/up/records', { qos: 1 });
    const sink = createMqttSink({
      url: broker.url,
      tenantId: 't1',
      gatewayId: 'gw-cfg',
      rejectUnauthorized: true,
      sessionExpirySeconds: 600,
      keepaliveSeconds: 30,
      ackTimeoutMs: 3000,
      version: 'test',
      maxPacketBytes: 4096,
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      logger: createSilentLogger(),
      bus: createEventBus(),
    });
    try {
      await sink.start();
      await waitFor(() => sink.health().connected, 5000, 'connected');
      expect(sink.health().detail?.maxPacketBytes).toBe(4096);
      const records = Array.from({ length: 30 }, (_, k) => ({
        ...patient(3000 + k),
        data: { identifiers: [{ system: 'X', value: String(k) }], addresses: [{ lines: ['b'.repeat(600)] }] },
      }));
      expect(await sink.deliver(batchOf('cfg-1', records))).toEqual({ rejected: [] });
      expect([...cloud.store.records.keys()].sort()).toEqual(records.map((r) => r.id).sort());
      await waitFor(() => sizes.length === sink.health().detail?.published, 5000, 'probe saw every publish');
      // the JWE alone must leave room for the topic and properties within the 4096-byte packet
      const topicAndProps = 'ewml/v1/t1/gw-cfg/up/records'.length + 'application/jose'.length + 36 + 20;
      expect(sizes.length).toBeGreaterThan(5);
      for (const s of sizes) expect(s + topicAndProps).toBeLessThanOrEqual(4096);
    } finally {
      await sink.stop();
      await probe.endAsync();
      await cloud.stop();
      await broker.stop();
    }
  });
});

describe('the broker URL as connect options (parsed with the WHATWG URL API, not url.parse: no DEP0169 warning)', () => {
  it('keeps the scheme, host, port and a WebSocket path; fills in the default port; refuses another scheme', () => {
    expect(brokerAddress('mqtts://broker.example:8884')).toEqual({ protocol: 'mqtts', hostname: 'broker.example', port: 8884 });
    expect(brokerAddress('mqtt://[::1]')).toEqual({ protocol: 'mqtt', hostname: '::1', port: 1883 });
    expect(brokerAddress('wss://iot.example/mqtt?x=1')).toEqual({ protocol: 'wss', hostname: 'iot.example', port: 443, path: '/mqtt?x=1' });
    expect(() => brokerAddress('http://broker.example')).toThrow('the scheme must be mqtt, mqtts, ws or wss');
  });
});
