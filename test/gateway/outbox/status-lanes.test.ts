/** `/status` shows the outbox's lanes (issue 17 point 6): rows queued in each and the oldest one's age. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04, siu } from '../../support/hl7-fixtures.ts';

describe('/status outbox lanes', () => {
  let h: Harness;
  beforeAll(async () => {
    // a cloud that is not there: what is accepted stays queued, in its lane
    h = await startHarness({
      relay: { sink: 'https' },
      https: { url: 'http://127.0.0.1:9/' },
      cloud: { publicKey: makeCloudKeys().publicPem },
    });
  });
  afterAll(async () => {
    await h.stop();
  });

  const lanesNow = async () => {
    const r = await h.gw.parts.admin!.app.inject({ url: '/status', headers: { authorization: `Bearer ${h.gw.parts.token}` } });
    const o = r.json().outbox;
    return { lanes: o.lanes, queued: o.pending + o.inFlight + o.waitingRetry };
  };
  const rows = (l: Record<string, { rows: number }>) => ({ urgent: l.urgent.rows, live: l.live.rows, backfill: l.backfill.rows });

  it("counts tomorrow's appointment urgent and a patient update live; an urgent row takes its patient's earlier row along", async () => {
    const c = await h.client();
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
    expect(readAck(await c.send(adtA04({ mrn: 'MRN001' }))).code).toBe('AA');
    expect(readAck(await c.send(siu({ start: '202501061500', mrn: 'MRN888', appt: 'A-OLD' }))).code).toBe('AA');
    expect(readAck(await c.send(siu({ start: `${tomorrow}1500`, mrn: 'MRN777', appt: 'A-TOMORROW' }))).code).toBe('AA');
    let s = await lanesNow();
    // last year's appointment comes with its patient's record from this message, which is recent:
    // the bundle goes in the more urgent of the two lanes, live
    expect(rows(s.lanes)).toEqual({ urgent: 1, live: 2, backfill: 0 });
    expect(s.queued).toBe(3);
    expect(s.lanes.urgent.oldestAgeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.lanes.backfill).toEqual({ rows: 0, oldestCreatedAt: null, oldestAgeSeconds: null });
    // MRN001's appointment tomorrow: the patient's queued update goes urgent with it
    expect(readAck(await c.send(siu({ start: `${tomorrow}0900`, mrn: 'MRN001', appt: 'A-SECOND' }))).code).toBe('AA');
    s = await lanesNow();
    expect(rows(s.lanes)).toEqual({ urgent: 3, live: 1, backfill: 0 });
    expect(s.queued).toBe(4);
  });
});
