/**
 * The search parameters the test server understands and how each matches (FHIR R4 §3.1.1 Search):
 * `_id` (token), `_lastUpdated` and `date` (date: prefixes eq/ne/gt/lt/ge/le over ranges set by
 * the value's precision, §3.1.1.4.2), `patient` (reference) on the patient-compartment types,
 * `identifier` (token `system|value`) on Patient and the types the gateway writes back (Appointment,
 * VisionPrescription, DocumentReference: its conditional creates). Comma-separated values are ORed and repeated
 * parameters ANDed (§3.1.1.5.2).
 */
import { FhirHttpError } from './http-util.ts';
import type { FhirResource } from './types.ts';
import { lastUpdatedOn, type VendorProfile } from './vendors.ts';

/** A half-open instant range [lo, hi) in ms: a date value covers its whole precision (2024 is all of 2024). */
export interface DateRange {
  lo: number;
  hi: number;
}

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le';
const PREFIXES: readonly DatePrefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le'];

/** One parsed parameter occurrence: a test a resource passes when any of its OR-values matches. */
export interface Filter {
  name: string;
  /** The raw value, kept for the self and next links. */
  raw: string;
  /** For `_lastUpdated`: the bound it puts on lastUpdated, so a scan can start late. */
  lastUpdatedFloor?: { ms: number; strict: boolean };
  test(r: FhirResource, lastUpdatedMs: number): boolean;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The range a FHIR date/dateTime/instant covers. No time zone: UTC (R4 says the server's zone;
 * this server's zone is UTC). A space is read as '+' because an unescaped '+' in a query
 * string arrives as a space.
 */
export function parseDateRange(value: string): DateRange | undefined {
  const m = DATE_RE.exec(value.replace(' ', '+'));
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const offsetMs = !tz || tz === 'Z' ? 0 : (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60_000;
  const fracMs = frac ? Number(`0.${frac}`) * 1000 : 0;
  const lo =
    Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1, h ? Number(h) : 0, mi ? Number(mi) : 0, s ? Number(s) : 0) - offsetMs;
  if (frac) return { lo: lo + Math.floor(fracMs), hi: lo + Math.floor(fracMs) + 1 };
  if (s) return { lo, hi: lo + 1000 };
  if (mi) return { lo, hi: lo + 60_000 };
  if (d) return { lo, hi: lo + 86_400_000 };
  if (mo) return { lo, hi: Date.UTC(Number(y), Number(mo), 1) };
  return { lo, hi: Date.UTC(Number(y) + 1, 0, 1) };
}

/** The date rule of R4 §3.1.1.4.2, range against range (a point is a 1 ms range). */
export function dateMatches(prefix: DatePrefix, p: DateRange, t: DateRange): boolean {
  const within = p.lo <= t.lo && t.hi <= p.hi;
  switch (prefix) {
    case 'eq':
      return within;
    case 'ne':
      return !within;
    case 'gt':
      return t.hi > p.hi;
    case 'lt':
      return t.lo < p.lo;
    case 'ge':
      return t.hi > p.hi || within;
    case 'le':
      return t.lo < p.lo || within;
    default:
      return prefix satisfies never;
  }
}

function splitPrefix(value: string): { prefix: DatePrefix; rest: string } {
  const head = value.slice(0, 2) as DatePrefix;
  return PREFIXES.includes(head) ? { prefix: head, rest: value.slice(2) } : { prefix: 'eq', rest: value };
}

/** Types in the Patient compartment, and where each keeps its patient reference (R4 compartmentdefinition-patient, abridged). */
export const PATIENT_REFERENCES: Readonly<Record<string, readonly string[]>> = {
  Account: ['subject'],
  AllergyIntolerance: ['patient'],
  Appointment: ['participant.actor'],
  ChargeItem: ['subject'],
  Claim: ['patient'],
  ClaimResponse: ['patient'],
  Condition: ['subject'],
  Coverage: ['beneficiary'],
  CoverageEligibilityRequest: ['patient'],
  CoverageEligibilityResponse: ['patient'],
  Device: ['patient'],
  DeviceRequest: ['subject'],
  DiagnosticReport: ['subject'],
  DocumentReference: ['subject'],
  Encounter: ['subject'],
  ExplanationOfBenefit: ['patient'],
  Invoice: ['subject'],
  Observation: ['subject'],
  Procedure: ['subject'],
  ServiceRequest: ['subject'],
  VisionPrescription: ['patient'],
};

/** Where the `date` parameter looks, per type (R4 search parameter `clinical-date` and `Appointment-date`). */
const DATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Appointment: ['start'],
  Encounter: ['period.start'],
  Observation: ['effectiveDateTime', 'effectiveInstant', 'effectivePeriod.start'],
};

/** The patient ids a resource refers to (`Patient/<id>`, versioned `Patient/<id>/_history/<v>`, or an absolute URL ending so). */
export function patientIdsOf(r: FhirResource): string[] {
  const out: string[] = [];
  for (const path of PATIENT_REFERENCES[r.resourceType] ?? []) {
    for (const v of valuesAt(r, path)) {
      const ref = (v as { reference?: unknown } | undefined)?.reference;
      const m = typeof ref === 'string' ? /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(ref) : null;
      if (m) out.push(m[1]);
    }
  }
  return out;
}

function valuesAt(r: unknown, path: string): unknown[] {
  let here: unknown[] = [r];
  for (const part of path.split('.')) {
    here = here.flatMap((x) => {
      const v = (x as Record<string, unknown> | null)?.[part];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    });
  }
  return here;
}

/** The parameters the profile supports on a type, as the CapabilityStatement lists them. */
export function supportedSearchParams(p: VendorProfile, type: string): { name: string; type: 'token' | 'date' | 'reference' }[] {
  const out: { name: string; type: 'token' | 'date' | 'reference' }[] = [{ name: '_id', type: 'token' }];
  if (lastUpdatedOn(p, type)) out.push({ name: '_lastUpdated', type: 'date' });
  if (PATIENT_REFERENCES[type]) out.push({ name: 'patient', type: 'reference' });
  if (DATE_PATHS[type]) out.push({ name: 'date', type: 'date' });
  if (['Patient', 'Appointment', 'VisionPrescription', 'DocumentReference'].includes(type)) out.push({ name: 'identifier', type: 'token' });
  return out;
}

/**
 * One occurrence of a search parameter as a filter; undefined when the profile does not support
 * the parameter on this type (the caller refuses or ignores it, per the handling preference).
 */
export function parseFilter(p: VendorProfile, type: string, name: string, raw: string): Filter | undefined {
  if (!supportedSearchParams(p, type).some((s) => s.name === name)) return undefined;
  const values = raw.split(',');
  switch (name) {
    case '_id':
      return { name, raw, test: (r) => values.includes(String(r.id)) };
    case 'patient': {
      const ids = values.map((v) => /(?:^|\/)([A-Za-z0-9\-.]{1,64})$/.exec(v)?.[1] ?? v);
      return { name, raw, test: (r) => patientIdsOf(r).some((id) => ids.includes(id)) };
    }
    case 'identifier':
      return {
        name,
        raw,
        test: (r) =>
          values.some((v) => {
            const bar = v.indexOf('|');
            const [system, value] = bar < 0 ? [undefined, v] : [v.slice(0, bar), v.slice(bar + 1)];
            return valuesAt(r, 'identifier').some((i) => {
              const id = i as { system?: string; value?: string };
              return (system === undefined || id.system === system) && (value === '' || id.value === value);
            });
          }),
      };
    case '_lastUpdated':
    case 'date': {
      const parsed = values.map((v) => {
        const { prefix, rest } = splitPrefix(v);
        const range = parseDateRange(rest);
        if (!range) throw new FhirHttpError(400, 'invalid', `${name}: not a FHIR date`);
        if (name === '_lastUpdated' && !p.lastUpdatedPrefixes.includes(prefix)) {
          throw new FhirHttpError(400, 'not-supported', `_lastUpdated: prefix ${prefix} is not supported`);
        }
        return { prefix, range };
      });
      if (name === '_lastUpdated') {
        const floor = parsed.length === 1 && (parsed[0].prefix === 'gt' || parsed[0].prefix === 'ge') ? parsed[0] : undefined;
        return {
          name,
          raw,
          lastUpdatedFloor: floor && { ms: floor.prefix === 'gt' ? floor.range.hi - 1 : floor.range.lo, strict: floor.prefix === 'gt' },
          test: (_r, ms) => parsed.some((v) => dateMatches(v.prefix, v.range, { lo: ms, hi: ms + 1 })),
        };
      }
      const paths = DATE_PATHS[type] ?? [];
      return {
        name,
        raw,
        test: (r) =>
          paths.some((path) =>
            valuesAt(r, path).some((v) => {
              const t = typeof v === 'string' ? parseDateRange(v) : undefined;
              return t !== undefined && parsed.some((q) => dateMatches(q.prefix, q.range, t));
            }),
          ),
      };
    }
    default:
      return undefined;
  }
}
