/**
 * The FHIR R4 test server (test/support/fhir-server/) against the rules it claims to follow:
 * SMART Backend Services tokens, search and keyset paging per vendor, `_lastUpdated` where the
 * vendor has it, conditional and version-aware writes, and the faults. Bulk export: fhir-server/bulk.test.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateSecret, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpus } from './corpus.ts';
import {
  createTestClientKeys,
  type FhirServer,
  fetchAccessToken,
  loadCorpus,
  requestToken,
  signClientAssertion,
  startFhirServer,
  type TestClientKeys,
} from './fhir-server/index.ts';

const T0 = Date.UTC(2025, 2, 1, 12, 0, 0);
/** Patients in fhir-r4-examples: 20 Patient files, 4 with ids inside Bundles (23, 45, 123, 123a), 4 without ids inside Bundles. */
const R4_EXAMPLE_PATIENTS = 28;

// biome-ignore lint/suspicious/noExplicitAny: FHIR JSON read back in assertions, where a wrong path fails the test anyway
type Json = Record<string, any>;

let rs: TestClientKeys;
let es: TestClientKeys;
beforeAll(async () => {
  rs = await createTestClientKeys('client-rs', 'RS384');
  es = await createTestClientKeys('client-es', 'ES384');
});

async function getJson(url: string, token?: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, {
    headers: { accept: 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
  return { status: r.status, headers: r.headers, body: (await r.json()) as Json };
}

describe('SMART Backend Services', () => {
  let fhir: FhirServer;
  beforeAll(async () => {
    fhir = await startFhirServer({
      clients: [
        { clientId: rs.clientId, jwks: rs.jwks },
        { clientId: es.clientId, jwks: es.jwks },
      ],
    });
  });
  afterAll(() => fhir.stop());

  it('publishes the smart-configuration of a backend-services server', async () => {
    const { status, body } = await getJson(`${fhir.baseUrl}/.well-known/smart-configuration`);
    expect(status).toBe(200);
    expect(body.token_endpoint).toBe(fhir.tokenUrl);
    expect(body.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
    expect(body.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384', 'ES384']);
    expect(body.grant_types_supported).toEqual(['client_credentials']);
    expect(body.scopes_supported).toContain('system/*.read');
  });

  it('grants a token for a valid RS384 assertion and the token opens the API', async () => {
    const { status, body } = await requestToken(fhir.tokenUrl, await signClientAssertion(rs, fhir.tokenUrl), 'system/*.read');
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'bearer', expires_in: 300, scope: 'system/*.read' });
    expect((await getJson(`${fhir.baseUrl}/Patient`, String(body.access_token))).status).toBe(200);
  });

  it('grants a token for a valid ES384 assertion', async () => {
    const { status } = await requestToken(fhir.tokenUrl, await signClientAssertion(es, fhir.tokenUrl));
    expect(status).toBe(200);
  });

  it.each([
    [
      'a wrong aud',
      async () => signClientAssertion(rs, fhir.tokenUrl, { aud: `${fhir.origin}/other/token` }),
      'assertion claim aud is invalid',
    ],
    [
      'an expired assertion',
      async () => signClientAssertion(rs, fhir.tokenUrl, { exp: Math.floor(Date.now() / 1000) - 10 }),
      'assertion expired',
    ],
    [
      'an exp more than five minutes ahead',
      async () => signClientAssertion(rs, fhir.tokenUrl, { exp: Math.floor(Date.now() / 1000) + 400 }),
      'exp is more than five minutes ahead',
    ],
    [
      'sub other than the client id',
      async () => signClientAssertion(rs, fhir.tokenUrl, { sub: 'someone-else' }),
      'assertion claim sub is invalid',
    ],
    ['an unknown client', async () => signClientAssertion({ ...rs, clientId: 'nobody' }, fhir.tokenUrl), 'unknown client'],
    [
      'a key the client did not register',
      async () => signClientAssertion({ ...es, clientId: rs.clientId, kid: rs.kid }, fhir.tokenUrl),
      'no registered key matches the assertion',
    ],
    [
      'HS256',
      async () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(rs.clientId)
          .setSubject(rs.clientId)
          .setAudience(fhir.tokenUrl)
          .setExpirationTime('2m')
          .setJti('hs-1')
          .sign(await generateSecret('HS256')),
      'alg HS256 is not allowed (RS384 or ES384)',
    ],
  ])('refuses %s with 401 invalid_client', async (_what, make, description) => {
    const { status, body } = await requestToken(fhir.tokenUrl, await make());
    expect(status).toBe(401);
    expect(body).toEqual({ error: 'invalid_client', error_description: description });
  });

  it('refuses a replayed jti', async () => {
    const assertion = await signClientAssertion(rs, fhir.tokenUrl, { jti: 'once-only' });
    expect((await requestToken(fhir.tokenUrl, assertion)).status).toBe(200);
    expect(await requestToken(fhir.tokenUrl, assertion)).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'jti already used' },
    });
  });

  it('refuses another grant type with 400 unsupported_grant_type', async () => {
    const r = await fetch(fhir.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=x',
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as Json).error).toBe('unsupported_grant_type');
  });

  it('answers 401 without a token, with a revoked token and with an expired one', async () => {
    const noToken = await getJson(`${fhir.baseUrl}/Patient`);
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toBe('Bearer realm="fhir", error="invalid_token"');
    expect(noToken.body.issue[0].code).toBe('login');

    const revoked = await fetchAccessToken(rs, fhir.tokenUrl);
    fhir.revokeTokens();
    expect((await getJson(`${fhir.baseUrl}/Patient`, revoked)).status).toBe(401);

    const now = Date.now();
    fhir.store.setNow(now);
    const expiring = await fetchAccessToken(rs, fhir.tokenUrl, 'system/*.read', now);
    expect((await getJson(`${fhir.baseUrl}/Patient`, expiring)).status).toBe(200);
    fhir.store.advance(300_000);
    expect((await getJson(`${fhir.baseUrl}/Patient`, expiring)).status).toBe(401);
    fhir.store.setNow(undefined);
  });

  it('limits the API to the granted scopes (403 outside them)', async () => {
    const token = await fetchAccessToken(rs, fhir.tokenUrl, 'system/Patient.rs');
    expect((await getJson(`${fhir.baseUrl}/Patient`, token)).status).toBe(200);
    const other = await getJson(`${fhir.baseUrl}/Observation`, token);
    expect(other.status).toBe(403);
    expect(other.body.issue[0].code).toBe('forbidden');
  });

  it('fetches a hosted JWKS (Epic-style jwksUrl) at the token request', async () => {
    let served = 0;
    const jwksHost = createServer((_req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(es.jwks));
    });
    await new Promise<void>((resolve) => jwksHost.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwksHost.address() as AddressInfo).port}/jwks.json`;
    const epic = await startFhirServer({ vendor: 'epic', clients: [{ clientId: es.clientId, jwksUrl }] });
    try {
      const { status, body } = await requestToken(epic.tokenUrl, await signClientAssertion(es, epic.tokenUrl));
      expect(status).toBe(200);
      expect(served).toBe(1);
      expect((await getJson(`${epic.baseUrl}/Patient`, String(body.access_token))).status).toBe(200);
    } finally {
      await epic.stop();
      await new Promise<void>((resolve) => jwksHost.close(() => resolve()));
    }
  });
});

describe.skipIf(!corpus.present)('search and paging over the R4 examples', () => {
  const servers: Record<string, FhirServer> = {};
  beforeAll(async () => {
    const resources = loadCorpus(['fhir/fhir-r4-examples']);
    for (const vendor of ['generic', 'cerner', 'athenahealth'] as const) {
      servers[vendor] = await startFhirServer({ vendor, resources, requireAuth: false, clock: () => T0 });
    }
  });
  afterAll(() => Promise.all(Object.values(servers).map((s) => s.stop())));

  /** Follows next links to the end (bounded); returns the ids in order and the next URLs seen. */
  async function walk(firstUrl: string, maxPages = 50) {
    const ids: string[] = [];
    const nexts: string[] = [];
    let url: string | undefined = firstUrl;
    for (let page = 0; url && page < maxPages; page++) {
      const { status, body } = await getJson(url);
      expect(status).toBe(200);
      ids.push(...(body.entry ?? []).map((e: Json) => e.resource.id));
      url = body.link.find((l: Json) => l.relation === 'next')?.url;
      if (url) nexts.push(url);
    }
    return { ids, nexts };
  }

  it.each([
    ['generic', '_getpages='],
    ['cerner', '-pageDirection=NEXT'],
    ['athenahealth', 'cursor='],
  ])('%s: paging to the end returns each Patient exactly once (next links carry %s)', async (vendor, marker) => {
    const fhir = servers[vendor];
    const { ids, nexts } = await walk(`${fhir.baseUrl}/Patient?_count=5`);
    expect(ids.length).toBe(R4_EXAMPLE_PATIENTS);
    expect(new Set(ids).size).toBe(R4_EXAMPLE_PATIENTS);
    expect(nexts.length).toBe(5);
    for (const n of nexts) expect(n).toContain(marker);
  });

  it('keeps a walk whole while resources change: nothing skipped, the updated one comes again at the end', async () => {
    const fhir = servers.generic;
    const first = await getJson(`${fhir.baseUrl}/Patient?_count=10`);
    expect(first.body.total).toBe(R4_EXAMPLE_PATIENTS);
    const firstIds: string[] = first.body.entry.map((e: Json) => e.resource.id);
    fhir.store.setNow(T0 + 1000);
    const changed = fhir.store.put({ ...fhir.store.get('Patient', firstIds[0])!, active: false });
    fhir.store.put({ resourceType: 'Patient', id: 'added-mid-walk' });
    const rest = await walk(first.body.link.find((l: Json) => l.relation === 'next').url);
    expect(changed.meta?.versionId).toBe('2');
    expect(new Set([...firstIds, ...rest.ids]).size).toBe(R4_EXAMPLE_PATIENTS + 1);
    expect(rest.ids.slice(-2).sort()).toEqual(['added-mid-walk', firstIds[0]].sort());
    fhir.store.delete('Patient', 'added-mid-walk');
  });

  it('filters by _lastUpdated gt (after) and ge (at or after)', async () => {
    const fhir = await startFhirServer({ requireAuth: false, clock: () => T0 });
    try {
      for (let i = 0; i < 4; i++) {
        fhir.store.setNow(T0 + i * 1000);
        fhir.store.put({ resourceType: 'Observation', id: `o${i}`, status: 'final' });
      }
      const at = new Date(T0 + 2000).toISOString();
      const ids = async (q: string) =>
        (await getJson(`${fhir.baseUrl}/Observation?${q}`)).body.entry?.map((e: Json) => e.resource.id) ?? [];
      expect(await ids(`_lastUpdated=gt${at}`)).toEqual(['o3']);
      expect(await ids(`_lastUpdated=ge${at}`)).toEqual(['o2', 'o3']);
      expect(await ids(`_lastUpdated=ge${new Date(T0 + 1000).toISOString()}&_lastUpdated=lt${at}&_sort=_lastUpdated`)).toEqual(['o1']);
      expect(await ids(`_lastUpdated=gt${encodeURIComponent('2025-03-01T13:00:01+01:00')}`)).toEqual(['o2', 'o3']);
    } finally {
      await fhir.stop();
    }
  });

  it('finds Observations by patient (plain, absolute and versioned references) and Appointments by date', async () => {
    const fhir = servers.generic;
    const count = async (q: string) => (await getJson(`${fhir.baseUrl}/${q}`)).body.total;
    expect(await count('Observation?patient=example')).toBe(8);
    expect(await count('Observation?patient=Patient/23')).toBe(3);
    expect(await count('Observation?patient=45')).toBe(1);
    expect(await count('Appointment?date=ge2013-12-10')).toBe(1);
    expect(await count('Appointment?date=lt2013-12-10')).toBe(1);
    expect(await count('Appointment?date=2013-12')).toBe(2);
    expect(await count('Appointment?date=gt2013-12-09T09:00:00Z')).toBe(1);
    expect(await count('Appointment?date=ge2013-12-09T09:00:00Z')).toBe(2);
  });

  it('cerner: _lastUpdated takes ge but not gt, and not on Patient', async () => {
    const fhir = servers.cerner;
    expect((await getJson(`${fhir.baseUrl}/Observation?patient=example&_lastUpdated=ge2025-01-01`)).body.total).toBe(8);
    const gt = await getJson(`${fhir.baseUrl}/Observation?patient=example&_lastUpdated=gt2025-01-01`);
    expect(gt.status).toBe(400);
    expect(gt.body.issue[0]).toMatchObject({ code: 'not-supported', diagnostics: '_lastUpdated: prefix gt is not supported' });
    expect((await getJson(`${fhir.baseUrl}/Patient?_lastUpdated=ge2025-01-01`)).status).toBe(400);
  });

  it('reads a resource with its version ETag, answers 410 once it is deleted, and lists the deletion in _history', async () => {
    const fhir = servers.generic;
    const ok = await getJson(`${fhir.baseUrl}/Patient/pat1`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('W/"1"');
    fhir.store.delete('Patient', 'pat1');
    expect((await getJson(`${fhir.baseUrl}/Patient/pat1`)).status).toBe(410);
    expect((await getJson(`${fhir.baseUrl}/Patient/no-such`)).status).toBe(404);
    const h = await getJson(`${fhir.baseUrl}/Patient/_history?_count=1`);
    expect(h.body.entry).toEqual([
      expect.objectContaining({ request: { method: 'DELETE', url: 'Patient/pat1' }, response: expect.objectContaining({ etag: 'W/"2"' }) }),
    ]);
    expect(h.body.entry[0].resource).toBeUndefined();
    expect(fhir.store.count('Patient')).toBe(R4_EXAMPLE_PATIENTS - 1);
    const countOnly = await getJson(`${fhir.baseUrl}/Patient?_count=0`);
    expect([countOnly.body.total, countOnly.body.entry]).toEqual([R4_EXAMPLE_PATIENTS - 1, []]);
  });
});

describe('vendor profiles', () => {
  it.each([
    ['generic', '/fhir/r4', '/auth/token'],
    ['epic', '/api/FHIR/R4', '/oauth2/token'],
    [
      'cerner',
      '/r4/3f1c7d2e-5b8a-4c61-9e0f-2a7b6c4d8e91',
      '/tenants/3f1c7d2e-5b8a-4c61-9e0f-2a7b6c4d8e91/protocols/oauth2/profiles/smart-v1/token',
    ],
    ['athenahealth', '/fhir/r4/1128700', '/oauth2/v1/token'],
    ['meditech', '/v1/uscore/R4', '/oauth/token'],
  ] as const)('%s serves its base at %s and its token endpoint at %s', async (vendor, base, token) => {
    const fhir = await startFhirServer({ vendor, requireAuth: false });
    try {
      expect(fhir.baseUrl).toBe(`${fhir.origin}${base}`);
      expect(fhir.tokenUrl).toBe(`${fhir.origin}${token}`);
      const meta = await getJson(`${fhir.baseUrl}/metadata`);
      expect(meta.body.rest[0].security.extension[0].extension[0].valueUri).toBe(fhir.tokenUrl);
    } finally {
      await fhir.stop();
    }
  });

  it('epic: the CapabilityStatement lists _lastUpdated on no resource and a _lastUpdated search is refused', async () => {
    const fhir = await startFhirServer({ vendor: 'epic', requireAuth: false, fhirVersion: '4.0.1' });
    try {
      const meta = (await getJson(`${fhir.baseUrl}/metadata`)).body;
      expect(meta.fhirVersion).toBe('4.0.1');
      expect(meta.software).toEqual({ name: 'Epic', version: 'November 2024' });
      const params = (type: string) => meta.rest[0].resource.find((r: Json) => r.type === type).searchParam.map((p: Json) => p.name);
      expect(meta.rest[0].resource.flatMap((r: Json) => r.searchParam.map((p: Json) => p.name))).not.toContain('_lastUpdated');
      expect(params('Appointment')).toEqual(['_id', 'patient', 'date', 'identifier']);
      expect(meta.rest[0].resource.map((r: Json) => r.type)).not.toContain('VisionPrescription');
      const refused = await getJson(`${fhir.baseUrl}/Patient?_lastUpdated=gt2025-01-01T00:00:00Z`);
      expect(refused.status).toBe(400);
      expect(refused.body).toEqual({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-supported', diagnostics: 'search parameter _lastUpdated is not supported on Patient' }],
      });
      expect((await getJson(`${fhir.baseUrl}/Appointment?date=ge2025-01-01`)).status).toBe(400);
    } finally {
      await fhir.stop();
    }
  });

  it('serves another fhirVersion when asked (a test of a server that is not R4)', async () => {
    const fhir = await startFhirServer({ requireAuth: false, fhirVersion: '3.0.2' });
    try {
      expect((await getJson(`${fhir.baseUrl}/metadata`)).body.fhirVersion).toBe('3.0.2');
    } finally {
      await fhir.stop();
    }
  });
});

describe('writes', () => {
  let fhir: FhirServer;
  beforeAll(async () => {
    fhir = await startFhirServer({ requireAuth: false });
  });
  afterAll(() => fhir.stop());

  const send = async (method: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${fhir.baseUrl}/${path}`, {
      method,
      headers: { 'content-type': 'application/fhir+json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: r.status, headers: r.headers, body: (await r.json()) as Json };
  };

  it('conditional create (If-None-Exist) returns the existing resource with 200 instead of a duplicate', async () => {
    const patient = { resourceType: 'Patient', identifier: [{ system: 'urn:ewml:test', value: 'W-1' }] };
    const condition = { 'If-None-Exist': 'identifier=urn:ewml:test|W-1' };
    const first = await send('POST', 'Patient', patient, condition);
    expect(first.status).toBe(201);
    expect(first.body.meta.versionId).toBe('1');
    expect(first.headers.get('location')).toBe(`${fhir.baseUrl}/Patient/${first.body.id}/_history/1`);
    const again = await send('POST', 'Patient', patient, condition);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(fhir.store.count('Patient')).toBe(1);
  });

  it('update with If-Match: the current version succeeds and bumps versionId, a stale one gets 412', async () => {
    const created = fhir.store.put({ resourceType: 'Appointment', id: 'appt-1', status: 'booked' });
    const ok = await send('PUT', 'Appointment/appt-1', { ...created, status: 'arrived' }, { 'If-Match': 'W/"1"' });
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('2');
    expect(ok.headers.get('etag')).toBe('W/"2"');
    const stale = await send('PUT', 'Appointment/appt-1', { ...created, status: 'cancelled' }, { 'If-Match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.issue[0].code).toBe('conflict');
    expect(fhir.store.get('Appointment', 'appt-1')?.status).toBe('arrived');
  });
});

describe('faults', () => {
  it('throttles every Nth request with 429 and Retry-After, and logs it', async () => {
    const fhir = await startFhirServer({ requireAuth: false, faults: { throttle: { every: 2, retryAfterSeconds: 7 } } });
    try {
      expect((await getJson(`${fhir.baseUrl}/Patient`)).status).toBe(200);
      const throttled = await getJson(`${fhir.baseUrl}/Patient`);
      expect(throttled.status).toBe(429);
      expect(throttled.headers.get('retry-after')).toBe('7');
      expect(throttled.body.issue[0].code).toBe('throttled');
      expect(fhir.requests.map((r) => [r.method, r.path, r.status, r.hadToken])).toEqual([
        ['GET', '/fhir/r4/Patient', 200, false],
        ['GET', '/fhir/r4/Patient', 429, false],
      ]);
    } finally {
      await fhir.stop();
    }
  });

  it('answers transient 503s at the given ordinals and cuts a connection mid-response', async () => {
    const fhir = await startFhirServer({ requireAuth: false, faults: { failures: { at: [1], status: 503 }, dropConnectionAt: [2] } });
    try {
      expect((await getJson(`${fhir.baseUrl}/metadata`)).status).toBe(503);
      await expect(fetch(`${fhir.baseUrl}/metadata`).then((r) => r.text())).rejects.toThrow();
      expect((await getJson(`${fhir.baseUrl}/metadata`)).status).toBe(200);
      expect(fhir.requests.map((r) => [r.status, r.dropped ?? false])).toEqual([
        [503, false],
        [200, true],
        [200, false],
      ]);
    } finally {
      await fhir.stop();
    }
  });

  it('athenahealth: a per-minute limit answers 429 until the next minute', async () => {
    const fhir = await startFhirServer({
      vendor: 'athenahealth',
      requireAuth: false,
      clock: () => T0,
      faults: { rateLimit: { perMinute: 2 } },
    });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await getJson(`${fhir.baseUrl}/metadata`)).status);
      expect(statuses).toEqual([200, 200, 429]);
      const limited = await getJson(`${fhir.baseUrl}/metadata`);
      expect(limited.headers.get('retry-after')).toBe('60');
      fhir.store.advance(60_000);
      expect((await getJson(`${fhir.baseUrl}/metadata`)).status).toBe(200);
    } finally {
      await fhir.stop();
    }
  });
});
