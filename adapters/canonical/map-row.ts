/**
 * One flat source row (a database row, a file row) to draft records through declarative record
 * mappings: shared by the SQL and file sources. Ids are deterministic from the source, the
 * mapping's position and the row's content hash: the same row read twice is the same record;
 * a changed row is a new version.
 */
import type { DraftRecord, MapResult } from '../contracts.ts';
import { buildData, compileField, rowMatches, toInstant, type RecordMapping } from './field-mapping.ts';
import { deterministicId } from './record-id.ts';

export interface RowMapOptions {
  /** Parts that, with the mapping index and the row hash, make each record id. */
  idParts: readonly string[];
  system: string;
  adapter: string;
  /** The record's `source.sourceId` (the mapping's `sourceIdSuffix` is appended). */
  sourceId: string;
  /** Ordering partition when the record names no patient. */
  partition: string;
  rowHash: string;
  /** Where an issue happened, for messages (`patients`, `charges`). */
  where: string;
  occurredFallback?: string;
  timezone: string;
  now: () => number;
}

export function recordsFromRow(row: Record<string, unknown>, mappings: readonly RecordMapping[], o: RowMapOptions): MapResult {
  const issues: MapResult['issues'] = [];
  // most rows yield one record: it is kept aside and returned in a one-element array (an array
  // grown by push from empty allocates room for 16)
  let one: DraftRecord | undefined;
  let records: DraftRecord[] | undefined;
  for (let i = 0; i < mappings.length; i++) {
    const m = mappings[i];
    if (!rowMatches(row, m)) continue;
    const { data, problems } = buildData(row, m, o.timezone);
    for (const p of problems)
      issues.push({
        severity: p.problem.endsWith('rounded') ? 'warning' : 'error',
        code: 'GW_MAP_FAILED',
        message: `${o.where}.${p.field} ${p.problem}`,
      });
    let partitionKey = o.partition;
    if (m.patient) {
      const pid = compileField(m.patient.id)(row, o.timezone);
      if (pid === undefined || pid instanceof Error) {
        issues.push({ severity: 'error', code: 'GW_MAP_FAILED', message: `${o.where}: no patient id` });
        continue;
      }
      const ref = { system: m.patient.system, value: String(pid) };
      data.patient = ref;
      partitionKey = `patient:${ref.system}|${ref.value}`;
    }
    const occ = m.occurredAt ? compileField(m.occurredAt)(row, o.timezone) : undefined;
    const occurredAt =
      (typeof occ === 'string' ? toInstant(occ, undefined, o.timezone) : undefined) ??
      o.occurredFallback ??
      new Date(o.now()).toISOString();
    const record: DraftRecord = {
      id: deterministicId(...o.idParts, String(i), o.rowHash),
      type: m.type,
      op: 'upsert',
      source: { system: o.system, adapter: o.adapter, sourceId: `${o.sourceId}${m.sourceIdSuffix ?? ''}` },
      occurredAt,
      partitionKey,
      data,
    };
    if (records) records.push(record);
    else if (one) {
      records = [one, record];
      one = undefined;
    } else one = record;
  }
  return { records: records ?? (one ? [one] : []), issues };
}
