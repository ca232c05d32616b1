/**
 * The API source inside a whole gateway (real outbox, relay and an HTTPS reference cloud), reading
 * the vendor simulators (test/support/api-sim/) as each vendor behaves: DrChrono with a rotating
 * refresh token whose access tokens the server revokes mid-sync, and athenahealth through a 429
 * storm. The expected records are the mapping of exactly what the simulator serves (each row as
 * it sends it, so its content hash is the one the gateway sees).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiRowMapper, pageRows, streamOf } from '../../../adapters/api/api-rows.ts';
import type { ApiSourceConfig, ResolvedApiSource } from '../../../adapters/api/api-types.ts';
import { resolveApiSource } from '../../../adapters/api/resolve.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import {
  athenaAppointment,
  athenaDepartment,
  athenaPatient,
  athenaProvider,
  drchronoAppointment,
  drchronoDoctor,
  drchronoLineItem,
  drchronoOffice,
  drchronoPatient,
  startAthenaSim,
  startDrchronoSim,
  type AthenaSim,
  type DrchronoSim,
} from '../../support/api-sim/index.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();

/** The record ids the gateway must deliver for these rows of each entity. */
function expectedIds(source: ResolvedApiSource, timezone: string, rows: Record<string, Record<string, unknown>[]>): Set<string> {
  const mapper = createApiRowMapper({ sourceId: source.id, system: source.system, entities: source.entities, timezone, now: () => 0 });
  const ids = new Set<string>();
  for (const e of source.entities)
    for (const row of pageRows(source.id, e, JSON.parse(JSON.stringify(rows[e.name] ?? [])) as unknown[])) {
      const m = mapper.map(streamOf(source.id, e.name), row);
      expect(m.issues.filter((i) => i.severity === 'error')).toEqual([]);
      for (const r of m.records) ids.add(r.id);
    }
  return ids;
}

const resolved = (h: Harness, id: string): ResolvedApiSource =>
  resolveApiSource(h.config.apis.find((a) => a.id === id) as ApiSourceConfig).source!;
const delivered = (cloud: HttpReferenceCloud, adapter = 'api'): CanonicalRecord[] =>
  [...cloud.store.records.values()].filter((r) => r.source.adapter === adapter);
const health = (h: Harness, id: string) => h.gw.parts.adapters.find((a) => a.id === id)!.health();

