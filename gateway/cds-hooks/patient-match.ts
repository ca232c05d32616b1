/**
 * Which of the gateway's patients a CDS Hooks request is about, and what it is booking. The EHR
 * names its patient by its own FHIR id (`context.patientId`); the gateway's records name patients
 * by the references their sources used (an HL7 assigning authority and MRN, a FHIR server's
 * `<system>/Patient` and id). Two ways meet:
 *
 * - `context.patientId` under the issuer's `patientSystem` (a `fhir[]` source reading this EHR
 *   makes exactly those references);
 * - the prefetched Patient's identifiers (discovery asks for `Patient/{{context.patientId}}`),
 *   each system mapped through the issuer's `identifierSystems` (the EHR's MRN OID → the PMS's
 *   assigning authority) or taken as it is.
 *
 * A prefetched Patient whose id is not `context.patientId` is not used: it would be another
 * person's chart. Matching is exact (system and value); a value under another system is never
 * taken for it, so a card never shows another patient's prescription.
 */
import type { Reference } from '../../adapters/canonical/types.ts';

export interface IssuerMatching {
  patientSystem: string;
  identifierSystems: Readonly<Record<string, string>>;
}

type R = Record<string, unknown>;
const obj = (v: unknown): R | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as R) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const list = (v: unknown): R[] => (Array.isArray(v) ? v.map(obj).filter((x): x is R => x !== undefined) : []);

/** At most this many identifiers of a prefetched Patient are looked up. */
const MAX_IDENTIFIERS = 16;

export function patientRefs(patientId: string, prefetch: unknown, m: IssuerMatching): Reference[] {
  const out: Reference[] = [];
  if (m.patientSystem) out.push({ system: m.patientSystem, value: patientId });
  const patient = obj(obj(prefetch)?.patient);
  if (patient && patient.resourceType === 'Patient' && str(patient.id) === patientId) {
    for (const id of list(patient.identifier).slice(0, MAX_IDENTIFIERS)) {
      const system = str(id.system);
      const value = str(id.value);
      if (system && value) out.push({ system: m.identifierSystems[system] ?? system, value });
    }
  }
  return out;
}

/** `appointment-book` `context.appointments` (a FHIR Bundle of Appointment): their identifiers and starts. */
export function bookingOf(context: R): { keys: string[]; starts: number[] } {
  const keys: string[] = [];
  const starts: number[] = [];
  for (const e of list(obj(context.appointments)?.entry).slice(0, 50)) {
    const a = obj(e.resource);
    if (a?.resourceType !== 'Appointment') continue;
    for (const id of list(a.identifier)) {
      const system = str(id.system);
      const value = str(id.value);
      if (system && value) keys.push(`${system}|${value}`);
    }
    const t = Date.parse(str(a.start) ?? '');
    if (Number.isFinite(t)) starts.push(t);
  }
  return { keys, starts };
}
