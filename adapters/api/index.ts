/**
 * Vendor REST API sources: an `apis[]` entry (config/api-schema.ts) made, with its profile
 * (adapters/api/profiles/), into an API source, and the codec that replays its dead-lettered rows
 * after a mapping fix.
 */
import { defineSource, parseStoredRow, type SecretStore, type SourceCodec, type StoredRow } from '../contracts.ts';
import type { Clock } from '../../gateway/clock.ts';
import { createApiSource, type ApiSource } from './api-source.ts';
import type { ApiSourceConfig } from './api-types.ts';
import { resolveApiSource } from './resolve.ts';

export { createApiSource, type ApiSource, type ApiSourceOptions, type ApiConnection } from './api-source.ts';
export type { ApiSourceConfig, ApiEntity, ApiProfile, ResolvedApiSource } from './api-types.ts';
export { resolveApiSource, type ResolveProblem } from './resolve.ts';
export { API_PROFILES } from './profiles/index.ts';

/** Builds the source of one entry; throws (naming every field) when the entry with its profile is incomplete (config rules refuse such an entry first). */
export function apiSourceFrom(
  c: ApiSourceConfig,
  deps: { clock: Clock; secrets: SecretStore; timezone: string; fetch?: typeof fetch },
): ApiSource {
  const { source, problems } = resolveApiSource(c);
  if (!source) throw new Error(`apis ${c.id}: ${problems.map((p) => `${p.path}: ${p.expected}`).join('; ')}`);
  return createApiSource({ source, clock: deps.clock, secrets: deps.secrets, timezone: deps.timezone, fetch: deps.fetch });
}

/** Replays a dead-lettered row (`{stream, pk, data}`) through the source's mapping. */
export function createApiRowCodec(source: ApiSource): SourceCodec<StoredRow> {
  return {
    format: `api:${source.id}`,
    parse: (text) => parseStoredRow(text, 'API row'),
    dedupeKey: () => undefined,
    describe: (r) => ({ kind: `api:${r.stream.slice(source.id.length + 1) || 'row'}` }),
    map: (r) => source.mapRow(r.stream, { pk: r.pk, data: r.data }),
  };
}

/** The `apis[]` source kind. */
export const apiSources = defineSource({
  kind: 'api',
  section: 'apis',
  create(entries, deps) {
    const adapters = entries.map((c) => apiSourceFrom(c, { clock: deps.clock, secrets: deps.secrets(c.id), timezone: deps.timezone }));
    return { adapters, codecs: adapters.map(createApiRowCodec) };
  },
});
