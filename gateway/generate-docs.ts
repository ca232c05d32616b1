/**
 * Writes the documents generated from one source each: config/REFERENCE.md (config schema),
 * docs/ERRORS.md (error catalogue), adapters/canonical/canonical.schema.json (canonical schema).
 * `npm run docs`. test/config/generated-docs.test.ts fails when a committed copy drifts.
 */
import { writeFileSync } from 'node:fs';
import { generatedDocs } from './generated-docs.ts';

for (const [path, text] of Object.entries(generatedDocs())) {
  writeFileSync(new URL(`../${path}`, import.meta.url), text);
  process.stdout.write(`wrote ${path}\n`);
}
