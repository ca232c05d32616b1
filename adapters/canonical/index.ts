export * from './types.ts';
export { canonicalRecordSchema } from './canonical-schema.ts';
export { deterministicId } from './record-id.ts';
export { createRecordValidator, type RecordValidator, type RecordProblem } from './validator.ts';
export * from './rx-normalize.ts';
