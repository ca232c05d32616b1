/**
 * The CDS Hooks service end to end: a real gateway (harness) fed over MLLP, its cloud sink pointed
 * at a closed port (the cloud is down for the whole file), a test EHR signing requests with its
 * own key and serving its JWK Set, and HTTPS calls to the service's own port.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { READ_MODEL_FILE } from '../../../gateway/cds-hooks/index.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04, siu } from '../../support/hl7-fixtures.ts';
import { freePort, waitFor } from '../../support/net.ts';
import { makeTestPki, type TestPki } from '../../support/tls.ts';
import { callCds, hookRequest, startTestEhr, type TestEhr } from './test-ehr.ts';

const PUBLIC_URL = 'https://optical-gw.test:8443';
const PV = `${PUBLIC_URL}/cds-services/eyewear-patient-view`;
const AB = `${PUBLIC_URL}/cds-services/eyewear-appointment-book`;
const MRN_OID = 'urn:oid:2.16.840.1.113883.3.999.1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const DAY = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const hl7Day = (ms: number) => isoDay(ms).replaceAll('-', '');

function obx(n: number, code: string, value: string, eye: string, type = 'NM'): string {
  const f: string[] = ['OBX'];
  f[1] = String(n);
  f[2] = type;
  f[3] = code;
  f[5] = value;
  f[11] = 'F';
  f[14] = '20250115090000+0000';
  f[20] = eye;
  return Array.from(f, (x) => x ?? '').join('|');
}

/** A spectacle Rx issued 2025-01-15 that expires on `expires` (YYYYMMDD), for chart `mrn`. */
function oruRx(mrn: string, id: string, expires: string): string {
  return [
    `MSH|^~\\&|EXAM|CLINIC|EWML|GW|20250115093000+0000||ORU^R01^ORU_R01|${id}|P|2.5.1`,
    `PID|1||${mrn}^^^CLINIC^MR||Synthetic^Pat`,
    'OBR|1|ORD1|RX1|REFR^Final spectacle Rx|||20250115090000+0000',
    obx(1, 'SPH', '-1.00', 'OD'),
    obx(2, 'SPH', '-1.25', 'OS'),
    obx(3, 'EXP^Expires', expires, '', 'DT'),
  ].join('\r');
}

