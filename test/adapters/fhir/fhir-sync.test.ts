/**
 * The FHIR source's sync runs on a manual clock against the test FHIR server, with a context that
 * commits like the outbox (a page's rows and its cursor together; a row whose content hash it has
 * seen writes nothing): a later Bulk export with `_since` brings changes and `delete` records for
 * deleted resources; a stored next link the server no longer honours restarts the run; athenahealth
 * pages by cursor and is kept under its per-minute limit by the gateway itself; Epic without the
 * Group it exports by is a problem named in /status.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticPatients } from '../../support/fhir-server/index.ts';
import { closeAll, setupSync as setup, until } from '../../support/fhir-sync-harness.ts';

afterEach(closeAll);

const detail = (s: { health(): { detail?: Record<string, unknown> } }) => s.health().detail ?? {};

describe('Bulk export with _since', () => {
  it('brings what changed and a delete record for each resource deleted since the last export', async () => {
    const { fhir, clock, source, box } = await setup(
      {
        vendor: 'generic',
        synthetic: [syntheticPatients(30, { seed: 3 })],
        resources: [{ resourceType: 'Patient', id: 'kept', gender: 'female' }],
      },
      { bulk: { mode: 'always', groupId: '', intervalMinutes: 60, maxWaitMinutes: 60 } },
    );
    await source.start(box.ctx);
    await until(clock, () => detail(source)['bulk.state'] === 'idle', 'the first export imported');
    expect(box.records.filter((r) => r.op === 'upsert')).toHaveLength(31);
    const first = JSON.parse(box.cursors.get('sync/$export')!) as { sinceByType: Record<string, string> };
    expect(first.sinceByType.Patient).toMatch(/^\d{4}-\d{2}-\d{2}T/);

    fhir.store.advance(5000);
    fhir.store.put({ resourceType: 'Patient', id: 'kept', gender: 'male' });
    fhir.store.put({ resourceType: 'Patient', id: 'new1', gender: 'other' });
    fhir.store.put({ resourceType: 'Patient', id: 'gone', gender: 'unknown' });
    fhir.store.advance(1000);
    fhir.store.delete('Patient', 'gone');
    const before = box.records.length;
    const exports = () => fhir.requests.filter((r) => r.path.endsWith('/$export'));
    // the next export waits for bulk.intervalMinutes of the gateway's clock
    clock.advance(30 * 60_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(exports()).toHaveLength(1);
    const since = () => (JSON.parse(box.cursors.get('sync/$export')!) as { sinceByType: Record<string, string> }).sinceByType.Patient;
    await until(clock, () => exports().length === 2 && since() !== first.sinceByType.Patient, 'the second export imported', 60_000);
    expect(exports()[1].query._since).toBe(first.sinceByType.Patient);
    const later = box.records.slice(before);
    expect(later.map((r) => `${r.op} ${r.source.sourceId}`).sort()).toEqual([
      // made and deleted between the two exports: only its deletion is in the second
      'delete Patient/gone',
      'upsert Patient/kept',
      'upsert Patient/new1',
    ]);
  });
});

describe('search runs', () => {
  it('starts the run again from its beginning when the server refuses a stored next link', async () => {
    const { fhir, clock, source, box } = await setup(
      { vendor: 'generic', synthetic: [syntheticPatients(12, { seed: 4 })] },
      { pageSize: 5 },
    );
    // a run under way, as a restart finds it: its next link has expired on the server
    box.cursors.set(
      'sync/Patient',
      JSON.stringify({
        strategy: 'lastUpdated',
        run: { start: new Date().toISOString(), next: `${fhir.baseUrl}?_getpages=expired`, pages: 1 },
      }),
    );
    await source.start(box.ctx);
    await until(clock, () => box.records.length >= 12, 'all 12 patients');
    expect(box.records).toHaveLength(12);
    expect(fhir.requests.filter((r) => r.query._getpages === 'expired').map((r) => r.status)).toEqual([400]);
    const c = JSON.parse(box.cursors.get('sync/Patient')!) as { run?: unknown; since?: string };
    expect(c.run).toBeUndefined();
    expect(c.since).toMatch(/^\d{4}-/);
  });

  it('pages athenahealth by its cursor links and stays under its per-minute limit without one 429', async () => {
    const { fhir, clock, source, box } = await setup(
      { vendor: 'athenahealth', synthetic: [syntheticPatients(40, { seed: 5 })], faults: { rateLimit: { perMinute: 4 } } },
      { vendor: 'athenahealth', pageSize: 5, rateLimit: { perMinute: 4 } },
      true,
    );
    await source.start(box.ctx);
    await until(clock, () => box.records.length >= 40, 'all 40 patients', 5000);
    expect(box.records).toHaveLength(40);
    expect(fhir.requests.filter((r) => r.status === 429)).toHaveLength(0);
    expect(fhir.requests.filter((r) => typeof r.query.cursor === 'string').length).toBe(7);
    expect(Number(detail(source).callsToday)).toBeGreaterThan(8);
  });
});

describe('deletes of resources kept by search', () => {
  it("reads the type's history after each run: a deleted resource gives a delete record, one deleted and made again does not", async () => {
    const { fhir, clock, source, box } = await setup({
      vendor: 'generic',
      resources: ['a', 'b', 'c'].map((id) => ({ resourceType: 'Patient', id, gender: 'female' })),
    });
    await source.start(box.ctx);
    await until(clock, () => box.records.length >= 3 && box.cursors.has('sync/Patient/_history'), 'the first run');
    fhir.store.advance(2000);
    fhir.store.delete('Patient', 'a');
    fhir.store.delete('Patient', 'b');
    fhir.store.advance(1000);
    fhir.store.put({ resourceType: 'Patient', id: 'b', gender: 'male' });
    const history = () => fhir.requests.filter((r) => r.path.endsWith('/Patient/_history'));
    await until(clock, () => history().length >= 1 && box.records.length >= 5, 'the deletes read', 60_000);
    expect(box.records.slice(3).map((r) => `${r.op} ${r.source.sourceId}`)).toEqual(['upsert Patient/b', 'delete Patient/a']);
    expect(typeof history()[0].query._since).toBe('string');
    // the next pass reads the same window again (the overlap is 0 here: from the last pass's start) and writes nothing new
    clock.advance(60_000);
    await until(clock, () => history().length >= 2, 'a second history pass', 60_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(box.records).toHaveLength(5);
  });
});

describe('strategies that cannot run', () => {
  it('names the missing Group for Epic in /status, and reads nothing of that resource', async () => {
    const { source, box } = await setup(
      { vendor: 'epic', synthetic: [syntheticPatients(3, { seed: 6 })] },
      { vendor: 'epic', bulk: { mode: 'auto', groupId: '', intervalMinutes: 60, maxWaitMinutes: 60 } },
    );
    await source.start(box.ctx);
    const d = detail(source);
    expect(d['Patient.strategy']).toBe('none');
    expect(d['Patient.error']).toBe(
      "GW_API_REFUSED: Patient cannot be searched here (lastUpdated, bulk not supported); bulk: Epic exports by Group: set bulk.groupId (the Group the practice's patients are in)",
    );
    expect(box.records).toHaveLength(0);
  });
});
