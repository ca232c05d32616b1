import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { waitFor } from '../../support/net.ts';
import { gatewayVersion } from '../../../gateway/version.ts';

describe('admin API', () => {
  let h: Harness;
  let auth: Record<string, string>;
  beforeAll(async () => {
    h = await startHarness({});
    auth = { authorization: `Bearer ${h.gw.parts.token}` };
  });
  afterAll(async () => {
    await h.stop();
  });
  const app = () => h.gw.parts.admin!.app;

  it('generates a token on first run and stores it 0600', () => {
    expect(h.gw.parts.token.length).toBeGreaterThan(30);
    expect(statSync(h.gw.parts.paths.tokenFile).mode & 0o777).toBe(0o600);
  });

  it('serves /health and /ready without a token and refuses everything else without one', async () => {
    expect((await app().inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app().inject({ url: '/ready' })).json()).toEqual({
      ready: true,
      reasons: [],
      version: gatewayVersion(),
      pid: process.pid,
    });
    for (const url of ['/status', '/metrics', '/dead-letters']) {
      const r = await app().inject({ url });
      expect(r.statusCode).toBe(401);
      expect(r.json()).toMatchObject({ code: 'GW_ADMIN_UNAUTHORIZED' });
      expect((await app().inject({ url, headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    }
  });

  it('reports adapters, outbox depth by state and age, sink and counts in /status, and Prometheus text in /metrics', async () => {
    const c = await h.client();
    expect(readAck(await c.send(adtA04())).code).toBe('AA');
    const s = (await app().inject({ url: '/status', headers: auth })).json();
    expect(s.adapters.hl7v2.status).toBe('up');
    expect(s.outbox).toHaveProperty('pending');
    expect(s.outbox).toHaveProperty('oldestAgeSeconds');
    expect(s.sink.kind).toBe('file');
    expect(s.counts.accepted).toBe(1);
    const m = await app().inject({ url: '/metrics', headers: auth });
    expect(m.headers['content-type']).toContain('text/plain');
    expect(m.body).toContain('ewml_intake_total{adapter="hl7v2",outcome="accepted"} 1');
    expect(m.body).toMatch(/ewml_outbox_records\{state="pending"\} \d+/);
  });

  it('lists, shows, replays and discards dead letters', async () => {
    const c = await h.client();
    expect(readAck(await c.send(adtA04({ id: 'DL1' }).replace('MRN001^^^CLINIC^MR', ''))).code).toBe('AE');
    expect(readAck(await c.send(adtA04({ id: 'DL2' }).replace('MRN001^^^CLINIC^MR', ''))).code).toBe('AE');
    const list = (await app().inject({ url: '/dead-letters', headers: auth })).json();
    expect(list.total).toBe(2);
    const [first, second] = list.items;
    const one = (await app().inject({ url: `/dead-letters/${first.id}`, headers: auth })).json();
    expect(one).toMatchObject({ code: 'GW_MAP_FAILED', reason: 'PID-3 patient identifier is missing' });
    expect(one).not.toHaveProperty('sealed');
    // replay without a fix: still rejected, kept
    const again = await app().inject({ method: 'POST', url: `/dead-letters/${first.id}/replay`, headers: auth });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ removed: false });
    const gone = await app().inject({ method: 'DELETE', url: `/dead-letters/${second.id}`, headers: auth });
    expect(gone.json()).toEqual({ id: second.id, discarded: true });
    expect((await app().inject({ url: `/dead-letters/${second.id}`, headers: auth })).statusCode).toBe(404);
    expect((await app().inject({ method: 'POST', url: '/dead-letters/nope/replay', headers: auth })).statusCode).toBe(404);
  });

  it('replays a dead letter once the cloud-side rejection is fixed (record dead letters go back to the outbox)', async () => {
    const ob = h.gw.parts.outbox;
    // let earlier tests' records drain, hold the relay so the new rows stay put, then
    // dead-letter them as a cloud rejection would
    await waitFor(
      () => {
        const st = ob.stats();
        return st.pending + st.inFlight + st.waitingRetry === 0;
      },
      10_000,
      'outbox drained',
    );
    await h.gw.parts.relay.stop();
    const c = await h.client();
    expect(readAck(await c.send(adtA04({ id: 'RP1', mrn: 'RP1' }))).code).toBe('AA');
    // one bundle row (patient and provider share the patient's partition)
    const rows = ob.claim(1000).rows;
    expect(rows.map((r) => r.recordIds?.length)).toEqual([2]);
    await ob.deadLetter(
      rows.map((r) => r.id),
      'GW_SINK_REJECTED',
      'test',
    );
    const dl = ob.listDeadLetters({ limit: 1000 }).filter((d) => d.kind === 'record');
    expect(dl.length).toBe(rows.length);
    const r = await app().inject({ method: 'POST', url: `/dead-letters/${dl[0].id}/replay`, headers: auth });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ removed: true, result: { status: 'accepted' } });
    // back in the outbox as the same bundle
    expect(ob.claim(1000).rows.find((x) => x.id === dl[0].id)?.recordIds).toEqual(rows[0].recordIds);
    await h.gw.parts.relay.start();
  });
});
