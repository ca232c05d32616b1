/**
 * Reads FHIR resources from the shared corpus for the test server: single-resource JSON files,
 * Bundles (their entries' resources) and NDJSON files (one resource a line, the Bulk Data format).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { corpus } from '../corpus.ts';
import type { FhirResource } from './types.ts';

/**
 * Resource types a FHIR server answers with but does not store as data; the loader skips them.
 * A response Bundle (transaction-response, batch-response) is skipped whole for the same reason.
 */
const NOT_DATA = new Set(['OperationOutcome', 'Parameters', 'CapabilityStatement']);
const UNPACKED_BUNDLES = new Set(['collection', 'searchset', 'transaction', 'batch', 'document', 'message', 'history']);

export interface LoadCorpusOptions {
  /** Only these resource types. */
  types?: string[];
}

/**
 * The resources in `dirs` (files or folders, read recursively in name order; a relative path is
 * taken from the corpus root, e.g. `fhir/fhir-r4-examples`). Later copies of the same type and id
 * replace earlier ones, so the result holds each resource once; resources without an id are kept
 * (the store assigns one). Files that are not FHIR (an npm package.json) are skipped.
 */
export function loadCorpus(dirs: string[], o: LoadCorpusOptions = {}): FhirResource[] {
  const withId = new Map<string, FhirResource>();
  const withoutId: FhirResource[] = [];
  const keep = (r: unknown) => {
    if (!isResource(r) || NOT_DATA.has(r.resourceType)) return;
    if (o.types && !o.types.includes(r.resourceType)) return;
    if (r.resourceType === 'Bundle') {
      if (!UNPACKED_BUNDLES.has(String(r.type))) return;
      for (const e of (r.entry as { resource?: unknown }[] | undefined) ?? []) keep(e.resource);
      return;
    }
    if (r.id) withId.set(`${r.resourceType}/${r.id}`, r);
    else withoutId.push(r);
  };
  for (const d of dirs) {
    for (const file of filesUnder(isAbsolute(d) ? d : corpus.path(d))) {
      const text = readFileSync(file, 'utf8');
      if (file.endsWith('.ndjson')) {
        for (const line of text.split('\n')) if (line.trim()) keep(JSON.parse(line));
      } else if (file.endsWith('.json')) keep(JSON.parse(text));
    }
  }
  return [...withId.values(), ...withoutId];
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

function isResource(x: unknown): x is FhirResource {
  return typeof x === 'object' && x !== null && typeof (x as { resourceType?: unknown }).resourceType === 'string';
}
