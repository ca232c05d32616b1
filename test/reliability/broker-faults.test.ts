/**
 * Issue 12, broker faults: a real gateway (SQLite outbox, relay, MQTT sink) reaches a real mosquitto
 * through a TCP fault proxy, and the reference cloud (on the broker directly) acks. The proxy cuts
 * every connection in the middle of batches, stalls them past the ack timeout; the cloud delays
 * its acks past `relay.ackTimeoutMs`, sends each twice, or sends none; mosquitto is stopped with
 * SIGTERM and killed with SIGKILL during delivery. Each case asserts, as exact sets, that every
 * record the outbox accepted (acknowledged to its source) is at the cloud — missing 0 — counts and
 * prints the duplicates, and a guard on the outbox's ack checks every row it deletes was acked by
 * the cloud first.
 */
import type { KeyObject } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import type { BatchAck } from '../../gateway/sinks/sink.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { waitFor } from '../support/net.ts';
import { enqueueEach, fedKey, fedRecord, type FedRecord } from '../support/record-feed.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { report, scale } from './scale.ts';

const TENANT = 't-bf';
const GATEWAY = 'gw-bf';
const ACK_TIMEOUT_MS = 800;
const RECORDS = scale(1500, 40_000);
const PATIENTS = scale(60, 2000);
const DRAIN_MS = scale(90_000, 600_000);

const keys = makeCloudKeys();

