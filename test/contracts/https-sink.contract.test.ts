/**
 * The HTTPS sink against the Sink contract: the reference cloud over TLS (a throwaway CA), reached
 * through a loopback fault proxy so a test can hold the cloud's answer.
 */
import { afterAll } from 'vitest';
import { createCloudEnvelope } from '../../gateway/crypto/cloud-envelope.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createHttpsSink } from '../../gateway/sinks/https-sink.ts';
import type { RecordBatch } from '../../gateway/sinks/sink.ts';
import { startHttpReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { fedRecord } from '../support/record-feed.ts';
import { makeTestPki } from '../support/tls.ts';
import { sinkContract } from './sink-contract.ts';

const keys = makeCloudKeys();
const pki = makeTestPki();
let made = 0;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0)) await c();
});

sinkContract({
  name: 'HTTPS sink (reference cloud over TLS)',
  kind: 'https',
  beforeStart: 'opens',
  atStop: 'rejects',
  restartable: true,
  batch(n) {
    const recs = Array.from({ length: n }, (_, i) =>
      fedRecord({ tag: `https-contract-${++made}`, tenantId: 't-contract', gatewayId: 'gw-contract', patient: i, seq: 1 }),
    );
    return { batchId: `b-https-${made}`, ids: recs.map((r) => r.id), json: recs.map((r) => r.json) } satisfies RecordBatch;
  },
  async make() {
    const cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey, tls: { cert: pki.cert, key: pki.key } });
    const proxy = await startFaultProxy({ targetPort: cloud.port });
    const sink = createHttpsSink({
      url: proxy.url('https'),
      gatewayId: 'gw-contract',
      tenantId: 't-contract',
      timeoutMs: 30_000,
      ca: pki.ca,
      rejectUnauthorized: true,
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
    });
    const cleanup = async () => {
      await sink.stop();
      proxy.setMode('pass');
      await proxy.stop();
      await cloud.stop();
    };
    cleanups.push(cleanup);
    return {
      sink,
      async received() {
        return new Set(cloud.store.records.keys());
      },
      stall() {
        proxy.setMode('stall');
        return { release: () => proxy.setMode('pass') };
      },
      refuse(ids) {
        for (const id of ids) cloud.controls.rejectIds.add(id);
      },
      async cleanup() {
        cleanups.splice(cleanups.indexOf(cleanup), 1);
        await cleanup();
      },
    };
  },
});