describe('DrChrono: a rotating refresh token, access tokens revoked mid-sync, next links and deletes', () => {
  const TZ = 'America/Chicago';
  let sim: DrchronoSim;
  let cloud: HttpReferenceCloud;
  let h: Harness;
  let dataDir: string;
  const entry = () => ({
    id: 'drc',
    profile: 'drchrono',
    baseUrl: sim.origin,
    auth: {
      tokenUrl: `${sim.origin}/o/token/`,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshToken: 'drchrono-refresh-0',
    },
    pageSize: 7,
    pollIntervalMs: 1000,
    overlapSeconds: 0,
  });
  const start = (dir?: string) =>
    startHarness(
      {
        gateway: { timezone: TZ },
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        apis: [entry()] as never,
      },
      { logLevel: 'info', ...(dir ? { dataDir: dir } : {}) },
    );

  beforeAll(async () => {
    // each access token serves five calls, then the server refuses it (its expires_in still says 48 hours)
    sim = await startDrchronoSim({ timezone: TZ, perSecond: 10, faults: { tokenUses: 5 } });
    for (let i = 0; i < 2; i++) sim.put('doctors', drchronoDoctor(i));
    sim.put('offices', drchronoOffice(0));
    for (let i = 0; i < 40; i++) sim.put('patients', drchronoPatient(i));
    for (let i = 0; i < 30; i++)
      sim.put(
        'appointments',
        drchronoAppointment(i, i, i === 3 || i === 17 ? { appt_is_break: true, patient: null } : i === 9 ? { deleted_flag: true } : {}),
      );
    for (let i = 0; i < 10; i++) sim.put('line_items', drchronoLineItem(i, i));
    sim.deleteLineItem(60_004);
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    h = await start();
    dataDir = h.dataDir;
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await sim?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers exactly the mapped records of every entity: breaks are not appointments, a deleted appointment and a deleted line item are deletes', async () => {
    const want = expectedIds(
      resolved(h, 'drc'),
      TZ,
      Object.fromEntries(
        ['doctors', 'offices', 'patients', 'appointments', 'line_items', 'line_item_deletions'].map((e) => [e, sim.rows(e as never)]),
      ),
    );
    await waitFor(() => [...want].every((id) => cloud.store.records.has(id)), 30_000, 'every mapped record delivered');
    const got = delivered(cloud);
    expect(new Set(got.map((r) => r.id))).toEqual(want);
    const count = (type: string, op = 'upsert') => got.filter((r) => r.type === type && r.op === op).length;
    expect(count('patient')).toBe(40);
    expect(count('appointment')).toBe(27);
    expect(count('appointment', 'delete')).toBe(1);
    expect(count('charge')).toBe(9);
    expect(count('charge', 'delete')).toBe(1);
    expect(count('provider')).toBe(2);
    expect(count('location')).toBe(1);
    const deleted = got.find((r) => r.type === 'appointment' && r.op === 'delete')!;
    expect(deleted.source.sourceId).toBe('appointments/800009');
    expect(got.find((r) => r.type === 'charge' && r.op === 'delete')!.source.sourceId).toBe('line_items/60004');
    const p = got.find((r) => r.type === 'patient' && r.source.sourceId === 'patients/10001')!;
    expect(p.data).toMatchObject({ name: { family: 'Fischer', given: ['Bjorn'] }, sex: 'male', birthDate: '1941-02-02' });
    const a = got.find((r) => r.type === 'appointment' && r.source.sourceId === 'appointments/800001')!;
    // 10:30 in Chicago on 2026-05-05 (CDT, UTC-5)
    expect(a.data).toMatchObject({ start: '2026-05-05T10:30:00-05:00', status: 'booked', visitType: { code: '11' } });
  });

  it('renewed each revoked access token with the rotated refresh token, once per refusal, and kept the newest sealed', async () => {
    await waitFor(() => health(h, 'drc').detail?.lastCycleAt !== undefined, 30_000, 'the first cycle');
    const refused = () => sim.requests.filter((r) => !r.token && r.status === 401).length;
    const tokenCalls = () => sim.requests.filter((r) => r.token);
    // a poll may be between a refusal and its renewal: wait until they pair up
    await waitFor(
      () => tokenCalls().length === refused() + 1 && health(h, 'drc').detail?.refreshTokenGeneration === tokenCalls().length,
      10_000,
      'each refusal renewed',
    );
    // 16 pages in the first cycle, five calls a token: three refusals at least
    expect(refused()).toBeGreaterThanOrEqual(3);
    expect(tokenCalls().every((r) => r.status === 200)).toBe(true);
    expect(sim.refreshTokens.length).toBe(tokenCalls().length + 1);
  });

  it('reads only what changed on the next poll, with since in practice time: one patient changed gives one new record', async () => {
    const before = delivered(cloud).length;
    sim.clock.advance(2000);
    const changed = sim.put('patients', drchronoPatient(5, { last_name: 'Renamed' }));
    const [newId] = [...expectedIds(resolved(h, 'drc'), TZ, { patients: [changed] })];
    await waitFor(() => cloud.store.records.has(newId), 20_000, 'the changed patient');
    await new Promise((r) => setTimeout(r, 1500));
    expect(delivered(cloud).length).toBe(before + 1);
    const sinces = sim.requests.filter((r) => r.path === '/api/patients' && r.query.since).map((r) => r.query.since);
    expect(sinces.at(-1)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
  });

  it('after a restart uses the stored refresh token, not the one in the config the vendor has revoked', async () => {
    await h.stop();
    const refusedBefore = sim.requests.filter((r) => r.token && r.status !== 200).length;
    sim.tokens.revokeAll();
    h = await start(dataDir);
    expect(health(h, 'drc').status).not.toBe('down');
    expect(sim.requests.filter((r) => r.token && r.status !== 200).length).toBe(refusedBefore);
    sim.clock.advance(2000);
    const changed = sim.put('patients', drchronoPatient(6, { last_name: 'AfterRestart' }));
    const [id] = [...expectedIds(resolved(h, 'drc'), TZ, { patients: [changed] })];
    await waitFor(() => cloud.store.records.has(id), 20_000, 'a patient changed after the restart');
  });
});

describe('athenahealth: practice id in every path, offset paging, changed-data feeds, a 429 storm', () => {
  const TZ = 'America/New_York';
  const THROTTLED = [2, 3, 6, 9, 10, 13];
  let sim: AthenaSim;
  let cloud: HttpReferenceCloud;
  let h: Harness;

  beforeAll(async () => {
    sim = await startAthenaSim({
      timezone: TZ,
      perSecond: 10,
      departments: [1, 2, 3].map(athenaDepartment),
      providers: [0, 1, 2, 3].map(athenaProvider),
      faults: { throttle: { at: THROTTLED, retryAfterSeconds: 1 } },
    });
    for (let i = 0; i < 21; i++) sim.changePatient(athenaPatient(i));
    sim.changePatient(athenaPatient(4, { lastname: 'Changed', address1: '9 Other Road' }));
    sim.changePatient(athenaPatient(4, { lastname: 'Changed', address1: '9 Other Road' }));
    for (let i = 0; i < 17; i++) sim.changeAppointment(athenaAppointment(i, i, i === 5 ? { appointmentstatus: 'x' } : {}));
    // an open slot is not an appointment
    sim.changeAppointment(athenaAppointment(90, 0, { appointmentstatus: 'o', patientid: '' }));
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    h = await startHarness(
      {
        gateway: { timezone: TZ },
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        apis: [
          {
            id: 'athena',
            profile: 'athenahealth',
            baseUrl: sim.origin,
            variables: { practiceId: sim.practiceId },
            auth: { clientId: sim.clientId, clientSecret: sim.clientSecret },
            rateLimit: { perSecond: 5 },
            pageSize: 5,
            pollIntervalMs: 1000,
            overlapSeconds: 0,
          },
        ] as never,
      },
      { logLevel: 'info' },
    );
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await sim?.stop();
    if (h) rmSync(h.dataDir, { recursive: true, force: true });
  });

  it('delivers exactly the mapped records through the storm, with no more calls than pages, subscriptions and the 429s themselves', async () => {
    await waitFor(() => health(h, 'athena').detail?.lastCycleAt !== undefined, 40_000, 'the first cycle');
    // counted at the end of the first cycle: 1 page of departments, 1 of providers, 2 subscriptions,
    // 23 patient messages in 5 pages and 18 appointment messages in 4 (totalcount ends each: no empty page)
    const calls = sim.requests.filter((r) => !r.token);
    expect(calls.length).toBe(1 + 1 + 2 + 5 + 4 + THROTTLED.length);
    expect(calls.filter((r) => r.status === 429).map((r) => calls.indexOf(r) + 1)).toEqual(THROTTLED);
    expect(sim.requests.filter((r) => r.token)).toHaveLength(1);
    const want = expectedIds(resolved(h, 'athena'), TZ, {
      departments: sim.departments,
      providers: sim.providers,
      patients: sim.messages('patients'),
      appointments: sim.messages('appointments'),
    });
    await waitFor(() => [...want].every((id) => cloud.store.records.has(id)), 20_000, 'every mapped record delivered');
    const got = delivered(cloud);
    expect(new Set(got.map((r) => r.id))).toEqual(want);
    // 21 patients, one changed once (the repeat of the same change is the same record)
    expect(got.filter((r) => r.type === 'patient')).toHaveLength(22);
    expect(got.filter((r) => r.type === 'appointment')).toHaveLength(17);
    expect(got.filter((r) => r.type === 'appointment' && r.data.status === 'cancelled')).toHaveLength(1);
    expect(got.filter((r) => r.type === 'location')).toHaveLength(3);
    expect(got.filter((r) => r.type === 'provider')).toHaveLength(4);
    const a = got.find((r) => r.type === 'appointment' && r.source.sourceId === 'appointments/5001')!;
    expect(a.data).toMatchObject({
      start: '2026-03-03T09:30:00-05:00',
      status: 'booked',
      durationMinutes: 30,
      provider: { system: 'ATHENA-PROVIDER', value: '71' },
    });
  });

  it('puts the practice id in every path and asks each feed from its last run on, in practice time', async () => {
    const before = delivered(cloud).length;
    sim.clock.advance(2000);
    sim.changePatient(athenaPatient(30));
    await waitFor(() => delivered(cloud).length === before + 1, 20_000, 'the new patient');
    const calls = sim.requests.filter((r) => !r.token);
    expect(calls.every((r) => r.path.startsWith(`/v1/${sim.practiceId}/`))).toBe(true);
    const feeds = calls.filter((r) => r.path.endsWith('/patients/changed'));
    expect(feeds[0].query.showprocessedstartdatetime).toBe('01/01/2000 00:00:00');
    expect(feeds.at(-1)!.query.showprocessedstartdatetime).toMatch(/^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/);
    expect(feeds.every((r) => r.query.limit === '5')).toBe(true);
    // the gateway kept under its own 5 a second: the server never had to refuse one beyond the storm
    expect(calls.filter((r) => r.status === 429)).toHaveLength(THROTTLED.length);
    expect(health(h, 'athena').detail).toMatchObject({ 'patients.phase': 'incremental', auth: 'client-credentials' });
  });
});