describe('broker faults: cut connections, stalls, late, doubled and missing acks, broker restarts', () => {
  let broker: Broker;
  let proxy: FaultProxy;
  let cloud: MqttReferenceCloud;
  let h: Harness;
  /** Record ids the cloud has published an ack for (set before the ack leaves the cloud). */
  const ackedByCloud = new Set<string>();
  /** Rows the outbox was asked to delete that the cloud had not acked: must stay 0. */
  const earlyDeletes: string[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    proxy = await startFaultProxy({ targetPort: broker.port });
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey as KeyObject });
    // every ack the cloud sends is noted before it is published, so the guard below never races it
    const publish = cloud.client.publish.bind(cloud.client) as (...a: unknown[]) => unknown;
    (cloud.client as unknown as { publish: (...a: unknown[]) => unknown }).publish = (
      topic: unknown,
      message: unknown,
      ...rest: unknown[]
    ) => {
      if (typeof topic === 'string' && topic.endsWith('/down/acks'))
        for (const id of (JSON.parse(String(message)) as BatchAck).accepted ?? []) ackedByCloud.add(id);
      return publish(topic, message, ...rest);
    };
    h = await startHarness(
      {
        gateway: { id: GATEWAY, tenantId: TENANT },
        relay: { sink: 'mqtt', batchSize: 100, maxInFlight: 4, ackTimeoutMs: ACK_TIMEOUT_MS, lingerMs: 5 },
        mqtt: { url: proxy.url('mqtt'), keepaliveSeconds: 5 },
        cloud: { publicKey: keys.publicPem },
      },
      { logLevel: 'warn' },
    );
    const outbox = h.gw.parts.outbox;
    const ack = outbox.ack.bind(outbox);
    outbox.ack = async (ids) => {
      for (const id of ids) if (!ackedByCloud.has(id)) earlyDeletes.push(id);
      return ack(ids);
    };
    await waitFor(() => h.gw.parts.sink.health().connected, 10_000, 'gateway connected through the proxy');
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await proxy?.stop();
    await broker?.stop();
  });

  // a case that fails leaves no fault behind for the next one
  afterEach(() => {
    Object.assign(cloud.controls, { dropAcks: false, ackDelayMs: 0, ackCopies: 1 });
    proxy.setMode('pass');
  });

  const rows = () => {
    const s = h.gw.parts.outbox.stats();
    return s.pending + s.inFlight + s.waitingRetry;
  };

  function recordsFor(tag: string, n = RECORDS): FedRecord[] {
    return Array.from({ length: n }, (_, k) =>
      fedRecord({ tag, tenantId: TENANT, gatewayId: GATEWAY, patient: k % PATIENTS, seq: Math.floor(k / PATIENTS) }),
    );
  }

  /** What the cloud holds of one case, as the exact comparison needs it. */
  function atCloud(tag: string): { ids: Set<string>; outOfOrder: number } {
    const ids = new Set<string>();
    const lastSeq = new Map<number, number>();
    let outOfOrder = 0;
    for (const id of cloud.store.order) {
      const k = fedKey(cloud.store.records.get(id) as CanonicalRecord & { source: { messageId?: string } });
      if (!k || k.tag !== tag) continue;
      ids.add(id);
      if ((lastSeq.get(k.patient) ?? -1) > k.seq) outOfOrder++;
      lastSeq.set(k.patient, k.seq);
    }
    return { ids, outOfOrder };
  }

  /** Waits until every accepted record is at the cloud and the outbox is empty; asserts the sets are equal. */
  async function settle(
    tag: string,
    accepted: string[],
    duplicatesBefore: number,
  ): Promise<{ missing: number; duplicates: number; outOfOrder: number }> {
    const want = new Set(accepted);
    await waitFor(
      () => rows() === 0 && [...want].every((id) => cloud.store.records.has(id)),
      DRAIN_MS,
      `${tag}: every accepted record at the cloud and the outbox empty`,
    );
    const got = atCloud(tag);
    const missing = [...want].filter((id) => !got.ids.has(id)).length;
    const extra = [...got.ids].filter((id) => !want.has(id)).length;
    expect(missing).toBe(0);
    expect(extra).toBe(0);
    expect(got.ids.size).toBe(accepted.length);
    expect(earlyDeletes).toEqual([]);
    return { missing, duplicates: cloud.store.duplicates - duplicatesBefore, outOfOrder: got.outOfOrder };
  }

  it(
    'connections cut in the middle of batches, again and again: every accepted record at the cloud, no row deleted before its ack',
    async () => {
      const tag = 'cut';
      const dup0 = cloud.store.duplicates;
      const cuts0 = proxy.stats().cuts;
      const CUTS = scale(8, 80);
      const records = recordsFor(tag);
      const chunk = Math.ceil(RECORDS / CUTS);
      const accepted: string[] = [];
      let cutsInFlight = 0;
      // a chunk in, then every connection cut as soon as the relay has batches in flight on a live
      // connection; the next chunk goes in while the sink reconnects
      for (let k = 0; k < CUTS; k++) {
        accepted.push(...(await enqueueEach(h.gw.parts.outbox, records.slice(k * chunk, (k + 1) * chunk))));
        const inFlight = await waitFor(
          () => h.gw.parts.sink.health().connected && h.gw.parts.relay.health().inFlightBatches > 0,
          10_000,
          'a batch in flight',
        ).then(
          () => true,
          () => false,
        );
        if (inFlight) cutsInFlight++;
        proxy.cutAll();
      }
      expect(accepted).toHaveLength(RECORDS);
      const r = await settle(tag, accepted, dup0);
      const cuts = proxy.stats().cuts - cuts0;
      expect(cutsInFlight).toBe(CUTS);
      report('broker-faults/cut-mid-batch', {
        records: RECORDS,
        cuts: CUTS,
        cutWithBatchesInFlight: cutsInFlight,
        connectionsCut: cuts,
        missing: r.missing,
        duplicates: r.duplicates,
        outOfOrderFirstCopies: r.outOfOrder,
        earlyDeletes: earlyDeletes.length,
      });
    },
    DRAIN_MS + 120_000,
  );

  it(
    'a stalled connection (no byte moves) past the ack timeout: the batch is resent once it moves again, nothing lost',
    async () => {
      const tag = 'stall';
      const dup0 = cloud.store.duplicates;
      const published0 = Number(h.gw.parts.sink.health().detail?.published ?? 0);
      // the connection stays up and says nothing: the batches go into it and no ack comes back
      proxy.setMode('stall');
      const accepted = await enqueueEach(h.gw.parts.outbox, recordsFor(tag, Math.ceil(RECORDS / 3)));
      // hold it until the relay has seen an ack timeout, then let the held bytes go
      await waitFor(() => h.gw.parts.relay.health().lastError === 'GW_SINK_TIMEOUT', 20_000, 'an ack timeout during the stall');
      expect(rows()).toBe(accepted.length);
      proxy.setMode('pass');
      const r = await settle(tag, accepted, dup0);
      report('broker-faults/stall', {
        records: accepted.length,
        rowsKeptDuringStall: accepted.length,
        missing: r.missing,
        duplicates: r.duplicates,
        publishes: Number(h.gw.parts.sink.health().detail?.published ?? 0) - published0,
      });
    },
    DRAIN_MS + 60_000,
  );

  it(
    'acks delayed past relay.ackTimeoutMs: batches time out and are resent, rows stay until an ack arrives, nothing lost',
    async () => {
      const tag = 'late';
      const dup0 = cloud.store.duplicates;
      cloud.controls.ackDelayMs = Math.round(ACK_TIMEOUT_MS * 1.5);
      const records = recordsFor(tag, Math.ceil(RECORDS / 3));
      const accepted = await enqueueEach(h.gw.parts.outbox, records);
      // every record has reached the cloud and none is deleted before its (late) ack
      await waitFor(() => accepted.every((id) => cloud.store.records.has(id)), DRAIN_MS, 'every record received at least once');
      await waitFor(() => cloud.store.duplicates - dup0 > 0, DRAIN_MS, 'a resend after a timeout');
      cloud.controls.ackDelayMs = 0;
      const r = await settle(tag, accepted, dup0);
      expect(r.duplicates).toBeGreaterThan(0);
      report('broker-faults/late-acks', {
        records: accepted.length,
        ackDelayMs: Math.round(ACK_TIMEOUT_MS * 1.5),
        ackTimeoutMs: ACK_TIMEOUT_MS,
        missing: r.missing,
        duplicates: r.duplicates,
      });
    },
    DRAIN_MS * 2 + 60_000,
  );

  it(
    'every ack delivered three times: the copies are ignored, nothing lost, nothing acked twice into trouble',
    async () => {
      const tag = 'dup-ack';
      const dup0 = cloud.store.duplicates;
      const unknown0 = Number(h.gw.parts.sink.health().detail?.unknownAcks ?? 0);
      cloud.controls.ackCopies = 3;
      const accepted = await enqueueEach(h.gw.parts.outbox, recordsFor(tag, Math.ceil(RECORDS / 3)));
      const r = await settle(tag, accepted, dup0);
      await waitFor(() => Number(h.gw.parts.sink.health().detail?.unknownAcks ?? 0) > unknown0, 10_000, 'the copies arrived');
      cloud.controls.ackCopies = 1;
      const unknownAcks = Number(h.gw.parts.sink.health().detail?.unknownAcks ?? 0) - unknown0;
      report('broker-faults/duplicated-acks', {
        records: accepted.length,
        missing: r.missing,
        duplicates: r.duplicates,
        ackCopiesIgnored: unknownAcks,
      });
    },
    DRAIN_MS + 60_000,
  );

  it(
    'the cloud never acks: the outbox still holds every row after each was delivered and resent; they go once acks return',
    async () => {
      const tag = 'no-ack';
      const dup0 = cloud.store.duplicates;
      cloud.controls.dropAcks = true;
      // one record per patient, no more than the relay holds in flight at once (batchSize 100 ×
      // maxInFlight 4): unacked rows hold their patients, so only these can all be sent and resent
      const n = 400;
      const records = Array.from({ length: n }, (_, k) => fedRecord({ tag, tenantId: TENANT, gatewayId: GATEWAY, patient: k, seq: 0 }));
      const accepted = await enqueueEach(h.gw.parts.outbox, records);
      // every record at the cloud, and every one sent again after its ack timeout
      await waitFor(
        () => accepted.every((id) => cloud.store.records.has(id)) && cloud.store.duplicates - dup0 >= n,
        DRAIN_MS,
        'every record received twice',
      );
      expect(rows()).toBe(n);
      expect(accepted.filter((id) => ackedByCloud.has(id))).toEqual([]);
      cloud.controls.dropAcks = false;
      const r = await settle(tag, accepted, dup0);
      report('broker-faults/no-acks', { records: n, rowsKeptWhileUnacked: n, missing: r.missing, duplicates: r.duplicates });
    },
    DRAIN_MS * 2 + 60_000,
  );

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(
      `mosquitto ${signal === 'SIGTERM' ? 'stopped (SIGTERM)' : 'killed (SIGKILL)'} and restarted during delivery: every accepted record at the cloud`,
      async () => {
        const tag = `restart-${signal}`;
        const dup0 = cloud.store.duplicates;
        const RESTARTS = scale(2, 10);
        const records = recordsFor(tag);
        const feeding = enqueueEach(h.gw.parts.outbox, records);
        for (let k = 1; k <= RESTARTS; k++) {
          // restart while records are flowing: after the cloud has k/(RESTARTS+1) of them
          const at = Math.floor((RECORDS * k) / (RESTARTS + 1));
          await waitFor(
            () => records.filter((x) => cloud.store.records.has(x.id)).length >= at,
            DRAIN_MS,
            `${tag}: ${at} records at the cloud`,
          );
          if (signal === 'SIGTERM') await broker.stop();
          else await broker.kill();
          await broker.start();
          await waitFor(() => h.gw.parts.sink.health().connected && cloud.client.connected, 30_000, 'gateway and cloud reconnected');
        }
        const accepted = await feeding;
        expect(accepted).toHaveLength(RECORDS);
        const r = await settle(tag, accepted, dup0);
        report(`broker-faults/restart-${signal}`, {
          records: RECORDS,
          restarts: RESTARTS,
          missing: r.missing,
          duplicates: r.duplicates,
          outOfOrderFirstCopies: r.outOfOrder,
        });
      },
      DRAIN_MS * 2 + 60_000,
    );
  }
});

