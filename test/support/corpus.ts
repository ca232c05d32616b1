/**
 * The public corpus the corpus tests read: `../shared/corpus` beside this repository (CI clones the
 * shared repo there), or the folder `EWML_CORPUS_DIR` names. Every test that reads it takes its
 * paths from here and skips with `.skipIf(!corpus.present)` when it is missing, so a clone without
 * the shared repo runs everything else and says once per test file why the corpus tests did not run.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The one message a missing corpus gives, in every test file that needs it. */
export const CORPUS_MISSING = '../shared/corpus not found: clone the shared repo beside this one to run the corpus tests';

export interface Corpus {
  /** The corpus folder (absolute), whether or not it exists. */
  root: string;
  /** Whether the folder exists; tests that read it use `describe.skipIf(!corpus.present)` / `it.skipIf(...)`. */
  present: boolean;
  /** A path inside the corpus: `corpus.path('hl7v2')`, `corpus.path('fhir', 'fhir-r4-examples', 'Patient-f001.json')`. */
  path(...parts: string[]): string;
}

/** Finds the corpus: `EWML_CORPUS_DIR` when set (a test can point it elsewhere), else `../shared/corpus` from the repository root. */
export function findCorpus(env: NodeJS.ProcessEnv = process.env): Corpus {
  const repoRoot = new URL('../../', import.meta.url).pathname;
  const root = env.EWML_CORPUS_DIR ? resolve(env.EWML_CORPUS_DIR) : resolve(repoRoot, '../shared/corpus');
  return { root, present: existsSync(root), path: (...parts) => join(root, ...parts) };
}

export const corpus: Corpus = findCorpus();
if (!corpus.present) console.warn(`skipped: ${CORPUS_MISSING} (looked in ${corpus.root}; EWML_CORPUS_DIR overrides)`);
