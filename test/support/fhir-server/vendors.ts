/**
 * What each vendor's FHIR R4 server does differently, as far as a polling gateway notices: where
 * the base URL and the token endpoint live, which search parameters it takes on which resource
 * types (and so whether `_lastUpdated` polling is possible at all), how its next links page, and
 * which Bulk Data export levels it offers. Each choice says where it comes from; where a vendor's
 * documentation says nothing we could check, the choice is marked "plausible" in the README.
 */
import type { VendorName } from './types.ts';

/** How a searchset's `next` link carries the position (all keyset on (lastUpdated, id), see search.ts). */
export type PagingStyle = 'getpages' | 'page-context' | 'cursor';

export interface VendorProfile {
  vendor: VendorName;
  /** CapabilityStatement.software. */
  software: { name: string; version: string };
  /** The FHIR base path for a tenant (no trailing slash). */
  basePath(tenant: string): string;
  /** The token endpoint's path for a tenant. */
  tokenPath(tenant: string): string;
  /** The tenant used when the options name none. */
  defaultTenant: string;
  paging: PagingStyle;
  /** Resource types served (others: 404); null serves any type the store holds. */
  resourceTypes: readonly string[] | null;
  /** Types whose search takes `_lastUpdated`: 'all', or a list (empty: none). */
  lastUpdatedOn: 'all' | readonly string[];
  /** The comparison prefixes `_lastUpdated` accepts. */
  lastUpdatedPrefixes: readonly string[];
  /** Per type, search parameters of which at least one must be given (400 otherwise). */
  requireOneOf: Readonly<Record<string, readonly string[]>>;
  /** Bulk Data export levels offered (Bulk Data IG v2 §Kick-off: system, Patient, Group). */
  bulk: { system: boolean; patient: boolean; group: boolean };
  /** `_count` when none is given, and the most one page holds (a larger `_count` is lowered, FHIR R4 §3.1.1.6.3). */
  defaultCount: number;
  maxCount: number;
  /** The vendor's request quota, when it enforces one. */
  rateLimit?: { perMinute?: number; perDay?: number };
}

/** The US Core-style clinical and administrative types the EHR profiles serve (no VisionPrescription: see README). */
const EHR_TYPES = [
  'AllergyIntolerance',
  'Appointment',
  'Condition',
  'Coverage',
  'Device',
  'DiagnosticReport',
  'DocumentReference',
  'Encounter',
  'Group',
  'Location',
  'Observation',
  'Organization',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
  'Schedule',
  'ServiceRequest',
  'Slot',
] as const;

const ALL_PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le'] as const;

