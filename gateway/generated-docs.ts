/** The generated documents and their paths (relative to the project root). */
import { renderConfigReference } from '../config/reference.ts';
import { renderErrorCatalogue } from './errors.ts';
import { canonicalRecordSchema } from '../adapters/canonical/canonical-schema.ts';
import { renderHealthCatalogue } from '../agents/health/catalogue.ts';

export function generatedDocs(): Record<string, string> {
  return {
    'config/REFERENCE.md': renderConfigReference(),
    'docs/ERRORS.md': renderErrorCatalogue(),
    'docs/AGENTS.md': renderHealthCatalogue(),
    'adapters/canonical/canonical.schema.json': JSON.stringify(canonicalRecordSchema, null, 2) + '\n',
  };
}
