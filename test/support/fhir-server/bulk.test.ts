/**
 * The FHIR test server's Bulk Data export (Bulk Data IG v2): kick-off, status polling, the
 * manifest, token-protected downloads, `_since` with deletions, cancel, the vendors' levels, and a
 * 100,000-patient synthetic export streamed file by file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpus } from '../corpus.ts';
import {
  createTestClientKeys,
  type FhirServer,
  fetchAccessToken,
  loadCorpus,
  startFhirServer,
  syntheticPatients,
  type TestClientKeys,
} from './index.ts';

const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);
/** Lines per type in synthea-bulk-ndjson-10-patients (one resource per line). */
const SYNTHEA = { AllergyIntolerance: 11, Device: 16, Location: 44, Organization: 43, Patient: 13, Practitioner: 43, PractitionerRole: 43 };

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  deleted?: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count: number }[];
}

const ASYNC = { prefer: 'respond-async', accept: 'application/fhir+json' };

function auth(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Kicks off, polls (bounded) until the manifest, and returns it with the status codes seen. */
async function exportAll(
  kickOffUrl: string,
  token?: string,
  prefer = 'respond-async',
): Promise<{ manifest: Manifest; polls: number[]; progress: (string | null)[] }> {
  const kick = await fetch(kickOffUrl, { headers: { ...ASYNC, prefer, ...auth(token) } });
  expect(kick.status).toBe(202);
  const statusUrl = kick.headers.get('content-location')!;
  const polls: number[] = [];
  const progress: (string | null)[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await fetch(statusUrl, { headers: auth(token) });
    polls.push(r.status);
    if (r.status === 200) return { manifest: (await r.json()) as Manifest, polls, progress };
    expect(r.headers.get('retry-after')).toBe('1');
    progress.push(r.headers.get('x-progress'));
    await r.body?.cancel();
  }
  throw new Error('no manifest after 10 polls');
}

/** Downloads one NDJSON file, streaming: returns the number of lines and the first and last ids. */
async function download(url: string, token?: string): Promise<{ status: number; lines: number; first?: string; last?: string }> {
  const r = await fetch(url, { headers: auth(token) });
  if (r.status !== 200) return { status: r.status, lines: 0 };
  let lines = 0;
  let rest = '';
  let first: string | undefined;
  let last: string | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of r.body as AsyncIterable<Uint8Array>) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split('\n');
    rest = parts.pop()!;
    for (const p of parts) {
      lines++;
      const id = (JSON.parse(p) as { id?: string }).id;
      first ??= id;
      last = id;
    }
  }
  expect(rest).toBe('');
  return { status: r.status, lines, first, last };
}

describe.skipIf(!corpus.present)('Bulk Data export of the synthea NDJSON', () => {
  let fhir: FhirServer;
  let keys: TestClientKeys;
  let token: string;
  beforeAll(async () => {
    keys = await createTestClientKeys('bulk-client', 'ES384');
    fhir = await startFhirServer({
      resources: loadCorpus(['fhir/synthea-bulk-ndjson-10-patients']),
      clients: [{ clientId: keys.clientId, jwks: keys.jwks }],
      clock: () => T0,
      bulk: { pollsBeforeReady: 2, maxResourcesPerFile: 20 },
    });
    token = await fetchAccessToken(keys, fhir.tokenUrl, 'system/*.read', T0);
  });
  afterAll(() => fhir.stop());

  it('refuses a kick-off without Prefer: respond-async (400, OperationOutcome)', async () => {
    const r = await fetch(`${fhir.baseUrl}/$export`, { headers: auth(token) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { issue: { diagnostics: string }[] }).issue[0].diagnostics).toBe('$export needs Prefer: respond-async');
  });

  it('kicks off, answers 202 with X-Progress while in progress, then the manifest with every type counted', async () => {
    const { manifest, polls, progress } = await exportAll(`${fhir.baseUrl}/$export`, token);
    expect(polls).toEqual([202, 202, 200]);
    expect(progress).toEqual(['in progress (poll 1 of 2)', 'in progress (poll 2 of 2)']);
    expect(manifest.transactionTime).toBe(new Date(T0).toISOString());
    expect(manifest.request).toBe(`${fhir.baseUrl}/$export`);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.error).toEqual([]);
    expect(manifest.deleted).toBeUndefined();
    const perType: Record<string, number> = {};
    for (const o of manifest.output) perType[o.type] = (perType[o.type] ?? 0) + o.count;
    expect(perType).toEqual(SYNTHEA);
    expect(manifest.output.filter((o) => o.type === 'Location').map((o) => o.count)).toEqual([20, 20, 4]);
  });

  it('downloads each file with the token (lines = the manifest count) and refuses it without one (401)', async () => {
    const { manifest } = await exportAll(`${fhir.baseUrl}/$export?_type=Patient,Location`, token);
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([
      ['Location', 20],
      ['Location', 20],
      ['Location', 4],
      ['Patient', 13],
    ]);
    for (const o of manifest.output) expect((await download(o.url, token)).lines).toBe(o.count);
    expect((await download(manifest.output[0].url)).status).toBe(401);
  });

  it('_since exports what changed after it and lists deletions as DELETE Bundles', async () => {
    const patients = loadCorpus(['fhir/synthea-bulk-ndjson-10-patients'], { types: ['Patient'] });
    const small = await startFhirServer({ resources: patients, requireAuth: false, clock: () => T0 });
    try {
      small.store.setNow(T0 + 60_000);
      small.store.put({ ...small.store.get('Patient', String(patients[0].id))!, active: false });
      small.store.delete('Patient', String(patients[1].id));
      const since = new Date(T0 + 1).toISOString();
      const { manifest } = await exportAll(`${small.baseUrl}/Patient/$export?_since=${since}`);
      expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 1]]);
      expect(manifest.deleted?.map((d) => [d.type, d.count])).toEqual([['Bundle', 1]]);
      const text = await (await fetch(manifest.deleted![0].url)).text();
      expect(JSON.parse(text)).toEqual({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ request: { method: 'DELETE', url: `Patient/${patients[1].id}` } }],
      });
    } finally {
      await small.stop();
    }
  });

  it('DELETE on the status URL cancels the job: later polls answer 404', async () => {
    const kick = await fetch(`${fhir.baseUrl}/$export`, { headers: { ...ASYNC, ...auth(token) } });
    const statusUrl = kick.headers.get('content-location')!;
    expect((await fetch(statusUrl, { method: 'DELETE', headers: auth(token) })).status).toBe(202);
    expect((await fetch(statusUrl, { headers: auth(token) })).status).toBe(404);
  });

  it('lists an unknown _type in the error file under handling=lenient and refuses it otherwise', async () => {
    const strict = await fetch(`${fhir.baseUrl}/$export?_type=Patient,NotAType1`, { headers: { ...ASYNC, ...auth(token) } });
    expect(strict.status).toBe(400);
    const { manifest } = await exportAll(`${fhir.baseUrl}/$export?_type=Patient,NotAType1`, token, 'respond-async, handling=lenient');
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([['Patient', 13]]);
    expect(manifest.error.map((e) => [e.type, e.count])).toEqual([['OperationOutcome', 1]]);
    const outcome = JSON.parse(await (await fetch(manifest.error[0].url, { headers: auth(token) })).text());
    expect(outcome.issue).toEqual([{ severity: 'error', code: 'not-supported', diagnostics: '_type NotAType1 cannot be exported' }]);
  });
});

