/**
 * Every source kind the gateway has, in start order. A new kind is a folder whose `index.ts` exports
 * a `defineSource(...)` descriptor, and one line here; the composition root (gateway/create-gateway.ts)
 * holds no per-kind code.
 */
import type { SourceKind } from './contracts.ts';
import { fileSources } from './file/index.ts';
import { hl7Sources } from './hl7v2/index.ts';
import { databaseSources } from './sql/index.ts';

export const sourceKinds: readonly SourceKind[] = [hl7Sources, databaseSources, fileSources];