const PROFILES: Record<VendorName, VendorProfile> = {
  /** A plain R4 server in the HAPI manner: everything the search rules allow, every export level. */
  generic: {
    vendor: 'generic',
    software: { name: 'ewml FHIR test server', version: '1.0.0' },
    basePath: () => '/fhir/r4',
    tokenPath: () => '/auth/token',
    defaultTenant: '',
    paging: 'getpages',
    resourceTypes: null,
    lastUpdatedOn: 'all',
    lastUpdatedPrefixes: ALL_PREFIXES,
    requireOneOf: {},
    bulk: { system: true, patient: true, group: true },
    defaultCount: 20,
    maxCount: 500,
  },
  /**
   * Epic: base `/api/FHIR/R4`, token at `/oauth2/token`, clients register a hosted JWKS URL.
   * Its published R4 CapabilityStatement lists `_lastUpdated` on no resource, so a poller cannot
   * ask "what changed since"; Observation and Appointment searches need a patient; Bulk Data is
   * offered at Group level only.
   */
  epic: {
    vendor: 'epic',
    software: { name: 'Epic', version: 'November 2024' },
    basePath: () => '/api/FHIR/R4',
    tokenPath: () => '/oauth2/token',
    defaultTenant: '',
    paging: 'getpages',
    resourceTypes: EHR_TYPES,
    lastUpdatedOn: [],
    lastUpdatedPrefixes: [],
    requireOneOf: { Observation: ['patient', '_id'], Appointment: ['patient', '_id'] },
    bulk: { system: false, patient: false, group: true },
    defaultCount: 50,
    maxCount: 1000,
  },
  /**
   * Oracle Health (Cerner) Millennium: the tenant id is in the path (`/r4/<tenant>`), the token
   * endpoint is per tenant, next links carry `-pageContext` and `-pageDirection=NEXT`, and
   * `_lastUpdated` takes only `ge`/`le` and only on some clinical types (not Patient).
   */
  cerner: {
    vendor: 'cerner',
    software: { name: 'Oracle Health Millennium Platform', version: '2024.01' },
    basePath: (t) => `/r4/${t}`,
    tokenPath: (t) => `/tenants/${t}/protocols/oauth2/profiles/smart-v1/token`,
    defaultTenant: '3f1c7d2e-5b8a-4c61-9e0f-2a7b6c4d8e91',
    paging: 'page-context',
    resourceTypes: EHR_TYPES,
    lastUpdatedOn: ['AllergyIntolerance', 'Condition', 'DiagnosticReport', 'DocumentReference', 'Encounter', 'Observation', 'Procedure'],
    lastUpdatedPrefixes: ['ge', 'le'],
    requireOneOf: { Observation: ['patient', '_id'] },
    bulk: { system: false, patient: false, group: true },
    defaultCount: 50,
    maxCount: 200,
  },
  /**
   * athenahealth: the practice in the path (`/fhir/r4/<practiceId>` here), token at `/oauth2/v1/token`,
   * `cursor=` paging, request quotas per minute and per day, and no bulk export at all (athenahealth
   * does not take bulk integrations): every `$export` is refused with an OperationOutcome.
   */
  athenahealth: {
    vendor: 'athenahealth',
    software: { name: 'athenaOne', version: '25.1' },
    basePath: (t) => `/fhir/r4/${t}`,
    tokenPath: () => '/oauth2/v1/token',
    defaultTenant: '1128700',
    paging: 'cursor',
    resourceTypes: EHR_TYPES,
    lastUpdatedOn: 'all',
    lastUpdatedPrefixes: ALL_PREFIXES,
    requireOneOf: {},
    bulk: { system: false, patient: false, group: false },
    defaultCount: 10,
    maxCount: 100,
    rateLimit: { perMinute: 600, perDay: 100_000 },
  },
  /** MEDITECH Expanse: a US Core R4 base, `_lastUpdated` on every type, Group-level export (plausible). */
  meditech: {
    vendor: 'meditech',
    software: { name: 'MEDITECH Expanse', version: '2.2' },
    basePath: () => '/v1/uscore/R4',
    tokenPath: () => '/oauth/token',
    defaultTenant: '',
    paging: 'getpages',
    resourceTypes: EHR_TYPES,
    lastUpdatedOn: 'all',
    lastUpdatedPrefixes: ALL_PREFIXES,
    requireOneOf: {},
    bulk: { system: false, patient: false, group: true },
    defaultCount: 50,
    maxCount: 100,
  },
};

/** A vendor's profile with a test's overrides (e.g. `{ lastUpdatedOn: [] }` on the generic server). */
export function vendorProfile(vendor: VendorName, overrides: Partial<VendorProfile> = {}): VendorProfile {
  return { ...PROFILES[vendor], ...overrides };
}

/** Whether the profile serves a resource type. */
export function servesType(p: VendorProfile, type: string): boolean {
  return p.resourceTypes === null || p.resourceTypes.includes(type);
}

/** Whether `_lastUpdated` search is offered on a type. */
export function lastUpdatedOn(p: VendorProfile, type: string): boolean {
  return p.lastUpdatedOn === 'all' || p.lastUpdatedOn.includes(type);
}
