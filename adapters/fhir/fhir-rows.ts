/**
 * FHIR resources as the rows of a polled source: one stream per resource type
 * (`<source id>/<Type>`), the row key `<Type>/<id>`, the row's hash its content's. A resource read
 * again unchanged (the overlap window, a repeated page after a crash) hashes the same and writes
 * nothing; a changed one is a new version. A deleted resource is a row of its own kind (a marker
 * no FHIR JSON can carry, since element names never start with `__`), mapped to delete records.
 */
import { rowHash } from '../canonical/row-hash.ts';
import type { MapResult, RawRow } from '../contracts.ts';
import { fhirDeleteRecords, mapFhirResource, type FhirMapContext } from './map-fhir.ts';

type R = Record<string, unknown>;

/** A deleted resource's row data: a marker no FHIR JSON can carry, its type, id and when it went. */
export type DeletedMarker = R & { __deleted: true; resourceType: string; id: string; at: string };

const isDeleted = (d: R): d is DeletedMarker =>
  d.__deleted === true && typeof d.resourceType === 'string' && typeof d.id === 'string' && typeof d.at === 'string';

/** A row for a resource that has a type and an id; undefined for anything else. */
export function resourceRow(res: unknown, stream: string | undefined): RawRow | undefined {
  const r = res as R | undefined;
  if (!r || typeof r !== 'object' || typeof r.resourceType !== 'string' || typeof r.id !== 'string' || r.id === '') return undefined;
  return { pk: `${r.resourceType}/${r.id}`, data: r, hash: rowHash(r), ...(stream ? { stream } : {}) };
}

export function deletedRow(resourceType: string, id: string, at: string, stream?: string): RawRow {
  const data: DeletedMarker = { __deleted: true, resourceType, id, at };
  return { pk: `${resourceType}/${id}`, data, hash: `deleted:${at}`, ...(stream ? { stream } : {}) };
}

/** A line that was not a resource: kept so its dead letter says so and holds the text for a look. */
export function unreadableRow(pk: string, why: string, text: string | undefined): RawRow {
  const data = { __unreadable: why, ...(text !== undefined ? { text: text.slice(0, 1_000_000) } : {}) };
  // hashed by content: another bad line at the same place later is a dead letter of its own
  return { pk, data, hash: `unreadable:${rowHash(data)}` };
}

export interface RowMapper {
  map(row: RawRow): MapResult;
  /** Resources seen that the gateway does not map, by type (reported in `/status`, never dropped silently). */
  unmapped(): Record<string, number>;
}

export function createRowMapper(ctx: FhirMapContext): RowMapper {
  const unmapped = new Map<string, number>();
  return {
    map(row) {
      const d = row.data;
      if (isDeleted(d)) return fhirDeleteRecords(d.resourceType, d.id, ctx, d.at);
      if (typeof d.__unreadable === 'string')
        return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: `not a FHIR resource: ${d.__unreadable}` }] };
      const out = mapFhirResource(d, ctx, row.hash ?? rowHash(d));
      // bounded: the type names come from the server
      if (out.unsupported && (unmapped.has(out.unsupported) || unmapped.size < 50))
        unmapped.set(out.unsupported, (unmapped.get(out.unsupported) ?? 0) + 1);
      return out;
    },
    unmapped: () => Object.fromEntries(unmapped),
  };
}
