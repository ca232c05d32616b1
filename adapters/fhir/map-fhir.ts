/**
 * FHIR R4 resources to canonical records: the entry points file imports (`preview`,
 * adapters/file) and the FHIR API source call. One mapping per resource type, in the files beside
 * this one; the table below says which canonical types each maps to, so deletes and reports need
 * no resource in hand.
 *
 * Patients are referred to by their FHIR id under the source's system (`<system>/Patient`),
 * practitioners by `<system>/Practitioner`, and so on, so records from one server link up.
 *
 * **Status `entered-in-error`** (R4: "this should never have existed") on an Observation,
 * VisionPrescription, Coverage, ChargeItem, Claim or Invoice retracts it: the result is the
 * resource's delete records, as if it had been deleted. An Appointment keeps its older mapping
 * (`cancelled`) and a Slot states the status as such; both are what their consumers expect.
 */
import type { RecordType } from '../canonical/types.ts';
import type { MapResult } from '../contracts.ts';
import { fhirInstant, obj, str, type R, type Ref } from './fhir-refs.ts';
import { mapChargeItem, mapClaim, mapCoverage, mapInvoice } from './map-financial.ts';
import { mapLocation, mapOrganization, mapPractitioner, mapPractitionerRole } from './map-directory.ts';
import { mapDocumentReference } from './map-document.ts';
import { EYE_COMPONENT_CODES, isEyeExamObservation, mapObservation } from './map-observation.ts';
import { mapPatient } from './map-patient.ts';
import { deleteRecord, fail, resourceIdOf, type FhirMapContext } from './map-record.ts';
import { mapAppointment, mapSchedule, mapSlot } from './map-scheduling.ts';
import { mapVisionPrescription } from './map-vision-rx.ts';

export type { FhirMapContext } from './map-record.ts';

interface FhirMapping {
  /** The canonical types this resource type can map to. */
  types: readonly RecordType[];
  map: (res: R, ctx: FhirMapContext, contentHash: string) => MapResult;
  /** Suffixes of the further records one resource can yield (`<Type>/<id>#<suffix>`), which its delete retracts too. */
  suffixes?: readonly string[];
  /** `status: entered-in-error` retracts the resource (see the module comment). */
  retractsEnteredInError?: boolean;
}

const MAPPINGS = {
  Patient: { types: ['patient'], map: mapPatient },
  Practitioner: { types: ['provider'], map: mapPractitioner },
  PractitionerRole: { types: ['provider'], map: mapPractitionerRole },
  Organization: { types: ['organization'], map: mapOrganization },
  Location: { types: ['location'], map: mapLocation },
  Appointment: { types: ['appointment'], map: mapAppointment },
  Schedule: { types: ['schedule'], map: mapSchedule },
  Slot: { types: ['slot'], map: mapSlot },
  // one resource, one record: which of the two depends on its lens specifications, so a delete retracts both
  VisionPrescription: { types: ['spectacle-rx', 'contact-lens-rx'], map: mapVisionPrescription, retractsEnteredInError: true },
  Observation: { types: ['eye-exam-observation'], map: mapObservation, suffixes: EYE_COMPONENT_CODES, retractsEnteredInError: true },
  Coverage: { types: ['coverage'], map: mapCoverage, retractsEnteredInError: true },
  ChargeItem: { types: ['charge'], map: mapChargeItem, retractsEnteredInError: true },
  Claim: { types: ['claim'], map: mapClaim, retractsEnteredInError: true },
  Invoice: { types: ['invoice'], map: mapInvoice, retractsEnteredInError: true },
  DocumentReference: { types: ['clinical-document'], map: mapDocumentReference, retractsEnteredInError: true },
} as const satisfies Record<string, FhirMapping>;

export type FhirResourceType = keyof typeof MAPPINGS;

/** The resource types that map to canonical records (every other type is `unsupported`). */
export const FHIR_RESOURCES: readonly FhirResourceType[] = Object.keys(MAPPINGS) as FhirResourceType[];

function mappingOf(resourceType: unknown): FhirMapping | undefined {
  return typeof resourceType === 'string' && Object.hasOwn(MAPPINGS, resourceType)
    ? (MAPPINGS as Record<string, FhirMapping>)[resourceType]
    : undefined;
}

/** The canonical record types a resource type maps to; empty for a type that is not mapped. */
export function canonicalTypesOf(resourceType: string): readonly RecordType[] {
  return mappingOf(resourceType)?.types ?? [];
}

/** Options of a delete: the patient, when the caller knows whose records these were (puts the deletes in that patient's partition, behind the upserts). */
export interface FhirDeleteOptions {
  patient?: Ref;
}

/**
 * The `op: delete` records for a deleted resource (a bulk export's `deleted`, a 410 on read, a
 * history DELETE entry): one per canonical type the resource type maps to (a VisionPrescription's
 * spectacle and contact-lens Rx both, since which one it was is not known without it), and per
 * further record (an Observation's components). Each names its record by type, source system and
 * source id `<Type>/<id>`, as the upserts did; `at` (an ISO instant) is its `occurredAt`. Without
 * `opts.patient` the deletes go in the resource's own partition, so their order against the
 * patient's earlier upserts rests on `occurredAt`.
 */
export function fhirDeleteRecords(
  resourceType: string,
  id: string,
  ctx: FhirMapContext,
  at: string,
  opts: FhirDeleteOptions = {},
): MapResult {
  return retract(resourceType, id, ctx, at, at, opts.patient);
}

function retract(rt: string, id: string, ctx: FhirMapContext, at: string, evidence: string, patient?: Ref): MapResult {
  const m = mappingOf(rt);
  if (!m) return { unsupported: rt || 'unknown', records: [], issues: [] };
  if (!str(id)) return fail(`${rt} delete has no id`);
  if (!fhirInstant(at) || at.length <= 10) return fail(`${rt} delete has no instant (an ISO date-time with its offset)`);
  const suffixes = [undefined, ...(m.suffixes ?? [])];
  return {
    records: m.types.flatMap((type) => suffixes.map((s) => deleteRecord(ctx, rt, id, type, at, evidence, s, patient))),
    issues: [],
  };
}

/**
 * Maps one FHIR resource. Types not in `FHIR_RESOURCES`, and Observations that are not eye-exam
 * data, are `unsupported` (counted as ignored, not errors). Odd input never throws: a mapping that
 * fails is an error issue, and the resource is rejected whole.
 */
export function mapFhirResource(res: R, ctx: FhirMapContext, contentHash: string): MapResult {
  if (!obj(res)) return fail('not a FHIR resource (not a JSON object)');
  const rt = res.resourceType;
  const m = mappingOf(rt);
  if (!m) return { unsupported: typeof rt === 'string' && rt ? rt : 'unknown', records: [], issues: [] };
  const type = rt as FhirResourceType;
  if (type === 'Observation' && !isEyeExamObservation(res)) return { unsupported: 'Observation', records: [], issues: [] };
  try {
    if (m.retractsEnteredInError && res.status === 'entered-in-error') {
      const at = fhirInstant(obj(res.meta)?.lastUpdated) ?? new Date(ctx.now()).toISOString();
      return retract(type, resourceIdOf(res, contentHash), ctx, at.length > 10 ? at : `${at}T00:00:00Z`, contentHash);
    }
    return m.map(res, ctx, contentHash);
  } catch (e) {
    // a mapper bug meeting input it did not expect: rejected with the error's kind, never its text (which could quote a value)
    return fail(`${type} could not be mapped (${e instanceof Error ? e.name : 'error'})`);
  }
}
