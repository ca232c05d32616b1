/**
 * Issue 12, cloud outage at scale: the broker is down while ingest goes on until
 * scale(20,000, 1,000,000) records are buffered in the real SQLite outbox, fed in-process as
 * database-poller pages (4 in flight, 500 records each) so a million is reached in minutes on two
 * cores, with the outbox's byte cap raised so it never refuses. Printed, not asserted (timing and
 * memory vary with the machine): the enqueue rate over the last pages beside the rate over the
 * first ones (empty outbox), resident memory, `/status` answer time with everything buffered, and
 * the drain rate to mosquitto and the reference cloud once the broker is back. Asserted, exactly:
 * every accepted record at the cloud (missing 0, extra 0), and each patient's records first seen
 * by the cloud in the order they were enqueued.
 */
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { waitFor } from '../support/net.ts';
import { enqueueAsPage, fedKey, fedRecord } from '../support/record-feed.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { report, scale } from './scale.ts';

const TENANT = 't-out';
const GATEWAY = 'gw-out';
const TOTAL = scale(20_000, 1_000_000);
const PATIENTS = scale(500, 20_000);
const PAGE = 500;
const PAGES_IN_FLIGHT = 4;
/** The rate windows: the first and the last this many records (the first page, a warm-up, left out). */
const WINDOW = scale(4_000, 50_000);
const DRAIN_MS = scale(120_000, 1_200_000);

const keys = makeCloudKeys();
const MiB = 1024 * 1024;

