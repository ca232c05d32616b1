/**
 * Per-vendor HL7 profiles, declared as data. A profile says which identifier types name the
 * patient's chart (PID-3 CX.5), where visit types come from, and which SIU filler status codes
 * mean what. Vendor notes come from their published interface specs; where a vendor's feed follows
 * the standard, the profile says so by leaving the generic value.
 */
import type { Hl7ProfileName } from '../../config/schema.ts';

export interface Hl7Profile {
  readonly name: Hl7ProfileName;
  /** PID-3 identifier type codes (table 0203) tried in order for the chart number. */
  readonly patientIdTypes: readonly string[];
  /** Identifier system to use when a CX has no assigning authority: 'source' = the sending system. */
  readonly defaultIdentifierSystem: 'source';
  /** Where an SIU's visit type is read first: AIS-3 (service) or SCH-8 (appointment type). */
  readonly visitTypeFrom: readonly ('AIS-3' | 'SCH-8' | 'SCH-7')[];
  /** Extra SCH-25 filler status codes (beyond table 0278) → canonical appointment status. */
  readonly fillerStatus: Readonly<Record<string, string>>;
  /** The cylinder convention prescriptions are stored in (optometry: minus; ophthalmology often plus). */
  readonly cylinderConvention: 'minus' | 'plus';
  /** How long a prescription is valid when the PMS does not say (months; 0: no expiry set). */
  readonly rxValidityMonths: { readonly spectacle: number; readonly contactLens: number };
  /** Site- or vendor-specific OBX-3 codes that are eye-exam data, beside the standard ones. */
  readonly eyeCodes: Readonly<Record<string, { display: string; system?: string; rx?: string }>>;
}

/** A profile with a site's overrides (config `hl7.profileOverrides`) laid over it. */
/** A site's overrides: any field of a profile, and any part of its validity months. */
export type Hl7ProfileOverrides = Partial<Omit<Hl7Profile, 'name' | 'rxValidityMonths'>> & {
  readonly rxValidityMonths?: Partial<Hl7Profile['rxValidityMonths']>;
};

export function withOverrides(base: Hl7Profile, o: Hl7ProfileOverrides | undefined): Hl7Profile {
  if (!o) return base;
  return {
    ...base,
    ...(o.patientIdTypes ? { patientIdTypes: o.patientIdTypes.map((t) => t.toUpperCase()) } : {}),
    ...(o.visitTypeFrom ? { visitTypeFrom: o.visitTypeFrom } : {}),
    ...(o.cylinderConvention ? { cylinderConvention: o.cylinderConvention } : {}),
    ...(o.rxValidityMonths ? { rxValidityMonths: { ...base.rxValidityMonths, ...o.rxValidityMonths } } : {}),
    fillerStatus: {
      ...base.fillerStatus,
      ...Object.fromEntries(Object.entries(o.fillerStatus ?? {}).map(([k, v]) => [k.toUpperCase(), v])),
    },
    eyeCodes: { ...base.eyeCodes, ...Object.fromEntries(Object.entries(o.eyeCodes ?? {}).map(([k, v]) => [k.toUpperCase(), v])) },
  };
}

const generic: Hl7Profile = {
  name: 'generic',
  patientIdTypes: ['MR', 'MRN', 'PI', 'PT', 'PN', 'AN'],
  defaultIdentifierSystem: 'source',
  visitTypeFrom: ['AIS-3', 'SCH-8', 'SCH-7'],
  fillerStatus: {},
  cylinderConvention: 'minus',
  rxValidityMonths: { spectacle: 24, contactLens: 12 },
  eyeCodes: {},
};

/** Profiles by name; vendors not listed differently use the generic rules. */
export const HL7_PROFILES: Readonly<Record<Hl7ProfileName, Hl7Profile>> = {
  generic,
  // Epic Bridges: MRN in PID-3 with type MR (or EPI for the enterprise id); SCH-8 appointment type.
  epic: { ...generic, name: 'epic', patientIdTypes: ['MR', 'EPI', 'MRN', 'PI', 'PT'], visitTypeFrom: ['SCH-8', 'AIS-3', 'SCH-7'] },
  // Cerner/Oracle Health: MRN as type MRN; CMRN for the community MRN; AIS-3 carries the appointment type.
  cerner: {
    ...generic,
    name: 'cerner',
    patientIdTypes: ['MRN', 'MR', 'CMRN', 'PI'],
    fillerStatus: { CHECKED_IN: 'arrived', CHECKED_OUT: 'fulfilled', CONFIRMED: 'booked' },
  },
  allscripts: { ...generic, name: 'allscripts' },
  athenahealth: { ...generic, name: 'athenahealth', patientIdTypes: ['MR', 'PI', 'PT', 'AN'], visitTypeFrom: ['SCH-8', 'AIS-3', 'SCH-7'] },
  eclinicalworks: { ...generic, name: 'eclinicalworks', visitTypeFrom: ['SCH-7', 'SCH-8', 'AIS-3'] },
  nextgen: { ...generic, name: 'nextgen', patientIdTypes: ['MR', 'PI', 'PT', 'PN'] },
  meditech: { ...generic, name: 'meditech', patientIdTypes: ['MR', 'PI', 'PT', 'EN'] },
  drchrono: { ...generic, name: 'drchrono' },
  'practice-studio': { ...generic, name: 'practice-studio', visitTypeFrom: ['SCH-8', 'AIS-3', 'SCH-7'] },
};
