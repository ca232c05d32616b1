/**
 * The envelope of the records FHIR resources map to: deterministic ids, source ids, partitions,
 * and the `delete` records of a resource that is gone.
 *
 * - **Source id** `<Type>/<id>` (the resource's logical id; a resource without one is named by its
 *   content hash). A resource that yields several records of one type (an Observation's
 *   components) names the extra ones `<Type>/<id>#<code>`, so each canonical record has its own
 *   source id and the cloud keeps the latest version of each.
 * - **Id** from the source system, type, id and content hash (plus the `#code` suffix): the same
 *   resource version always gives the same ids, a changed one new ids.
 * - **Partition**: the patient's (`patient:<ref.system>|<ref.value>`, as HL7 and file records of the
 *   same patient use), else the resource's own (`<system>:<Type>/<id>`).
 */
import { deterministicId } from '../canonical/record-id.ts';
import type { RecordType } from '../canonical/types.ts';
import type { DraftRecord, MapIssue, MapResult } from '../contracts.ts';
import type { R, Ref } from './fhir-refs.ts';

export interface FhirMapContext {
  /** The source system: `<system>/Patient`, `<system>/Practitioner`, … are the systems of FHIR ids. */
  system: string;
  /** The adapter kind that read the resource (`fhir`, `file`). */
  adapter: string;
  now: () => number;
  /**
   * Months a prescription stays valid from the day it was written, for a VisionPrescription that
   * states no expiry (R4 has no expiry element). Absent or 0: no `expiresAt` is made up.
   */
  rxValidityMonths?: { spectacle: number; contactLens: number };
}

/** The partition of a patient's records (the same key the HL7 and file mappers give that patient). */
export function patientPartition(p: Ref): string {
  return `patient:${p.system}|${p.value}`;
}

/** The resource's logical id as its source id names it; a resource without one (a bundle entry) is named by its content hash. */
export function resourceIdOf(res: R, contentHash: string): string {
  if (typeof res.id === 'string' && res.id.trim() !== '') return res.id;
  return typeof res.id === 'number' ? String(res.id) : contentHash;
}

/** One upsert record of a resource. `suffix` names a second, third… record of the same type. */
export function record(
  ctx: FhirMapContext,
  res: R,
  type: RecordType,
  data: R,
  patient: Ref | undefined,
  contentHash: string,
  occurredAt?: string,
  suffix?: string,
): DraftRecord {
  const rt = String(res.resourceType);
  const id = resourceIdOf(res, contentHash);
  const parts = suffix ? [rt, id, contentHash, suffix] : [rt, id, contentHash];
  return {
    id: deterministicId('fhir', ctx.system, ...parts),
    type,
    op: 'upsert',
    source: { system: ctx.system, adapter: ctx.adapter, sourceId: `${rt}/${id}${suffix ? `#${suffix}` : ''}` },
    // a date alone (a claim's `created`) is that day's start in UTC: occurredAt is an instant
    occurredAt: occurredAt ? (occurredAt.length === 10 ? `${occurredAt}T00:00:00Z` : occurredAt) : new Date(ctx.now()).toISOString(),
    partitionKey: patient ? patientPartition(patient) : `${ctx.system}:${rt}/${id}`,
    data,
  };
}

/**
 * The `delete` record that retracts what `<rt>/<id>` (with `suffix`) was mapped to. Its data is
 * empty (the schema checks data only for upserts and merges). `evidence` (the deletion's time, or
 * the content hash of an entered-in-error version) makes two deletions of one resource two records,
 * and a resend of one deletion the same record.
 */
export function deleteRecord(
  ctx: FhirMapContext,
  rt: string,
  id: string,
  type: RecordType,
  at: string,
  evidence: string,
  suffix?: string,
  patient?: Ref,
): DraftRecord {
  return {
    id: deterministicId('fhir', ctx.system, rt, id, 'delete', type, suffix ?? '', evidence),
    type,
    op: 'delete',
    source: { system: ctx.system, adapter: ctx.adapter, sourceId: `${rt}/${id}${suffix ? `#${suffix}` : ''}` },
    occurredAt: at,
    partitionKey: patient ? patientPartition(patient) : `${ctx.system}:${rt}/${id}`,
    data: {},
  };
}

/** A mapping error: the resource is rejected whole (dead-lettered with this reason). Messages name fields, never values. */
export function fail(message: string, issues: MapIssue[] = []): MapResult {
  return { records: [], issues: [...issues, { severity: 'error', code: 'GW_MAP_FAILED', message }] };
}

/** A warning: the resource maps, something in it was left out or adjusted. */
export function warning(message: string): MapIssue {
  return { severity: 'warning', code: 'GW_MAP_FAILED', message };
}
