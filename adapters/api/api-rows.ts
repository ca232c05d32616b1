/**
 * An API's JSON objects as the rows of a polled source: one stream per entity
 * (`<source id>/<entity>`), the row key the value at the entity's `key` path, the row's hash its
 * content's. A row read again unchanged (the overlap window, a page repeated after a crash) hashes
 * the same and writes nothing; a changed one is a new version of its records.
 *
 * Records are mapped as a database stream's are (adapters/canonical/map-row.ts), from the object
 * flattened to dotted paths (`primary_insurance.insurance_company`, `offices.0`) beside its own
 * top-level members, so a mapping names nested values as it names columns.
 *
 * Deletes: a row whose deleted flag is set (`deletes.kind: field`) maps to delete records of its
 * entity's mappings; a deletions log's row (`tombstone`) also yields a marker row in its target's
 * stream (`__deleted`, a member name no vendor JSON here uses), mapped to the target's deletes.
 */
import { rowMatches } from '../canonical/field-mapping.ts';
import { recordsFromRow } from '../canonical/map-row.ts';
import { deterministicId } from '../canonical/record-id.ts';
import { rowHash } from '../canonical/row-hash.ts';
import { compileField } from '../canonical/field-mapping.ts';
import type { DraftRecord, MapResult, RawRow } from '../contracts.ts';
import type { ApiEntity } from './api-types.ts';
import { jsonPath } from './request-template.ts';

type R = Record<string, unknown>;

export const streamOf = (sourceId: string, entity: string) => `${sourceId}/${entity}`;

/** Nested members as dotted keys beside the top-level ones (arrays by index). */
export function flattenRow(row: R): R {
  const out: R = { ...row };
  const walk = (v: unknown, at: string, depth: number) => {
    if (depth > 8) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}.${i}`, depth + 1));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`, depth + 1);
    else if (!(at in out)) out[at] = v;
  };
  for (const [k, v] of Object.entries(row)) if (v !== null && typeof v === 'object') walk(v, k, 0);
  return out;
}

const keyText = (v: unknown): string | undefined =>
  typeof v === 'string' ? (v === '' ? undefined : v) : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;

/**
 * The rows of one page of an entity: each object with its key, and a deletions log's markers.
 * Something that is not an object, or has no key, is kept as an unreadable row (it is dead-lettered
 * with the reason: nothing is dropped in silence).
 */
export function pageRows(sourceId: string, e: ApiEntity, items: unknown[]): RawRow[] {
  const rows: RawRow[] = [];
  for (const [i, item] of items.entries()) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      rows.push(unreadable(`?${i}:${rowHash({ item })}`, 'not a JSON object', item));
      continue;
    }
    const data = item as R;
    const hash = rowHash(data);
    const pk = keyText(jsonPath(data, e.key));
    if (pk === undefined) {
      rows.push(unreadable(`?${hash}`, `no key at ${e.key}`, data));
      continue;
    }
    rows.push({ pk, data, hash });
    if (e.deletes.kind === 'tombstone') {
      const gone = keyText(jsonPath(data, e.deletes.key));
      if (gone !== undefined)
        rows.push({
          pk: gone,
          stream: streamOf(sourceId, e.deletes.target),
          hash: `deleted:${e.name}/${pk}:${hash}`,
          data: { __deleted: true, evidence: `${e.name}/${pk}:${hash}` },
        });
    }
  }
  return rows;
}

function unreadable(pk: string, why: string, item: unknown): RawRow {
  return { pk, data: { __unreadable: why, item }, hash: `unreadable:${pk}` };
}

export interface ApiRowMapOptions {
  sourceId: string;
  system: string;
  entities: readonly ApiEntity[];
  timezone: string;
  now: () => number;
}

export interface ApiRowMapper {
  /** Maps a row of a stream (`<source id>/<entity>`). */
  map(stream: string, row: RawRow): MapResult;
}

export function createApiRowMapper(o: ApiRowMapOptions): ApiRowMapper {
  const byStream = new Map(o.entities.map((e) => [streamOf(o.sourceId, e.name), e]));

  function deletes(e: ApiEntity, pk: string, evidence: string, row: R | undefined): MapResult {
    const records: DraftRecord[] = [];
    for (const [i, m] of e.records.entries()) {
      if (row && !rowMatches(row, m)) continue;
      let partitionKey = `${o.sourceId}:${e.name}:${pk}`;
      // the upsert went to its patient's partition: the delete follows it there, so it is not delivered first
      const pid = row && m.patient ? compileField(m.patient.id)(row, o.timezone) : undefined;
      if (m.patient && (typeof pid === 'string' || typeof pid === 'number')) partitionKey = `patient:${m.patient.system}|${pid}`;
      records.push({
        id: deterministicId('api', o.sourceId, e.name, pk, String(i), 'deleted', evidence),
        type: m.type,
        op: 'delete',
        source: { system: o.system, adapter: 'api', sourceId: `${e.name}/${pk}${m.sourceIdSuffix ?? ''}` },
        occurredAt: new Date(o.now()).toISOString(),
        partitionKey,
        data: {},
      });
    }
    return { records, issues: [] };
  }

  return {
    map(stream, row) {
      const target = byStream.get(row.stream ?? stream);
      if (!target)
        return {
          records: [],
          issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: `no entity for stream ${row.stream ?? stream}` }],
        };
      const d = row.data;
      if (d.__deleted === true) return deletes(target, row.pk, String(d.evidence ?? ''), undefined);
      if (typeof d.__unreadable === 'string')
        return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: `${target.name}: ${d.__unreadable}` }] };
      const flat = flattenRow(d);
      const hash = row.hash ?? rowHash(d);
      if (target.deletes.kind === 'field') {
        const flag = jsonPath(d, target.deletes.field);
        if (target.deletes.in.some((x) => String(x) === String(flag))) return deletes(target, row.pk, hash, flat);
      }
      return recordsFromRow(flat, target.records, {
        idParts: ['api', o.sourceId, target.name, row.pk],
        rowHash: hash,
        system: o.system,
        adapter: 'api',
        sourceId: `${target.name}/${row.pk}`,
        partition: `${o.sourceId}:${target.name}:${row.pk}`,
        where: target.name,
        timezone: o.timezone,
        now: o.now,
      });
    },
  };
}
