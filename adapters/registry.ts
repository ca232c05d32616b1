/**
 * Every source kind the gateway has, in start order: one line per kind, naming its config section
 * and importing its folder. The composition root (gateway/create-gateway.ts) imports a kind only
 * when that section is in use (`sectionInUse` in contracts.ts), and holds no per-kind code. A new
 * kind is a folder whose `index.ts` exports a `defineSource(...)` descriptor, and one line here.
 */
import type { SourceKindEntry } from './contracts.ts';

export const sourceKinds: readonly SourceKindEntry[] = [
  { kind: 'hl7v2', section: 'hl7', load: () => import('./hl7v2/index.ts').then((m) => m.hl7Sources) },
  { kind: 'database', section: 'databases', load: () => import('./sql/index.ts').then((m) => m.databaseSources) },
  { kind: 'file', section: 'files', load: () => import('./file/index.ts').then((m) => m.fileSources) },
  // CDA documents and HL7 v3 messages arrive as files: their codecs serve the file sources (and replays)
  { kind: 'hl7v3', section: 'files', load: () => import('./cda/index.ts').then((m) => m.hl7v3Sources) },
  { kind: 'fhir', section: 'fhir', load: () => import('./fhir/index.ts').then((m) => m.fhirSources) },
  { kind: 'api', section: 'apis', load: () => import('./api/index.ts').then((m) => m.apiSources) },
];