describe('CDS Hooks service', () => {
  let h: Harness;
  let pki: TestPki;
  let ehr: TestEhr;
  let intruder: TestEhr;
  let port: number;
  const today = Date.now();
  const in10 = isoDay(today + 10 * DAY);
  const ago3 = isoDay(today - 3 * DAY);
  const apptStart = Date.parse(`${isoDay(today + 5 * DAY)}T10:00:00Z`);

  const call = (path: string, o: Parameters<typeof callCds>[4] = {}) =>
    callCds(port, pki.ca, o.body === undefined ? 'GET' : 'POST', path, o);
  const patientView = async (patientId: string, extra: Parameters<typeof hookRequest>[2] = {}) =>
    call('/cds-services/eyewear-patient-view', { token: await ehr.sign(PV), body: hookRequest('patient-view', patientId, extra) });
  const prefetchFor = (id: string, mrn: string) => ({
    patient: { resourceType: 'Patient', id, identifier: [{ system: MRN_OID, value: mrn }] },
  });

  beforeAll(async () => {
    pki = makeTestPki();
    ehr = await startTestEhr();
    // another party with its own key pair and key server, claiming to be the EHR
    intruder = await startTestEhr({ iss: ehr.iss });
    const dir = mkdtempSync(join(tmpdir(), 'ewml-cds-tls-'));
    writeFileSync(join(dir, 'cds-cert.pem'), pki.cert);
    const cloudPort = await freePort(); // nothing listens there: the cloud is down
    h = await startHarness(
      {
        relay: { sink: 'https' },
        https: { url: `https://127.0.0.1:${cloudPort}`, timeoutMs: 500, ca: pki.ca },
        cloud: { publicKey: makeCloudKeys().publicPem },
        cdsHooks: {
          enabled: true,
          port: 0,
          publicUrl: PUBLIC_URL,
          // the certificate by path, the key as PEM text (as `${file:…}` leaves it)
          tls: { cert: join(dir, 'cds-cert.pem'), key: pki.key },
          issuers: [{ iss: ehr.iss, jku: ehr.jku, patientSystem: 'EHR', identifierSystems: { [MRN_OID]: 'CLINIC' } }],
        },
      },
      { logLevel: 'info' },
    );
    port = (h.gw.status().cdsHooks as { listening: { port: number } }).listening.port;
    const c = await h.client();
    for (const msg of [
      oruRx('MRN5001', 'CDS1', hl7Day(today + 10 * DAY)),
      // chart MRN5002 is also the EHR's patient E5002 (PID-3 repeats), with an expired Rx and an appointment
      adtA04({ id: 'CDS2', mrn: 'MRN5002' }).replace('MRN5002^^^CLINIC^MR', 'MRN5002^^^CLINIC^MR~E5002^^^EHR^PI'),
      oruRx('MRN5002', 'CDS3', hl7Day(today - 3 * DAY)),
      siu({ id: 'CDS4', mrn: 'MRN5002', appt: 'A5002', start: `${hl7Day(apptStart)}100000+0000` }),
    ]) {
      expect(readAck(await c.send(msg)).code).toBe('AA');
    }
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await ehr?.stop();
    await intruder?.stop();
  });

  it('lists its two services with their hooks and prefetch templates', async () => {
    const r = await call('/cds-services');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      services: [
        {
          hook: 'patient-view',
          id: 'eyewear-patient-view',
          title: 'eyewear-ML optical reminders',
          description: expect.any(String),
          prefetch: { patient: 'Patient/{{context.patientId}}' },
        },
        {
          hook: 'appointment-book',
          id: 'eyewear-appointment-book',
          title: 'eyewear-ML booking check',
          description: expect.any(String),
          prefetch: { patient: 'Patient/{{context.patientId}}' },
        },
      ],
    });
  });

  it('answers patient-view with the one card for a spectacle Rx that expires in 10 days, the cloud being down', async () => {
    const r = await patientView('ehr-1', { prefetch: prefetchFor('ehr-1', 'MRN5001') });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      cards: [
        {
          uuid: expect.stringMatching(UUID),
          summary: `Spectacle Rx expires in 10 days (${in10})`,
          indicator: 'info',
          source: { label: 'eyewear-ML' },
          detail: `Latest spectacle prescription on file at the optical practice: issued 2025-01-15, expires ${in10}. An eye exam renews it.`,
        },
      ],
    });
    // the cloud never acknowledged anything: every record is still in the outbox, and delivery keeps failing
    const held = h.gw.parts.outbox.stats();
    // (the four messages' records, one outbox row per message: each message's records name one patient)
    expect(held.pending + held.inFlight + held.waitingRetry).toBe(4);
    expect(h.gw.parts.metrics.total('ewml_records_delivered_total')).toBe(0);
    // how many attempts failed by now depends on timing; that they fail does not
    await waitFor(() => h.gw.parts.metrics.total('ewml_relay_failures_total') > 0, 10_000, 'a failed delivery');
  });

  it("finds a patient by the EHR's own id through the patient record's identifiers: expired Rx and the next appointment", async () => {
    const r = await patientView('E5002');
    expect(r.status).toBe(200);
    expect((r.body.cards as Array<Record<string, unknown>>).map(({ uuid, ...rest }) => rest)).toEqual([
      {
        summary: `Spectacle Rx expired 3 days ago (${ago3})`,
        indicator: 'warning',
        source: { label: 'eyewear-ML' },
        detail: `Latest spectacle prescription on file at the optical practice: issued 2025-01-15, expires ${ago3}. An eye exam renews it.`,
      },
      {
        summary: `Upcoming appointment: ${isoDay(apptStart)} 10:00, Comprehensive eye exam`,
        indicator: 'info',
        source: { label: 'eyewear-ML' },
        detail: 'Status: booked.\n\nWith: Dr Paula Provider.\n\nWhere: Exam room 2.',
      },
    ]);
  });

  it('answers appointment-book with the expired Rx and the appointment already booked', async () => {
    const booking = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { resource: { resourceType: 'Appointment', id: 'new-1', status: 'proposed', start: `${isoDay(today + 20 * DAY)}T09:00:00Z` } },
      ],
    };
    const r = await call('/cds-services/eyewear-appointment-book', {
      token: await ehr.sign(AB),
      body: hookRequest('appointment-book', 'E5002', { context: { appointments: booking } }),
    });
    expect(r.status).toBe(200);
    expect((r.body.cards as Array<{ summary: string; indicator: string }>).map((c) => [c.indicator, c.summary])).toEqual([
      ['warning', `Spectacle Rx expired 3 days ago (${ago3})`],
      ['info', `Already booked: ${isoDay(apptStart)} 10:00, Comprehensive eye exam`],
    ]);
  });

  it('gives no card for a patient it does not know, nor for a prefetched Patient that is not the context patient', async () => {
    expect((await patientView('nobody')).body).toEqual({ cards: [] });
    // the prefetch names MRN5001, but it is another chart than context.patientId: not used
    expect((await patientView('ehr-2', { prefetch: prefetchFor('ehr-1', 'MRN5001') })).body).toEqual({ cards: [] });
    // an identifier under a system with no mapping is taken as it is: no MRN5001 under the OID
    const r = await patientView('ehr-3', {
      prefetch: { patient: { resourceType: 'Patient', id: 'ehr-3', identifier: [{ system: 'urn:oid:9.9', value: 'MRN5001' }] } },
    });
    expect(r.body).toEqual({ cards: [] });
  });

  it('refuses with 401 and a reason: no token, wrong iss, jku not allowed, expired, too long-lived, wrong aud, HS256, a key not the EHR’s, replay', async () => {
    const body = hookRequest('patient-view', 'ehr-1', { prefetch: prefetchFor('ehr-1', 'MRN5001') });
    const now = Math.floor(Date.now() / 1000);
    const hs256 = await new SignJWT({ iss: ehr.iss, aud: PV, iat: now, exp: now + 60, jti: 'hs-1' })
      // the classic confusion: the EHR's public key bytes as an HMAC secret
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'k-RS384', jku: ehr.jku })
      .sign(new TextEncoder().encode(ehr.publicPem));
    const replayed = await ehr.sign(PV);
    const cases: Array<[string, string | undefined, string]> = [
      ['no token', undefined, 'no-token'],
      ['not a JWT', 'not-a-jwt', 'malformed'],
      ['another issuer', await ehr.sign(PV, { iss: 'https://other-ehr.test' }), 'issuer'],
      ['jku not allow-listed', await intruder.sign(PV), 'jku'],
      ['signed by another key under the EHR jku', await intruder.sign(PV, {}, { jku: ehr.jku }), 'signature'],
      ['expired', await ehr.sign(PV, { iat: now - 600, exp: now - 300 }), 'expired'],
      ['exp an hour ahead', await ehr.sign(PV, { exp: now + 3600 }), 'lifetime'],
      ['no jti', await ehr.sign(PV, { jti: undefined }), 'claims'],
      ['aud of the other service', await ehr.sign(PV.replace('patient-view', 'appointment-book')), 'audience'],
      ['aud without the path', await ehr.sign(PUBLIC_URL), 'audience'],
      ['HS256', hs256, 'algorithm'],
    ];
    for (const [what, token, reason] of cases) {
      const r = await call('/cds-services/eyewear-patient-view', { token, body });
      expect([what, r.status, r.body.code, r.body.reason, r.body.cards]).toEqual([what, 401, 'GW_CDS_TOKEN_REFUSED', reason, undefined]);
    }
    expect((await call('/cds-services/eyewear-patient-view', { token: replayed, body })).status).toBe(200);
    const again = await call('/cds-services/eyewear-patient-view', { token: replayed, body });
    expect([again.status, again.body.reason]).toEqual([401, 'replay']);

    const status = h.gw.status().cdsHooks as { refusals: Record<string, number> };
    expect(status.refusals).toEqual({
      algorithm: 1,
      audience: 2,
      claims: 1,
      expired: 1,
      issuer: 1,
      jku: 1,
      lifetime: 1,
      malformed: 1,
      'no-token': 1,
      replay: 1,
      signature: 1,
    });
    expect(h.gw.parts.metrics.render()).toContain('ewml_cds_refusals_total{reason="replay"} 1');
    // audited: one log line per refusal, with the code and the reason, and no token in it
    const lines = h.logs.filter((l) => l.includes('CDS Hooks request refused'));
    expect(lines).toHaveLength(12);
    for (const l of lines) {
      expect(l).toContain('"code":"GW_CDS_TOKEN_REFUSED"');
      expect(l).not.toContain(replayed.slice(0, 20));
    }
  });

  it('answers 400 for a body that is not its hook, and 404 for an unknown service', async () => {
    const wrongHook = await call('/cds-services/eyewear-patient-view', {
      token: await ehr.sign(PV),
      body: hookRequest('appointment-book', 'ehr-1'),
    });
    expect([wrongHook.status, wrongHook.body.code]).toEqual([400, 'GW_CDS_BAD_REQUEST']);
    const notJson = await call('/cds-services/eyewear-patient-view', { token: await ehr.sign(PV), body: '{"hook": "MRN5001' });
    expect([notJson.status, notJson.body.code, JSON.stringify(notJson.body).includes('MRN5001')]).toEqual([
      400,
      'GW_CDS_BAD_REQUEST',
      false,
    ]);
    const unknown = await call('/cds-services/nope', { token: await ehr.sign(PV), body: hookRequest('patient-view', 'x') });
    expect(unknown.status).toBe(404);
  });

  it('takes card feedback from the EHR (its token for the service or the feedback URL)', async () => {
    const feedback = { feedback: [{ card: 'c1', outcome: 'accepted', outcomeTimestamp: new Date().toISOString() }] };
    const r = await call('/cds-services/eyewear-patient-view/feedback', { token: await ehr.sign(`${PV}/feedback`), body: feedback });
    expect([r.status, r.body]).toEqual([200, {}]);
    const unsigned = await call('/cds-services/eyewear-patient-view/feedback', { body: feedback });
    expect([unsigned.status, unsigned.body.reason]).toEqual([401, 'no-token']);
  });

  it('shows its port, requests, cards and refusals in /status', async () => {
    const s = h.gw.status().cdsHooks as Record<string, unknown>;
    expect(s).toMatchObject({
      listening: { host: '127.0.0.1', port },
      cardsServed: { 'rx-expiry': 4, appointment: 2 },
      feedback: { accepted: 1 },
      readModel: { patients: 2, links: 2, pending: 0, dropped: 0, evicted: 0, unreadable: 0 },
    });
    expect((s.requests as Record<string, number>)['appointment-book']).toBe(1);
  });

  it('keeps the read model sealed: no identifier, name or date of the records in the file', async () => {
    const file = join(h.dataDir, READ_MODEL_FILE);
    const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
    expect(bytes.length).toBeGreaterThan(0);
    const text = bytes.toString('latin1');
    for (const needle of [
      'MRN5001',
      'MRN5002',
      'E5002',
      'CLINIC',
      'Synthetic',
      'Comprehensive',
      'Paula',
      in10,
      ago3,
      '2025-01-15',
      'A5002',
    ])
      expect(text.includes(needle), needle).toBe(false);
  });
});
