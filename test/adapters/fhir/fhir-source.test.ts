/**
 * The FHIR source inside a whole gateway (real outbox, relay and an HTTPS reference cloud),
 * reading the test FHIR server as each vendor behaves: a generic R4 server paged through with
 * `_lastUpdated`, throttling and failing on the way; Epic, which lists `_lastUpdated` nowhere and
 * exports by Group; a server that is not R4. The expected records are the mapping of exactly what
 * the server holds (each resource's stored form, so its content hash is the one the gateway sees).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowHash } from '../../../adapters/canonical/row-hash.ts';
import { mapFhirResource } from '../../../adapters/fhir/map-fhir.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { gatewayFhirKeys, type GatewayFhirKeys } from '../../support/fhir-gateway.ts';
import { loadCorpus, startFhirServer, syntheticPatients, type FhirServer } from '../../support/fhir-server/index.ts';
import { corpus } from '../../support/corpus.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();
const CLIENT = 'ewml-gateway';
const RESOURCES = ['Patient', 'Appointment', 'VisionPrescription', 'Coverage', 'Practitioner', 'Observation'] as const;

/** The record ids the gateway must deliver for what the server holds now. */
function expectedIds(fhir: FhirServer, system: string, types: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const t of types)
    for (const r of fhir.store.live(t).map((v) => v.resource!)) {
      const m = mapFhirResource(r as Record<string, unknown>, { system, adapter: 'fhir', now: () => 0 }, rowHash(r));
      for (const rec of m.records) ids.add(rec.id);
    }
  return ids;
}

const fhirEntry = (baseUrl: string, over: Record<string, unknown> = {}) => ({
  id: 'ehr',
  vendor: 'generic',
  baseUrl,
  clientId: CLIENT,
  resources: [...RESOURCES],
  pollIntervalMs: 1000,
  pageSize: 5,
  overlapSeconds: 0,
  ...over,
});

