/** A folder given relative to the working directory (`./export`, as a technician writes it) is watched like an absolute one. */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { startHarness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';

it('imports from a relative folder, and from a polled one (mounted shares), deleting files when told to', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ewml-rel-'));
  const a = join(base, 'export');
  const b = join(base, 'share');
  mkdirSync(a);
  mkdirSync(b);
  const h = await startHarness({
    hl7: { enabled: false },
    files: [
      { id: 'rel', dir: `./${relative(process.cwd(), a)}`, profile: 'optical-csv', stableMs: 100 },
      { id: 'polled', dir: b, profile: 'optical-csv', polling: true, pollMs: 100, stableMs: 200, after: 'delete' },
    ] as never,
  });
  try {
    writeFileSync(join(a, 'patients.csv'), 'patient_id,last_name\nR1,Sample\n');
    writeFileSync(join(b, 'patients.csv'), 'patient_id,last_name\nS1,Sample\n');
    await waitFor(() => readdirSync(join(a, 'processed')).includes('patients.csv'), 10_000, 'relative folder processed');
    await waitFor(() => !readdirSync(b).includes('patients.csv'), 10_000, 'polled file deleted after import');
    expect(readdirSync(join(b, 'processed'))).toEqual([]);
    expect(h.gw.parts.adapters.find((x) => x.id === 'polled')!.health().detail).toMatchObject({ files: 1, rows: 1 });
  } finally {
    await h.stop();
  }
});
