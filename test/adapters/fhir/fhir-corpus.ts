/**
 * The public FHIR corpus as resources: every `.json` file (a Bundle's entries one by one, as the
 * file import reads them) and every line of every `.ndjson` file, under `../shared/corpus/fhir`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { corpus } from '../../support/corpus.ts';

export interface CorpusResource {
  /** `folder/file.json`, `folder/file.ndjson:3`, `folder/bundle.json#2`. */
  where: string;
  resource: Record<string, unknown>;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? filesUnder(p) : [p];
    });
}

export function fhirCorpusResources(): CorpusResource[] {
  const root = corpus.path('fhir');
  const out: CorpusResource[] = [];
  for (const file of filesUnder(root)) {
    const name = relative(root, file);
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.ndjson')) {
      text.split('\n').forEach((line, i) => {
        if (line.trim()) out.push({ where: `${name}:${i + 1}`, resource: JSON.parse(line) as Record<string, unknown> });
      });
      continue;
    }
    if (!file.endsWith('.json')) continue;
    const doc = JSON.parse(text) as Record<string, unknown>;
    if (doc.resourceType !== 'Bundle') {
      out.push({ where: name, resource: doc });
      continue;
    }
    const entries = Array.isArray(doc.entry) ? (doc.entry as Array<{ resource?: Record<string, unknown> }>) : [];
    entries.forEach((e, i) => {
      if (e.resource) out.push({ where: `${name}#${i + 1}`, resource: e.resource });
    });
  }
  return out;
}