describe('Bulk Data export per vendor', () => {
  it('athenahealth refuses every $export level with an OperationOutcome', async () => {
    const fhir = await startFhirServer({ vendor: 'athenahealth', requireAuth: false });
    try {
      for (const path of ['$export', 'Patient/$export', 'Group/g1/$export']) {
        const r = await fetch(`${fhir.baseUrl}/${path}`, { headers: ASYNC });
        expect(r.status).toBe(400);
        expect(((await r.json()) as { issue: { code: string }[] }).issue[0].code).toBe('not-supported');
      }
    } finally {
      await fhir.stop();
    }
  });

  it('epic exports at Group level only: a group of synthetic patients, system level refused', async () => {
    const fhir = await startFhirServer({
      vendor: 'epic',
      requireAuth: false,
      synthetic: [syntheticPatients(250, { groups: ['practice-1'] })],
      bulk: { pollsBeforeReady: 0, maxResourcesPerFile: 100 },
    });
    try {
      expect((await fetch(`${fhir.baseUrl}/$export`, { headers: ASYNC })).status).toBe(400);
      expect((await fetch(`${fhir.baseUrl}/Group/other/$export`, { headers: ASYNC })).status).toBe(404);
      const { manifest, polls } = await exportAll(`${fhir.baseUrl}/Group/practice-1/$export`);
      expect(polls).toEqual([200]);
      expect(manifest.requiresAccessToken).toBe(false);
      expect(manifest.output.map((o) => o.count)).toEqual([100, 100, 50]);
      expect(await download(manifest.output[2].url)).toEqual({ status: 200, lines: 50, first: 'syn-1-0000200', last: 'syn-1-0000249' });
    } finally {
      await fhir.stop();
    }
  });

  it('a download cut mid-file (dropConnectionAt) fails on the client, and the same file downloads whole after', async () => {
    const fhir = await startFhirServer({
      requireAuth: false,
      synthetic: [syntheticPatients(2000)],
      bulk: { pollsBeforeReady: 0 },
      faults: { dropConnectionAt: [3] },
    });
    try {
      const { manifest } = await exportAll(`${fhir.baseUrl}/Patient/$export`);
      await expect(download(manifest.output[0].url)).rejects.toThrow();
      expect(await download(manifest.output[0].url)).toEqual({ status: 200, lines: 2000, first: 'syn-1-0000000', last: 'syn-1-0001999' });
      expect(fhir.requests.map((r) => [r.path.split('/').slice(3, 4)[0], r.status, r.dropped ?? false])).toEqual([
        ['Patient', 202, false],
        ['bulkstatus', 200, false],
        ['bulkfiles', 200, true],
        ['bulkfiles', 200, false],
      ]);
    } finally {
      await fhir.stop();
    }
  });

  it('streams a 100,000-patient synthetic export in files of 25,000, each patient once', async () => {
    const fhir = await startFhirServer({
      requireAuth: false,
      synthetic: [syntheticPatients(100_000, { seed: 7 })],
      bulk: { pollsBeforeReady: 0, maxResourcesPerFile: 25_000 },
    });
    try {
      const { manifest } = await exportAll(`${fhir.baseUrl}/$export?_type=Patient`);
      expect(manifest.output.map((o) => o.count)).toEqual([25_000, 25_000, 25_000, 25_000]);
      const files = [];
      for (const o of manifest.output) files.push(await download(o.url));
      expect(files.map((f) => [f.lines, f.first, f.last])).toEqual([
        [25_000, 'syn-7-0000000', 'syn-7-0024999'],
        [25_000, 'syn-7-0025000', 'syn-7-0049999'],
        [25_000, 'syn-7-0050000', 'syn-7-0074999'],
        [25_000, 'syn-7-0075000', 'syn-7-0099999'],
      ]);
      expect(fhir.store.count('Patient')).toBe(100_000);
    } finally {
      await fhir.stop();
    }
  });
});
