/**
 * FHIR R4 sources: a `fhir[]` entry (config/fhir-schema.ts) made into a FHIR source with its vendor
 * profile, and the codec that replays its dead-lettered resources after a mapping fix.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { defineSource, parseStoredRow, type SecretStore, type SourceCodec, type StoredRow } from '../contracts.ts';
import type { Clock } from '../../gateway/clock.ts';
import { createFhirSource, type FhirSource } from './fhir-source.ts';

export { createFhirSource, type FhirSource, type FhirSourceOptions, type FhirConnection } from './fhir-source.ts';
export { VENDOR_PROFILES, type VendorProfile, type SyncStrategy } from './vendor-profiles.ts';
export { strategyLabel } from './capabilities.ts';
export { FHIR_RESOURCES, mapFhirResource } from './map-fhir.ts';

export type FhirConfig = GatewayConfig['fhir'][number];

/** `source.system` of a FHIR entry's records: as configured, or vendor and id (`EPIC:main`). */
export const fhirSystemOf = (c: FhirConfig) => c.system || `${c.vendor.toUpperCase()}:${c.id}`;

export function fhirSourceFrom(c: FhirConfig, deps: { clock: Clock; secrets: SecretStore; fetch?: typeof fetch }): FhirSource {
  return createFhirSource({ ...c, system: fhirSystemOf(c), clock: deps.clock, secrets: deps.secrets, fetch: deps.fetch });
}

/** Replays a dead-lettered resource (`{stream, pk, data}`) through the source's mapping. */
export function createFhirRowCodec(source: FhirSource): SourceCodec<StoredRow> {
  return {
    format: `fhir:${source.id}`,
    parse: (text) => parseStoredRow(text, 'FHIR resource'),
    dedupeKey: () => undefined,
    describe: (r) => ({ kind: `fhir:${r.pk.split('/')[0] ?? 'resource'}` }),
    map: (r) => source.rowMapper.map({ pk: r.pk, data: r.data }),
  };
}

/** The `fhir[]` source kind. */
export const fhirSources = defineSource({
  kind: 'fhir',
  section: 'fhir',
  create(entries, deps) {
    const adapters = entries.map((c) => fhirSourceFrom(c, { clock: deps.clock, secrets: deps.secrets(c.id) }));
    return { adapters, codecs: adapters.map(createFhirRowCodec) };
  },
});