describe('cloud outage: ingest goes on while the broker is down, then everything drains in order', () => {
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let h: Harness;

  beforeAll(async () => {
    broker = await startMosquitto();
    // the cloud's persistent session (its subscription) exists before the outage, as the real one does
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey as KeyObject });
    await broker.stop();
    h = await startHarness(
      {
        gateway: { id: GATEWAY, tenantId: TENANT },
        outbox: { maxBytes: 16 * 1024 * MiB },
        // the relay's own backoff (500 ms doubling to 60 s, as shipped): how often it retries an
        // unreachable broker is part of what ingest pays during the outage
        relay: { sink: 'mqtt', batchSize: 500, maxInFlight: 4, ackTimeoutMs: 30_000, backoffInitialMs: 500, backoffMaxMs: 60_000 },
        mqtt: { url: broker.url },
        cloud: { publicKey: keys.publicPem },
      },
      { logLevel: 'warn' },
    );
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await broker?.stop();
  });

  it(
    `buffers ${TOTAL} records with the broker down, answers /status, then delivers every one, in order per patient`,
    async () => {
      const outbox = h.gw.parts.outbox;
      expect(h.gw.parts.sink.health().connected).toBe(false);
      const ids: string[] = new Array(TOTAL);
      const pageDone: number[] = [];
      let refused = 0;
      const t0 = performance.now();
      // PAGES_IN_FLIGHT feeders; feeder f takes records k = f, f+F, f+2F, … so (PATIENTS being a
      // multiple of F) all of one patient's records go through one feeder, whose pages commit one
      // after another: each patient's records are enqueued in seq order. Bounded by TOTAL.
      const feeder = async (f: number) => {
        for (let j = f; j < TOTAL; j += PAGE * PAGES_IN_FLIGHT) {
          const page = [];
          for (let k = j; k < Math.min(TOTAL, j + PAGE * PAGES_IN_FLIGHT); k += PAGES_IN_FLIGHT) {
            const r = fedRecord({ tag: 'out', tenantId: TENANT, gatewayId: GATEWAY, patient: k % PATIENTS, seq: Math.floor(k / PATIENTS) });
            ids[k] = r.id;
            page.push(r);
          }
          if (!(await enqueueAsPage(outbox, 'outage/feed', page))) refused += page.length;
          pageDone.push(performance.now());
        }
      };
      expect(PATIENTS % PAGES_IN_FLIGHT).toBe(0);
      expect(TOTAL % (PAGE * PAGES_IN_FLIGHT)).toBe(0);
      await Promise.all(Array.from({ length: PAGES_IN_FLIGHT }, (_, f) => feeder(f)));
      const feedSeconds = (performance.now() - t0) / 1000;
      expect(refused).toBe(0);
      const s = outbox.stats();
      expect(s.pending + s.inFlight + s.waitingRetry).toBe(TOTAL);

      // rates over the first and the last WINDOW records (pages finish in about the order they start)
      const pagesPerWindow = Math.max(1, Math.floor(WINDOW / PAGE));
      const rate = (a: number, b: number) => ((b - a) * PAGE) / ((pageDone[b] - pageDone[a]) / 1000);
      const emptyRate = rate(1, 1 + pagesPerWindow);
      const endRate = rate(pageDone.length - 1 - pagesPerWindow, pageDone.length - 1);
      const mem = process.memoryUsage();

      // /status with everything buffered (the admin API over loopback, as the CLI asks it)
      const statusMs: number[] = [];
      let status: { outbox?: { pending?: number; inFlight?: number; waitingRetry?: number } } = {};
      for (let k = 0; k < 5; k++) {
        const a = performance.now();
        const res = await fetch(`http://127.0.0.1:${h.adminPort}/status`, { headers: { authorization: `Bearer ${h.gw.parts.token}` } });
        status = (await res.json()) as typeof status;
        statusMs.push(performance.now() - a);
        expect(res.status).toBe(200);
      }
      statusMs.sort((x, y) => x - y);
      report('cloud-outage/buffered', {
        records: TOTAL,
        feedSeconds: feedSeconds.toFixed(1),
        emptyOutboxRecordsPerS: Math.round(emptyRate),
        endRecordsPerS: Math.round(endRate),
        endToEmptyRatio: (endRate / emptyRate).toFixed(3),
        rssMiB: Math.round(mem.rss / MiB),
        heapUsedMiB: Math.round(mem.heapUsed / MiB),
        outboxMiB: Math.round(s.bytes / MiB),
        statusMsMedian: statusMs[2].toFixed(1),
        statusMsMax: statusMs[4].toFixed(1),
        statusOutboxRows: (status.outbox?.pending ?? 0) + (status.outbox?.inFlight ?? 0) + (status.outbox?.waitingRetry ?? 0),
      });

      // the cloud returns
      const tBack = performance.now();
      await broker.start();
      let tFirst = 0;
      await waitFor(
        () => {
          if (!tFirst && cloud.store.order.length > 0) tFirst = performance.now();
          return cloud.store.records.size >= TOTAL;
        },
        DRAIN_MS,
        `all ${TOTAL} records at the cloud`,
      );
      const tDone = performance.now();
      await waitFor(
        () => {
          const x = outbox.stats();
          return x.pending + x.inFlight + x.waitingRetry === 0;
        },
        60_000,
        'the outbox empty',
      );

      // exact set: every accepted id at the cloud, nothing else
      const missing = ids.filter((id) => !cloud.store.records.has(id)).length;
      expect(missing).toBe(0);
      expect(cloud.store.records.size).toBe(TOTAL);
      expect(cloud.store.invalid).toEqual([]);
      // order per patient: the cloud first saw seq 0, 1, 2, … of each
      const nextSeq = new Map<number, number>();
      let outOfOrder = 0;
      for (const id of cloud.store.order) {
        const k = fedKey(cloud.store.records.get(id) as CanonicalRecord & { source: { messageId?: string } });
        if (!k) continue;
        const want = nextSeq.get(k.patient) ?? 0;
        if (k.seq !== want) outOfOrder++;
        nextSeq.set(k.patient, k.seq + 1);
      }
      expect(outOfOrder).toBe(0);
      expect(nextSeq.size).toBe(PATIENTS);
      for (const [, n] of nextSeq) expect(n).toBe(TOTAL / PATIENTS);
      const memAfter = process.memoryUsage();
      report('cloud-outage/drain', {
        records: TOTAL,
        secondsToFirstDelivery: ((tFirst - tBack) / 1000).toFixed(1),
        drainSeconds: ((tDone - tFirst) / 1000).toFixed(1),
        drainRecordsPerS: Math.round(TOTAL / ((tDone - tFirst) / 1000)),
        missing,
        duplicates: cloud.store.duplicates,
        outOfOrder,
        patients: PATIENTS,
        rssMiBAfterDrain: Math.round(memAfter.rss / MiB),
      });
    },
    DRAIN_MS + scale(120_000, 1_800_000),
  );
});
