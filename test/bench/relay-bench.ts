/**
 * Relay throughput to mosquitto: an outbox pre-filled with sealed records drained by the relay
 * (unseal → JWE per batch → QoS 1 publish → the reference cloud decrypts and acks → rows deleted),
 * beside raw mqtt.js publishing the same JWE batch payloads at QoS 1 to the same broker. The
 * reference cloud runs in its own process, as the real one runs elsewhere.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { createCloudEnvelope } from '../../gateway/crypto/cloud-envelope.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createEventBus } from '../../gateway/event-bus.ts';
import { createSilentLogger } from '../../gateway/logger.ts';
import { createMetrics } from '../../gateway/metrics.ts';
import { createSqliteOutbox } from '../../gateway/outbox/sqlite-outbox.ts';
import { BUNDLE_SEPARATOR, bundleId, type SealedRecord } from '../../gateway/outbox/outbox.ts';
import { createRelayWorker } from '../../gateway/relay/relay-worker.ts';
import { createMqttSink } from '../../gateway/sinks/mqtt-sink.ts';
import { createHl7Codec } from '../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';
import type { SourceCodec } from '../../adapters/contracts.ts';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { startMosquitto } from '../support/mosquitto.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { fork } from 'node:child_process';

export interface RelayBenchResult {
  records: number;
  relayRate: number;
  bundledRate: number;
  rawRate: number;
  rawWindowRate: number;
  rawCloudRate: number;
  ratio: number;
  windowRatio: number;
  relayCpuShare: number;
  bundledCpuShare: number;
  batchSize: number;
  maxInFlight: number;
}

export async function relayBench(o: { records: number; batchSize: number; maxInFlight: number }): Promise<RelayBenchResult> {
  const broker = await startMosquitto();
  const keys = makeCloudKeys();
  const cloud = fork(
    new URL('./servers/cloud-server.ts', import.meta.url).pathname,
    [broker.url, Buffer.from(keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()).toString('base64')],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  await new Promise<void>((resolve) => cloud.once('message', () => resolve()));
  const cloudCount = () =>
    new Promise<{ records: number; invalid: number }>((resolve) => {
      cloud.once('message', (m) => resolve(m as { records: number; invalid: number }));
      cloud.send('count');
    });
  const envelope = createCloudEnvelope(keys.publicPem);
  const sealer = createRecordSealer(Buffer.alloc(32, 3));
  const stage = createMapStage({
    validator: createRecordValidator(),
    clock: systemClock,
    identity: { tenantId: 'bench', practiceId: 'p', gatewayId: 'gw-bench' },
  });
  const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
  const records: CanonicalRecord[] = [];
  // per message, as intake groups them into bundles (an ADT^A04 here: patient and provider)
  const messages: CanonicalRecord[][] = [];
  for (let i = 0; records.length < o.records; i++) {
    const m = stage.preview(codec, adtA04({ id: `R${i}`, mrn: `M${i % 5000}` })).records.slice(0, o.records - records.length);
    messages.push(m);
    records.push(...m);
  }
  try {
    // raw mqtt.js: the same batches, pre-encrypted, published at QoS 1; done when every PUBACK is in
    const payloads: string[] = [];
    for (let i = 0; i < records.length; i += o.batchSize) {
      const batch = records.slice(i, i + o.batchSize);
      payloads.push(
        await envelope.encrypt(
          Buffer.from(
            JSON.stringify({ batchId: `raw${i}`, gatewayId: 'raw', tenantId: 'bench', sentAt: new Date().toISOString(), records: batch }),
          ),
        ),
      );
    }
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'raw-bench' });
    (raw.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const t0 = performance.now();
    await Promise.all(payloads.map((p) => raw.publishAsync('ewml/v1/bench/raw/up/records', p, { qos: 1 })));
    const rawSeconds = (performance.now() - t0) / 1000;
    // the same, but with the relay's window: at most maxInFlight batches awaiting their PUBACK
    const t0w = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: o.maxInFlight }, async () => {
        while (next < payloads.length) await raw.publishAsync('ewml/v1/bench/raw/up/records', payloads[next++], { qos: 1 });
      }),
    );
    const rawWindowSeconds = (performance.now() - t0w) / 1000;
    // the same window, but each batch waits for the reference cloud's ack (decrypt, validate every
    // record, ack on down/acks), as the relay's batches do: the protocol's ceiling without an outbox
    const acks = new Map<string, () => void>();
    await raw.subscribeAsync('ewml/v1/bench/raw/down/acks', { qos: 1 });
    raw.on('message', (_t, m) => {
      const a = JSON.parse(m.toString()) as { batchId: string };
      acks.get(a.batchId)?.();
      acks.delete(a.batchId);
    });
    const t0c = performance.now();
    let nextc = 0;
    await Promise.all(
      Array.from({ length: o.maxInFlight }, async () => {
        while (nextc < payloads.length) {
          const k = nextc++;
          const acked = new Promise<void>((r) => acks.set(`raw${k * o.batchSize}`, r));
          await raw.publishAsync('ewml/v1/bench/raw/up/records', payloads[k], { qos: 1 });
          await acked;
        }
      }),
    );
    const rawCloudSeconds = (performance.now() - t0c) / 1000;
    await raw.endAsync();
    await new Promise((r) => setTimeout(r, 1000));

    // the relay: a real SQLite outbox, pre-filled, drained to the cloud's acks — once with a row per
    // record, once with the rows intake writes (a bundle per message and patient)
    const drain = async (rows: SealedRecord[], label: string): Promise<{ seconds: number; cpuShare: number }> => {
      const outbox = createSqliteOutbox({
        file: join(mkdtempSync(join(tmpdir(), 'ewml-bench-')), 'outbox.db'),
        maxBytes: 1 << 30,
        clock: systemClock,
      });
      await outbox.open();
      for (let i = 0; i < rows.length; i += 1000) await outbox.enqueue({ records: rows.slice(i, i + 1000) });
      const bus = createEventBus();
      const sink = createMqttSink({
        url: broker.url,
        tenantId: 'bench',
        gatewayId: `gw-bench-${label}`,
        rejectUnauthorized: true,
        sessionExpirySeconds: 600,
        keepaliveSeconds: 30,
        ackTimeoutMs: 30_000,
        version: 'bench',
        envelope,
        clock: systemClock,
        logger: createSilentLogger(),
        bus,
      });
      await sink.start();
      while (!sink.health().connected) await new Promise((r) => setTimeout(r, 20));
      const relay = createRelayWorker({
        outbox,
        sink,
        sealer,
        clock: systemClock,
        logger: createSilentLogger(),
        bus,
        metrics: createMetrics(),
        batchSize: o.batchSize,
        maxInFlight: o.maxInFlight,
        backoffInitialMs: 100,
        backoffMaxMs: 1000,
        idlePollMs: 50,
      });
      let delivered = 0;
      const done = new Promise<void>((resolve) =>
        bus.on('relay.delivered', (e) => {
          delivered += e.records;
          if (delivered >= records.length) resolve();
        }),
      );
      const t1 = performance.now();
      const cpu0 = process.cpuUsage();
      await relay.start();
      await Promise.race([done, new Promise((r) => setTimeout(r, 120_000).unref())]);
      if (delivered < records.length)
        process.stderr.write(
          `relay bench (${label}): only ${delivered} delivered; outbox ${JSON.stringify(outbox.stats())}; relay ${JSON.stringify(relay.health())}; sink ${JSON.stringify(sink.health())}; cloud ${JSON.stringify(await cloudCount())}\n`,
        );
      const seconds = (performance.now() - t1) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const left = outbox.stats().pending + outbox.stats().inFlight;
      await relay.stop();
      await sink.stop();
      await outbox.close();
      if (left) throw new Error(`relay did not drain (${label}): ${left} left`);
      return { seconds, cpuShare: (cpu.user + cpu.system) / 1e6 / seconds };
    };
    const sealOne = (r: CanonicalRecord): SealedRecord => ({
      id: r.id,
      type: r.type,
      partitionKey: `patient:${r.source.sourceId}`,
      sealed: sealer.seal(r.id, Buffer.from(JSON.stringify(r))),
    });
    const single = await drain(records.map(sealOne), 'rows');
    await new Promise((r) => setTimeout(r, 500));
    const bundles = messages.map((m): SealedRecord => {
      if (m.length === 1) return sealOne(m[0]);
      const recordIds = m.map((r) => r.id);
      const id = bundleId(recordIds);
      return {
        id,
        type: 'bundle',
        partitionKey: `patient:${m[0].source.sourceId}`,
        sealed: sealer.seal(id, Buffer.from(m.map((r) => JSON.stringify(r)).join(BUNDLE_SEPARATOR))),
        recordIds,
      };
    });
    const bundled = await drain(bundles, 'bundles');
    const relaySeconds = single.seconds;
    const relayCpuShare = single.cpuShare;
    const rawRate = records.length / rawSeconds;
    const relayRate = records.length / relaySeconds;
    const bundledRate = records.length / bundled.seconds;
    const rawWindowRate = records.length / rawWindowSeconds;
    const rawCloudRate = records.length / rawCloudSeconds;
    return {
      records: records.length,
      relayRate,
      bundledRate,
      bundledCpuShare: bundled.cpuShare,
      rawRate,
      rawWindowRate,
      rawCloudRate,
      ratio: relayRate / rawRate,
      windowRatio: relayRate / rawWindowRate,
      relayCpuShare,
      batchSize: o.batchSize,
      maxInFlight: o.maxInFlight,
    };
  } finally {
    cloud.send('stop');
    await new Promise((r) => cloud.once('exit', r));
    await broker.stop();
  }
}
