/** The HTTPS sink against the reference receiver over real TLS (a throwaway CA). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpsSink } from '../../../gateway/sinks/https-sink.ts';
import { createCloudEnvelope } from '../../../gateway/crypto/cloud-envelope.ts';
import { systemClock } from '../../../gateway/clock.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { batchOf } from '../../../gateway/sinks/sink.ts';
import { deterministicId } from '../../../adapters/canonical/record-id.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { makeTestPki, type TestPki } from '../../support/tls.ts';
import { freePort } from '../../support/net.ts';

const keys = makeCloudKeys();
const rec = (n: number): CanonicalRecord => ({
  id: deterministicId('https-test', String(n)),
  type: 'patient',
  schemaVersion: '1.0',
  op: 'upsert',
  tenantId: 't',
  practiceId: 'p',
  gatewayId: 'g',
  source: { system: 'S', adapter: 'hl7v2', sourceId: String(n) },
  occurredAt: '2026-11-25T10:00:00Z',
  observedAt: '2026-11-25T10:00:00Z',
  data: { identifiers: [{ system: 'S', value: String(n) }] },
});

describe('HTTPS sink', () => {
  let pki: TestPki;
  let cloud: HttpReferenceCloud;
  beforeAll(async () => {
    pki = makeTestPki();
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey, tls: { cert: pki.cert, key: pki.key }, token: 'cloud-token' });
  });
  afterAll(async () => {
    await cloud.stop();
  });
  const sink = (o: Partial<Parameters<typeof createHttpsSink>[0]> = {}) =>
    createHttpsSink({
      url: cloud.url,
      gatewayId: 'g',
      tenantId: 't',
      token: 'cloud-token',
      timeoutMs: 2000,
      ca: pki.ca,
      rejectUnauthorized: true,
      envelope: createCloudEnvelope(keys.publicPem),
      clock: systemClock,
      ...o,
    });

  it('POSTs a JWE with the batch id as Idempotency-Key; 2xx acknowledges', async () => {
    const r = rec(1);
    expect(await sink().deliver(batchOf('batch-1', [r]))).toEqual({ rejected: [] });
    expect(cloud.store.records.get(r.id)).toEqual(r);
    expect(cloud.store.idempotencyKeys).toContain('batch-1');
  });

  it('classes 429 and 5xx as transient, other 4xx as permanent', async () => {
    cloud.controls.failNext.push(429, 503, 400);
    await expect(sink().deliver(batchOf('b2', [rec(2)]))).rejects.toMatchObject({ code: 'GW_SINK_RETRY_LATER', retry: 'transient' });
    await expect(sink().deliver(batchOf('b2', [rec(2)]))).rejects.toMatchObject({ code: 'GW_SINK_RETRY_LATER', retry: 'transient' });
    await expect(sink().deliver(batchOf('b2', [rec(2)]))).rejects.toMatchObject({ code: 'GW_SINK_REJECTED', retry: 'permanent' });
  });

  it('refuses a server whose certificate it cannot verify, and reports an unreachable endpoint', async () => {
    await expect(sink({ ca: undefined }).deliver(batchOf('b3', [rec(3)]))).rejects.toMatchObject({ code: 'GW_SINK_UNREACHABLE' });
    const port = await freePort();
    await expect(sink({ url: `https://127.0.0.1:${port}` }).deliver(batchOf('b4', [rec(4)]))).rejects.toMatchObject({
      code: 'GW_SINK_UNREACHABLE',
      retry: 'transient',
    });
  });

  it('keeps records queued on a wrong token or URL (401/404 are config problems, not record problems)', async () => {
    await expect(sink({ token: 'nope' }).deliver(batchOf('b5', [rec(5)]))).rejects.toMatchObject({
      code: 'GW_SINK_AUTH',
      retry: 'transient',
    });
    await expect(sink({ url: `${cloud.url}/wrong-prefix` }).deliver(batchOf('b6', [rec(6)]))).rejects.toMatchObject({
      code: 'GW_SINK_AUTH',
      retry: 'transient',
    });
  });
});