describe('a broker with a small maximum packet size (16 KiB), as managed brokers have', () => {
  const LIMIT = 16 * 1024;
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let h: Harness;
  let disconnects = 0;
  beforeAll(async () => {
    broker = await startMosquitto({ maxPacketSize: LIMIT });
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey as KeyObject });
    h = await startHarness(
      {
        gateway: { id: 'gw-pkt', tenantId: TENANT },
        relay: { sink: 'mqtt', batchSize: 200, maxInFlight: 4, ackTimeoutMs: 2000, lingerMs: 5 },
        mqtt: { url: broker.url },
        cloud: { publicKey: keys.publicPem },
      },
      { logLevel: 'warn' },
    );
    h.gw.parts.bus.on('sink.disconnected', () => {
      disconnects++;
    });
    await waitFor(() => h.gw.parts.sink.health().connected, 10_000, 'gateway connected');
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await broker?.stop();
  });

  it(
    'batches whose sealed size crosses the limit go as several publishes: nothing refused by the broker, the exact record set at the cloud; a record too large for any packet goes to dead letters with the reason',
    async () => {
      const n = scale(1200, 20_000);
      // ~1.2 KB of JSON each: a batch of 200 is ~320 KB sealed, twenty times the limit
      const records = Array.from({ length: n }, (_, k) =>
        fedRecord({ tag: 'pkt', tenantId: TENANT, gatewayId: 'gw-pkt', patient: k % 50, seq: Math.floor(k / 50), padBytes: 900 }),
      );
      const huge = fedRecord({ tag: 'pkt-huge', tenantId: TENANT, gatewayId: 'gw-pkt', patient: 0, seq: 0, padBytes: 20_000 });
      const accepted = await enqueueEach(h.gw.parts.outbox, [...records.slice(0, n / 2), huge, ...records.slice(n / 2)]);
      expect(accepted).toHaveLength(n + 1);
      await waitFor(
        () => {
          const s = h.gw.parts.outbox.stats();
          return s.pending + s.inFlight + s.waitingRetry === 0;
        },
        DRAIN_MS,
        'the outbox drained',
      );
      const want = records.map((r) => r.id).sort();
      const got = [...cloud.store.records.keys()].sort();
      expect(got).toEqual(want);
      expect(cloud.store.invalid).toEqual([]);
      const dead = h.gw.parts.outbox.listDeadLetters();
      expect(dead.map((d) => [d.id, d.code])).toEqual([[huge.id, 'GW_SINK_REJECTED']]);
      expect(dead[0].reason).toMatch(
        /^larger than the broker's maximum packet size 16384 bytes \(this record alone needs a \d+-byte packet\)/,
      );
      expect(disconnects).toBe(0);
      const d = h.gw.parts.sink.health().detail ?? {};
      expect(d.maxPacketBytes).toBe(LIMIT);
      report('broker-faults/max-packet-16KiB', {
        records: n,
        batchesSplit: Number(d.splitBatches),
        publishes: Number(d.published),
        missing: want.length - got.length,
        duplicates: cloud.store.duplicates,
        deadLettered: dead.length,
        brokerDisconnects: disconnects,
      });
    },
    DRAIN_MS + 60_000,
  );
});
