/**
 * The record path end to end: HL7 over MLLP → gateway (real SQLite, sealed) → MQTT (real
 * mosquitto) → reference cloud (decrypts, validates, dedupes, acks) — and the same over HTTPS.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { frameMllp } from '../../adapters/hl7v2/mllp-framer.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { adtA04, controlId, siu } from '../support/hl7-fixtures.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { waitFor } from '../support/net.ts';
import { startHttpReferenceCloud, startMqttReferenceCloud, type MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { gatewayVersion } from '../../gateway/version.ts';

const keys = makeCloudKeys();
const PHI = ['Synthetic', '19800101', '1980-01-01', '1 Test Way', 'Testville', '555-0100'];

describe('record path over MQTT', () => {
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let h: Harness;
  beforeAll(async () => {
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    h = await startHarness({
      relay: { sink: 'mqtt', batchSize: 50, ackTimeoutMs: 2000 },
      mqtt: { url: broker.url },
      cloud: { publicKey: keys.publicPem },
      gateway: { id: 'gw-e2e', tenantId: 'tenant-e2e' },
    });
  });
  afterAll(async () => {
    await h.stop();
    await cloud.stop();
    await broker.stop();
  });

  it('delivers every acknowledged message as valid canonical records, and the outbox empties', async () => {
    const c = await h.client();
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const id = controlId('E');
      ids.push(id);
      c.writeRaw(frameMllp(i % 2 ? adtA04({ id, mrn: `E${i % 20}` }) : siu({ id, mrn: `E${i % 20}`, appt: `AP${i}` })));
    }
    for (let i = 0; i < ids.length; i++) expect(readAck(await c.nextAnswer(10_000)).code).toBe('AA');
    await waitFor(
      () => {
        const s = h.gw.parts.outbox.stats();
        return s.pending + s.inFlight + s.waitingRetry === 0;
      },
      20_000,
      'outbox drained',
    );
    const got = [...cloud.store.records.values()];
    const byMessage = new Set(got.map((r) => r.source.messageId));
    for (const id of ids) expect(byMessage.has(id)).toBe(true);
    expect(cloud.store.invalid).toEqual([]);
    expect(got.every((r) => r.gatewayId === 'gw-e2e' && r.tenantId === 'tenant-e2e')).toBe(true);
    expect((h.gw.status() as { counts: { delivered: number } }).counts.delivered).toBe(
      h.gw.parts.metrics.total('ewml_records_enqueued_total'),
    );
  });

  it("delivers one patient's records to the cloud in the order they were accepted", async () => {
    const c = await h.client();
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = controlId('O');
      sent.push(id);
      expect(readAck(await c.send(adtA04({ id, mrn: 'ORDER1' }))).code).toBe('AA');
    }
    await waitFor(
      () => sent.every((id) => [...cloud.store.records.values()].some((r) => r.source.messageId === id)),
      20_000,
      'all arrived',
    );
    const order = cloud.store.order
      .map((rid) => cloud.store.records.get(rid)!)
      .filter((r) => r.type === 'patient' && r.source.sourceId === 'CLINIC|ORDER1')
      .map((r) => r.source.messageId);
    expect(order).toEqual(sent);
  });

  it('keeps accepting while the broker is down and delivers by itself when it returns', async () => {
    await broker.stop();
    await waitFor(() => !h.gw.parts.sink.health().connected, 5000, 'sink sees broker down');
    const c = await h.client();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = controlId('B');
      ids.push(id);
      expect(readAck(await c.send(adtA04({ id, mrn: `B${i}` }))).code).toBe('AA');
    }
    expect(h.gw.parts.outbox.stats().pending + h.gw.parts.outbox.stats().waitingRetry + h.gw.parts.outbox.stats().inFlight).toBeGreaterThan(
      0,
    );
    await broker.start();
    await waitFor(
      () => ids.every((id) => [...cloud.store.records.values()].some((r) => r.source.messageId === id)),
      30_000,
      'delivery resumed',
    );
  });

  it('keeps a record the cloud refuses in dead letters on its own, delivers the rest of its message, and delivers it on replay once the cloud takes it', async () => {
    const ob = h.gw.parts.outbox;
    const refusedNow = () => ob.listDeadLetters({ limit: 1000 }).filter((d) => d.code === 'GW_SINK_REJECTED');
    const before = refusedNow().length;
    cloud.controls.rejectTypes.add('provider');
    const c = await h.client();
    const id = controlId('RJ');
    expect(readAck(await c.send(adtA04({ id, mrn: 'RJ1' }))).code).toBe('AA');
    await waitFor(
      () => refusedNow().length > before && ob.stats().inFlight + ob.stats().pending === 0,
      10_000,
      'refused record dead-lettered',
    );
    const fromCloud = () => [...cloud.store.records.values()].filter((r) => r.source.messageId === id);
    // the message's patient record reached the cloud; its provider record waits alone, sealed on its own
    expect(fromCloud().map((r) => r.type)).toEqual(['patient']);
    const dl = refusedNow().slice(before);
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ kind: 'record', recordType: 'provider', reason: 'rejected by test control' });
    expect(dl[0].recordIds).toBeUndefined();
    // fixed on the cloud's side: the technician replays it through the admin API
    cloud.controls.rejectTypes.clear();
    const replay = await h.gw.parts.admin!.app.inject({
      method: 'POST',
      url: `/dead-letters/${encodeURIComponent(dl[0].id)}/replay`,
      headers: { authorization: `Bearer ${h.gw.parts.token}` },
    });
    expect(replay.statusCode).toBe(200);
    await waitFor(() => fromCloud().length === 2, 10_000, 'replayed record delivered');
    expect(
      fromCloud()
        .map((r) => r.type)
        .sort(),
    ).toEqual(['patient', 'provider']);
    expect(refusedNow()).toHaveLength(before);
  });

  it('never writes PHI to the log or, unsealed, to the outbox file', async () => {
    const c = await h.client();
    expect(readAck(await c.send(adtA04({ id: controlId('PHI') }).replace('MRN001^^^CLINIC^MR', ''))).code).toBe('AE');
    const logText = h.logs.join('\n');
    expect(h.logs.length).toBeGreaterThan(5);
    for (const s of PHI) expect(logText).not.toContain(s);
    await h.gw.stop();
    const dir = h.gw.parts.paths.dataDir;
    for (const f of readdirSync(dir).filter((x) => x.startsWith('outbox.db'))) {
      const bytes = readFileSync(join(dir, f)).toString('latin1');
      for (const s of PHI) expect(bytes).not.toContain(s);
    }
    await h.gw.start();
  });
});

describe('record path over HTTPS (HTTP on loopback here; TLS is covered by the sink test)', () => {
  it('retries 5xx and 429 with backoff until the cloud takes the batch', async () => {
    const cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    cloud.controls.failNext.push(503, 429, 500);
    const h = await startHarness({ relay: { sink: 'https' }, https: { url: cloud.url }, cloud: { publicKey: keys.publicPem } });
    try {
      const c = await h.client();
      const id = controlId('H');
      expect(readAck(await c.send(adtA04({ id }))).code).toBe('AA');
      await waitFor(() => [...cloud.store.records.values()].some((r) => r.source.messageId === id), 10_000, 'delivered');
      expect(h.gw.parts.metrics.total('ewml_relay_failures_total')).toBe(3);
      expect(new Set(cloud.store.idempotencyKeys).size).toBe(1);
    } finally {
      await h.stop();
      await cloud.stop();
    }
  });

  it('refuses input with a busy AR while the outbox writer thread restarts, takes it again after, and delivers every message answered AA', async () => {
    let thread: import('node:worker_threads').Worker | undefined;
    const h = await startHarness(
      {},
      {
        onOutboxWriterThread: (w) => {
          thread = w;
        },
      },
    );
    try {
      const c = await h.client();
      expect(readAck(await c.send(adtA04({ id: 'WT1', mrn: 'MWT1' }))).code).toBe('AA');
      await thread!.terminate();
      const refused = readAck(await c.send(adtA04({ id: 'WT2', mrn: 'MWT2' })));
      expect(refused).toMatchObject({ code: 'AR' });
      expect(refused.err).toContain('GW_OUTBOX_IO');
      const ready = await fetch(`http://127.0.0.1:${h.adminPort}/ready`);
      expect(await ready.json()).toEqual({
        ready: false,
        reasons: ['outbox writer restarting'],
        version: gatewayVersion(),
        pid: process.pid,
      });
      expect(h.logs.some((l) => l.includes('"code":"GW_OUTBOX_IO"') && l.includes('restartInMs'))).toBe(true);
      // the sender resends, as a busy AR asks, until the new writer takes it
      await waitFor(async () => readAck(await c.send(adtA04({ id: 'WT2', mrn: 'MWT2' }))).code === 'AA', 10_000, 'accepted again');
      expect(readAck(await c.send(adtA04({ id: 'WT3', mrn: 'MWT3' }))).code).toBe('AA');
      expect(await (await fetch(`http://127.0.0.1:${h.adminPort}/ready`)).json()).toEqual({
        ready: true,
        reasons: [],
        version: gatewayVersion(),
        pid: process.pid,
      });
      expect(h.gw.status()).toMatchObject({ outbox: { writer: 'running', writerRestarts: 1 } });
      // three messages answered AA, each record delivered (the file sink), none left behind
      const counts = () => (h.gw.status() as { counts: { accepted: number; enqueuedRecords: number; delivered: number } }).counts;
      await waitFor(
        () => counts().delivered === counts().enqueuedRecords && h.gw.parts.outbox.stats().pending === 0,
        10_000,
        'all delivered',
      );
      expect(counts()).toMatchObject({ accepted: 3 });
      expect(counts().delivered).toBeGreaterThanOrEqual(6);
      expect(h.gw.parts.outbox.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    } finally {
      await h.stop();
    }
  });

  it('writes sealed NDJSON with the local file sink (the embedded default)', async () => {
    const h = await startHarness({});
    try {
      const c = await h.client();
      expect(readAck(await c.send(adtA04())).code).toBe('AA');
      await waitFor(
        () => {
          try {
            return readdirSync(h.gw.parts.paths.fileSinkDir).length > 0;
          } catch {
            return false;
          }
        },
        10_000,
        'file written',
      );
      const file = join(h.gw.parts.paths.fileSinkDir, readdirSync(h.gw.parts.paths.fileSinkDir)[0]);
      // the file is created before its first line is written: wait for a whole line
      await waitFor(() => readFileSync(file, 'utf8').endsWith('\n'), 5000, 'a whole line');
      const text = readFileSync(file, 'utf8');
      for (const s of PHI) expect(text).not.toContain(s);
      // the ADT's patient and provider share a partition: one line, a bundle naming both records
      const line = JSON.parse(text.split('\n')[0]) as { id: string; type: string; ids?: string[]; sealed: string };
      expect(line).toMatchObject({ type: 'bundle' });
      expect(line.ids).toHaveLength(2);
      const { createRecordSealer } = await import('../../gateway/crypto/record-sealer.ts');
      const sealer = createRecordSealer(readFileSync(h.gw.parts.paths.keyFile));
      const records = sealer
        .open(line.id, Buffer.from(line.sealed, 'base64'))
        .toString()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string });
      expect(records.map((r) => r.id)).toEqual(line.ids);
    } finally {
      await h.stop();
    }
  });
});