describe.skipIf(!corpus.present)('a generic R4 server, paged by _lastUpdated', () => {
  let cloud: HttpReferenceCloud;
  let fhir: FhirServer;
  let gk: GatewayFhirKeys;
  let h: Harness;
  const system = 'GENERIC:ehr';

  beforeAll(async () => {
    gk = await gatewayFhirKeys('ehr', 'ES384');
    fhir = await startFhirServer({
      vendor: 'generic',
      resources: loadCorpus(['fhir/fhir-r4-examples', 'fhir/fhir-eyecare-ig'], { types: [...RESOURCES] }),
      clients: [{ clientId: CLIENT, jwks: gk.jwks }],
      faults: { throttle: { every: 9, retryAfterSeconds: 1 }, failures: { at: [6], status: 503 } },
    });
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    h = await startHarness(
      {
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        fhir: [fhirEntry(fhir.baseUrl, { keyAlg: 'ES384' })] as never,
      },
      { dataDir: gk.dataDir, logLevel: 'info' },
    );
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await fhir?.stop();
    rmSync(gk.dataDir, { recursive: true, force: true });
  });

  it('reads every page of every resource through 429s and a 503, and delivers exactly the mapped records', async () => {
    const want = expectedIds(fhir, system, RESOURCES);
    expect(want.size).toBeGreaterThan(40);
    await waitFor(() => [...want].every((id) => cloud.store.records.has(id)), 60_000, 'every mapped record delivered');
    const got = [...cloud.store.records.values()].filter((r) => r.source.adapter === 'fhir');
    expect(new Set(got.map((r) => r.id))).toEqual(want);
    const throttled = fhir.requests.filter((r) => r.status === 429).length;
    expect(throttled).toBeGreaterThan(0);
    expect(fhir.requests.filter((r) => r.status === 503)).toHaveLength(1);
    // each page asked for five, and followed the server's next links
    const patientPages = fhir.requests.filter((r) => r.path.endsWith('/fhir/r4') || r.path.endsWith('/Patient'));
    expect(patientPages.length).toBeGreaterThan(2);
  });

  it('shows the server, each strategy and its search parameters in /status', () => {
    const d = h.gw.parts.adapters.find((a) => a.id === 'ehr')!.health().detail!;
    expect(d.fhirVersion).toBe('4.0.1');
    expect(d.software).toBe('ewml FHIR test server 1.0.0');
    for (const r of RESOURCES) expect(d[`${r}.strategy`]).toBe('lastUpdated');
    expect(String(d['Patient.searchParams'])).toContain('_lastUpdated');
  });

  it('reads only what changed on the next poll: one Patient changed gives one new record, the rest write nothing', async () => {
    const before = cloud.store.records.size;
    const p = fhir.store.live('Patient')[0].resource!;
    fhir.store.advance(2000);
    const changed = fhir.store.put({ ...p, gender: p.gender === 'male' ? 'female' : 'male' });
    const [newId] = mapFhirResource(
      changed as Record<string, unknown>,
      { system, adapter: 'fhir', now: () => 0 },
      rowHash(changed),
    ).records.map((r) => r.id);
    await waitFor(() => cloud.store.records.has(newId), 20_000, 'the changed Patient');
    await new Promise((r) => setTimeout(r, 1500));
    expect(cloud.store.records.size).toBe(before + 1);
    const incremental = fhir.requests.filter((r) => r.path.endsWith('/Patient') && typeof r.query._lastUpdated === 'string');
    expect(incremental.length).toBeGreaterThan(0);
    expect(String(incremental.at(-1)!.query._lastUpdated)).toMatch(/^ge\d{4}-\d{2}-\d{2}T/);
  });

  it('serves the public JWKS without a token for vendors that fetch it, and nothing else without one', async () => {
    const base = `http://127.0.0.1:${h.adminPort}`;
    const res = await fetch(`${base}/fhir/ehr/jwks.json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Array<Record<string, unknown>> };
    expect(body).toEqual(gk.jwks);
    expect(body.keys[0].d).toBeUndefined();
    expect((await fetch(`${base}/fhir/other/jwks.json`)).status).toBe(404);
    expect((await fetch(`${base}/status`)).status).toBe(401);
  });

  it('renews a revoked token once and goes on reading', async () => {
    const tokensBefore = fhir.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length;
    fhir.revokeTokens();
    const p = fhir.store.live('Patient')[1].resource!;
    fhir.store.advance(2000);
    const changed = fhir.store.put({ ...p, birthDate: '1999-09-09' });
    const [id] = mapFhirResource(
      changed as Record<string, unknown>,
      { system, adapter: 'fhir', now: () => 0 },
      rowHash(changed),
    ).records.map((r) => r.id);
    await waitFor(() => cloud.store.records.has(id), 20_000, 'the Patient changed after the revocation');
    const tokensAfter = fhir.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length;
    expect(tokensAfter).toBe(tokensBefore + 1);
    expect(fhir.requests.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(1);
  });
});

describe('Epic: no _lastUpdated, clinical searches need a patient, export by Group', () => {
  let cloud: HttpReferenceCloud;
  let fhir: FhirServer;
  let gk: GatewayFhirKeys;
  let h: Harness;

  beforeAll(async () => {
    gk = await gatewayFhirKeys('epic', 'RS384');
    fhir = await startFhirServer({
      vendor: 'epic',
      synthetic: [syntheticPatients(250, { groups: ['practice-1'] })],
      clients: [{ clientId: CLIENT, jwks: gk.jwks }],
      bulk: { pollsBeforeReady: 2, retryAfterSeconds: 1, maxResourcesPerFile: 100 },
    });
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    h = await startHarness(
      {
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        fhir: [
          {
            id: 'epic',
            vendor: 'epic',
            baseUrl: fhir.baseUrl,
            clientId: CLIENT,
            resources: ['Patient'],
            pageSize: 40,
            bulk: { groupId: 'practice-1' },
          },
        ] as never,
      },
      { dataDir: gk.dataDir, logLevel: 'info' },
    );
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    await cloud?.stop();
    await fhir?.stop();
    rmSync(gk.dataDir, { recursive: true, force: true });
  });

  it('loads every patient by a Group export, polling its status, and never searches with _lastUpdated', async () => {
    await waitFor(() => [...cloud.store.records.values()].filter((r) => r.type === 'patient').length >= 250, 60_000, '250 patients');
    const patients = [...cloud.store.records.values()].filter((r) => r.type === 'patient');
    expect(patients).toHaveLength(250);
    expect(new Set(patients.map((r) => r.source.sourceId)).size).toBe(250);
    const kickOffs = fhir.requests.filter((r) => r.path.endsWith('/Group/practice-1/$export'));
    expect(kickOffs).toHaveLength(1);
    expect(kickOffs[0].query._type).toBe('Patient');
    const status = fhir.requests.filter((r) => r.path.includes('/bulkstatus/'));
    // two 'in progress' answers, the manifest, then the job deleted on the server once imported
    expect(status.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 202', 'GET 202', 'GET 200', 'DELETE 202']);
    expect(fhir.requests.filter((r) => r.path.includes('/bulkfiles/'))).toHaveLength(3);
    expect(fhir.requests.some((r) => r.query._lastUpdated !== undefined)).toBe(false);
    const d = h.gw.parts.adapters.find((a) => a.id === 'epic')!.health().detail!;
    expect(d['Patient.strategy']).toBe('bulk');
    await waitFor(() => h.gw.parts.adapters.find((a) => a.id === 'epic')!.health().detail!['bulk.state'] === 'idle', 10_000, 'export done');
  });
});

describe('a server that is not R4', () => {
  it('is refused at start with GW_FHIR_NOT_R4 and the version it speaks, in /status', async () => {
    const gk = await gatewayFhirKeys('old', 'RS384');
    const fhir = await startFhirServer({ vendor: 'generic', fhirVersion: '3.0.2', clients: [{ clientId: CLIENT, jwks: gk.jwks }] });
    const h = await startHarness(
      { hl7: { enabled: false }, fhir: [{ ...fhirEntry(fhir.baseUrl), id: 'old' }] as never },
      { dataDir: gk.dataDir, logLevel: 'info' },
    );
    try {
      await waitFor(() => h.logs.some((l) => l.includes('GW_FHIR_NOT_R4')), 10_000, 'the refusal logged');
      const status = h.gw.status() as { components?: Record<string, { code?: string; error?: string }> };
      expect(JSON.stringify(status)).toContain('GW_FHIR_NOT_R4');
      const d = h.gw.parts.adapters.find((a) => a.id === 'old')!.health().detail!;
      expect(d.error).toBe('GW_FHIR_NOT_R4');
      expect(d.reason).toBe('the server speaks FHIR 3.0.2, not R4 (4.0.1): point baseUrl at its R4 endpoint');
    } finally {
      await h.stop();
      await fhir.stop();
      rmSync(gk.dataDir, { recursive: true, force: true });
    }
  });
});
