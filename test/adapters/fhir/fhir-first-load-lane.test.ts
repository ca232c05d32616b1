/** A FHIR search run with no lower bound is the resource's first load: its pages say so (RawPage.firstLoad, the backfill lane); later runs' pages do not. */
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticPatients } from '../../support/fhir-server/index.ts';
import { closeAll, setupSync as setup, until } from '../../support/fhir-sync-harness.ts';

afterEach(closeAll);

describe('FHIR first load lane', () => {
  it("marks the first run's pages as a first load, and the next run's not", async () => {
    const { clock, source, box } = await setup({ vendor: 'generic', synthetic: [syntheticPatients(12, { seed: 4 })] }, { pageSize: 5 });
    await source.start(box.ctx);
    await until(
      clock,
      () => box.records.length >= 12 && JSON.parse(box.cursors.get('sync/Patient') ?? '{}').since !== undefined,
      'the first run',
    );
    // the search run's pages (the source's other commits on the stream carry no rows)
    const searchPages = (from: number) => box.pages.slice(from).filter((p) => p.cursor?.value.includes('"strategy"'));
    const first = searchPages(0);
    expect(first.map((p) => [p.rows.length, p.firstLoad])).toEqual([
      [5, true],
      [5, true],
      [2, true],
    ]);
    const seen = box.pages.length;
    await until(clock, () => searchPages(seen).length > 0, 'the next run', 5000);
    expect(searchPages(seen).map((p) => p.firstLoad)).toEqual(searchPages(seen).map(() => false));
    expect(searchPages(seen).length).toBeGreaterThan(0);
  });
});
