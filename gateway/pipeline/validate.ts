/**
 * Step 3 of the record path: validate. Every canonical record is checked against the canonical
 * schema (adapters/canonical/canonical.schema.json) before anything is stored; a record that fails
 * makes its input a dead letter (GW_VALIDATION_FAILED) with the field's path and the problem.
 */
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import type { RecordValidator } from '../../adapters/canonical/validator.ts';

export interface InvalidRecord {
  id: string;
  type: string;
  path: string;
  problem: string;
}

export function validateRecords(validator: RecordValidator, records: Iterable<{ record: CanonicalRecord }>): InvalidRecord[] {
  const invalid: InvalidRecord[] = [];
  for (const { record } of records)
    for (const p of validator.validate(record)) invalid.push({ id: record.id, type: record.type, path: p.path, problem: p.problem });
  return invalid;
}
