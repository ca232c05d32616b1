/** Compiles the canonical schema once (ajv) and reports failures as paths, never values (PHI). */
import { Ajv } from 'ajv';
import { canonicalRecordSchema } from './canonical-schema.ts';
import type { CanonicalRecord } from './types.ts';

export interface RecordProblem {
  path: string;
  problem: string;
}

export interface RecordValidator {
  validate(record: unknown): RecordProblem[];
}

export function createRecordValidator(): RecordValidator {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const check = ajv.compile<CanonicalRecord>(canonicalRecordSchema);
  return {
    validate(record) {
      if (check(record)) return [];
      return (check.errors ?? [])
        .filter((e) => e.keyword !== 'if')
        .map((e) => ({ path: e.instancePath || '/', problem: e.message ?? e.keyword }));
    },
  };
}
