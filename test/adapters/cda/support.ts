/** Shared by the CDA / HL7 v3 tests: the synthetic fixtures, the pipeline's identity, and the real map stage (envelope + canonical validator). */
import { readFileSync } from 'node:fs';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createMapStage } from '../../../gateway/pipeline/map-stage.ts';

export const fixturePath = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
export const fixture = (name: string) => readFileSync(fixturePath(name), 'utf8');

export const identity = { tenantId: 'tenant-1', practiceId: 'practice-1', gatewayId: 'gw-1' };
export const TZ = 'America/Chicago';

const stage = createMapStage({ validator: createRecordValidator(), clock: createManualClock(), identity });

/** Parse → map → envelope → validate, as intake does; returns the canonical records and the schema problems. */
export function throughPipeline(codec: SourceCodec<unknown>, text: string) {
  const parsed = codec.parse(text);
  const r = stage.run(codec, parsed);
  return { issues: r.mapped.issues, unsupported: r.mapped.unsupported, records: r.records.map((x) => x.record), invalid: r.invalid };
}
