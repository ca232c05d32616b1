/** `preview` on FHIR files of the public corpus, as a user runs it: eye-exam Observations become records, others are counted as not mapped. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpus } from '../../support/corpus.ts';

const root = new URL('../../../', import.meta.url).pathname;
const preview = (...files: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/eyewear-gateway.js'), 'preview', ...files], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe.skipIf(!corpus.present)('preview of FHIR files', () => {
  it('prints an eye-care IG visual acuity as a record and counts a blood pressure as not mapped, not as an error', () => {
    const r = preview(
      corpus.path('fhir', 'fhir-eyecare-ig', 'observation-va-0.json'),
      corpus.path('fhir', 'fhir-eyecare-ig', 'observation-refraction-0.json'),
      corpus.path('fhir', 'fhir-r4-examples', 'Observation-blood-pressure.json'),
    );
    expect(r.code).toBe(0);
    const records = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; source: { sourceId: string }; data: { eye: string; value: unknown } });
    expect(records.map((x) => [x.type, x.source.sourceId, x.data.eye, x.data.value])).toEqual([
      ['eye-exam-observation', 'Observation/va-snellen-distance-re-0', 'right', 0.544],
      ['eye-exam-observation', 'Observation/observation-refraction-re-0#251795007', 'right', -2.5],
      ['eye-exam-observation', 'Observation/observation-refraction-re-0#251799001', 'right', 60],
      ['eye-exam-observation', 'Observation/observation-refraction-re-0#251797004', 'right', -2.5],
    ]);
    expect(r.err).toContain('Observation-blood-pressure.json#1: fhir: not mapped (Observation)');
    expect(r.err).toContain('preview: 3 message(s)/row(s), 4 record(s), 0 with errors, 1 not mapped');
  });
});
