/**
 * Where the FHIR source goes on after a crash, seen exactly: a commit refused at a known page
 * ("outbox full", nothing committed, the cursor stays), the source stopped there, and another
 * started on the same cursors — as the gateway after a restart. Bulk goes on at the file and line
 * of the first uncommitted row (not at line 0, not one line later); paging goes on at the stored
 * next link (the first page is not asked again); a type new to bulk is exported whole in a job of
 * its own, the others keep their _since.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticPatients } from '../../support/fhir-server/index.ts';
import { closeAll, setupSync, until } from '../../support/fhir-sync-harness.ts';

afterEach(closeAll);

const BULK = { mode: 'always', groupId: '', intervalMinutes: 60, maxWaitMinutes: 60 } as const;
const pageIds = (p: { rows: Array<{ pk: string }> }) => p.rows.map((r) => r.pk);
const synId = (seed: number, i: number) => `Patient/syn-${seed}-${String(i).padStart(7, '0')}`;

describe('after a crash in a Bulk export', () => {
  it('goes on at the file and line of the first row not committed', async () => {
    const { fhir, clock, source, box, restart } = await setupSync(
      { vendor: 'generic', synthetic: [syntheticPatients(60, { seed: 11 })], bulk: { pollsBeforeReady: 0, maxResourcesPerFile: 25 } },
      { bulk: BULK, pageSize: 10 },
    );
    // files of 25: file 0 is pages 10, 10, 5; file 1 starts; the 5th page (file 1, lines 10-19) is refused
    // commits: the kick-off, the manifest, the job's manifest mark, file 0's three pages, the move to file 1, its first page
    box.refuseAfter(8);
    await source.start(box.ctx);
    await until(clock, () => box.refused() > 0, 'a refused page');
    await source.stop();
    const committed = box.pages.flatMap(pageIds);
    expect(committed).toEqual(Array.from({ length: 35 }, (_, i) => synId(11, i)));
    const cursor = JSON.parse(box.cursors.get('sync/$export')!) as { job: { file: number; line: number } };
    expect(cursor.job).toMatchObject({ file: 1, line: 10 });

    box.refuseAfter(undefined);
    const files = () => fhir.requests.filter((r) => r.path.includes('/bulkfiles/')).length;
    const before = { pages: box.pages.length, files: files() };
    const again = restart();
    await again.start(box.ctx);
    await until(clock, () => JSON.parse(box.cursors.get('sync/$export')!).job === undefined, 'the export finished');
    const after = box.pages.slice(before.pages).filter((p) => p.rows.length > 0);
    expect(pageIds(after[0])[0]).toBe(synId(11, 35));
    expect(after.flatMap(pageIds)).toEqual(Array.from({ length: 25 }, (_, i) => synId(11, 35 + i)));
    // the job was not kicked off again: its status and manifest were in the cursor; files 1 and 2 were read
    expect(fhir.requests.filter((r) => r.path.endsWith('/$export'))).toHaveLength(1);
    expect(files() - before.files).toBe(2);
  });

  it('exports a type new to bulk whole, in a job of its own, and keeps the others on their _since', async () => {
    const { fhir, clock, source, box, restart } = await setupSync(
      {
        vendor: 'generic',
        synthetic: [syntheticPatients(5, { seed: 12 })],
        resources: [{ resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'Synthetic' }] }],
        bulk: { pollsBeforeReady: 0 },
      },
      { bulk: BULK },
    );
    await source.start(box.ctx);
    await until(clock, () => JSON.parse(box.cursors.get('sync/$export') ?? '{}').sinceByType?.Patient !== undefined, 'Patient exported');
    await source.stop();
    expect(box.records.map((r) => r.type)).toEqual(Array(5).fill('patient'));

    const again = restart({ resources: ['Patient', 'Practitioner'] });
    await again.start(box.ctx);
    // at once, not after bulk.intervalMinutes: a type never exported is due
    const exported = () => (JSON.parse(box.cursors.get('sync/$export')!) as { sinceByType?: Record<string, string> }).sinceByType ?? {};
    await until(
      clock,
      () => box.records.some((r) => r.type === 'provider') && exported().Practitioner !== undefined,
      'the Practitioner',
      1000,
      30,
    );
    const kickOffs = fhir.requests.filter((r) => r.path.endsWith('/$export'));
    expect(kickOffs.map((r) => [r.query._type, r.query._since])).toEqual([
      ['Patient', undefined],
      ['Practitioner', undefined],
    ]);
    const c = JSON.parse(box.cursors.get('sync/$export')!) as { sinceByType: Record<string, string> };
    expect(Object.keys(c.sinceByType).sort()).toEqual(['Patient', 'Practitioner']);
  });
});

describe('after a crash while paging', () => {
  it('goes on at the stored next link, without asking for the first page again', async () => {
    const { fhir, clock, source, box, restart } = await setupSync(
      { vendor: 'generic', synthetic: [syntheticPatients(23, { seed: 13 })] },
      { pageSize: 5 },
    );
    box.refuseAfter(2);
    await source.start(box.ctx);
    await until(clock, () => box.refused() > 0, 'a refused page');
    await source.stop();
    expect(box.pages.flatMap(pageIds)).toEqual(Array.from({ length: 10 }, (_, i) => synId(13, i)));
    const stored = (JSON.parse(box.cursors.get('sync/Patient')!) as { run: { next: string } }).run.next;

    box.refuseAfter(undefined);
    const before = fhir.requests.length;
    const again = restart();
    await again.start(box.ctx);
    await until(clock, () => box.records.length >= 23, 'all 23 patients');
    const searches = fhir.requests.slice(before).filter((r) => r.path.endsWith('/Patient') || r.query._getpages !== undefined);
    // the stored link first (pages 3, 4, 5 of 5), never a first page
    expect(searches).toHaveLength(3);
    expect(`${fhir.origin}${searches[0].path}?_getpages=${searches[0].query._getpages}`).toBe(stored);
    expect(box.records).toHaveLength(23);
    expect(box.pages.flatMap(pageIds)).toEqual(Array.from({ length: 23 }, (_, i) => synId(13, i)));
  });
});
