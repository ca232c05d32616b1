/**
 * What each FHIR vendor needs, as data (no subclasses): scopes, page size, call budget, whether it
 * takes Bulk `$export`, and the order of sync strategies to try per resource. The strategy a
 * resource gets is the first of its list the server's CapabilityStatement supports
 * (capabilities.ts `chooseStrategy`); config overrides any figure.
 *
 * Sources: Epic's published R4 CapabilityStatement lists `_lastUpdated` on no resource and Epic
 * backend apps load in bulk; Oracle Health (Cerner) Millennium R4 puts the tenant id in the base
 * URL and supports `_lastUpdated` on several resources; athenahealth's FHIR API puts the practice in
 * the path, pages with a `cursor`, publishes per-minute and daily limits, and says it will not
 * accept integrations that need bulk import; MEDITECH Expanse implements US Core.
 */
import type { FhirResourceName, FhirVendor } from '../../config/fhir-schema.ts';

/** How one resource type is kept in step with the server. */
export type SyncStrategy =
  /** `_lastUpdated=ge<last run's start − overlap>` (where the server supports `_lastUpdated`). */
  | { kind: 'lastUpdated' }
  /** The resource's own date search parameter over a window (e.g. Epic Appointment `date`). */
  | { kind: 'date'; param: string }
  /** Bulk `$export` with `_since` (the type is part of the export job). */
  | { kind: 'bulk' }
  /** Read everything each time (small directories: Practitioner, Location); unchanged resources write nothing. */
  | { kind: 'snapshot' };

export interface VendorProfile {
  vendor: FhirVendor;
  label: string;
  /** Default `_count`. */
  pageSize: number;
  /** SMART scope style: v2 `system/Patient.rs`, v1 `system/Patient.read`. */
  scopeStyle: 'v1' | 'v2';
  rateLimit: { perMinute: number; perDay: number };
  /** The vendor takes `$export` (and wants the first load done with it). */
  bulk: 'preferred' | 'supported' | 'refused';
  /** The `$export` level the vendor offers backend apps (Epic, Oracle Health and MEDITECH export by Group). */
  bulkLevel: 'system' | 'group' | 'patient';
  /** Resources this vendor searches only within one patient (`patient=` required): read by bulk export, never by a search run. */
  searchNeedsPatient: readonly FhirResourceName[];
  /** Strategy lists tried in order; `*` is every resource not listed. */
  strategies: Partial<Record<FhirResourceName | '*', SyncStrategy[]>>;
  /** What a technician should know (shown by `fhir check`). */
  notes: string[];
  /** Checks the base URL carries what this vendor puts in it (tenant id, practice id); a problem or undefined. */
  checkBaseUrl?: (url: URL) => string | undefined;
}

const lastUpdatedOrSnapshot: SyncStrategy[] = [{ kind: 'lastUpdated' }, { kind: 'snapshot' }];

export const VENDOR_PROFILES: Record<FhirVendor, VendorProfile> = {
  epic: {
    vendor: 'epic',
    label: 'Epic',
    pageSize: 100,
    scopeStyle: 'v2',
    // Epic publishes no rate headers; a conservative ceiling the practice can raise
    rateLimit: { perMinute: 120, perDay: 0 },
    bulk: 'preferred',
    bulkLevel: 'group',
    searchNeedsPatient: [
      'Observation',
      'Appointment',
      'Coverage',
      'VisionPrescription',
      'DocumentReference',
      'ChargeItem',
      'Claim',
      'Invoice',
    ],
    strategies: {
      Appointment: [{ kind: 'lastUpdated' }, { kind: 'date', param: 'date' }, { kind: 'bulk' }],
      Slot: [{ kind: 'lastUpdated' }, { kind: 'date', param: 'start' }, { kind: 'bulk' }],
      // outside the patient compartment: a Group export may refuse them (Bulk Data IG), and one refused type fails the whole job
      Practitioner: [{ kind: 'lastUpdated' }, { kind: 'snapshot' }],
      Location: [{ kind: 'lastUpdated' }, { kind: 'snapshot' }],
      Organization: [{ kind: 'lastUpdated' }, { kind: 'snapshot' }],
      PractitionerRole: [{ kind: 'lastUpdated' }, { kind: 'snapshot' }],
      '*': [{ kind: 'lastUpdated' }, { kind: 'bulk' }],
    },
    notes: [
      "Epic's R4 CapabilityStatement lists _lastUpdated on no resource, and clinical searches need a patient: Patient and clinical data come by Group-level Bulk $export with _since (set bulk.groupId).",
      'Since February 2026 Epic backend apps register a hosted JWKS URL: set jwksUrl and serve `eyewear-gateway fhir jwks` there.',
    ],
  },
  cerner: {
    vendor: 'cerner',
    label: 'Oracle Health (Cerner) Millennium',
    pageSize: 100,
    scopeStyle: 'v1',
    rateLimit: { perMinute: 300, perDay: 0 },
    bulk: 'supported',
    bulkLevel: 'group',
    searchNeedsPatient: ['Observation'],
    strategies: {
      Appointment: [{ kind: 'lastUpdated' }, { kind: 'date', param: 'date' }, { kind: 'bulk' }],
      '*': [{ kind: 'lastUpdated' }, { kind: 'bulk' }, { kind: 'snapshot' }],
    },
    notes: ['The tenant id is part of the base URL (…/r4/<tenant-id>).'],
    checkBaseUrl: (u) =>
      /\/r4\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/?$/i.test(u.pathname)
        ? undefined
        : 'an Oracle Health base URL ends with the tenant id: …/r4/<tenant-id> (a UUID)',
  },
  athenahealth: {
    vendor: 'athenahealth',
    label: 'athenahealth',
    pageSize: 100,
    scopeStyle: 'v2',
    // athenahealth publishes per-minute throttles and daily call limits per app: stay under both
    rateLimit: { perMinute: 150, perDay: 50_000 },
    bulk: 'refused',
    bulkLevel: 'system',
    searchNeedsPatient: [],
    strategies: { '*': lastUpdatedOrSnapshot },
    notes: [
      'The practice id is part of the base URL.',
      'athenahealth does not accept integrations that need bulk import: the first load pages through searches.',
    ],
    checkBaseUrl: (u) =>
      /\/\d+(\/|$)/.test(u.pathname) || /ah-practice=/.test(u.search)
        ? undefined
        : 'an athenahealth base URL carries the practice id (…/fhir/r4/<practiceid> or ah-practice=…)',
  },
  meditech: {
    vendor: 'meditech',
    label: 'MEDITECH Expanse',
    pageSize: 50,
    scopeStyle: 'v2',
    rateLimit: { perMinute: 120, perDay: 0 },
    bulk: 'supported',
    bulkLevel: 'group',
    searchNeedsPatient: [],
    strategies: { '*': [{ kind: 'lastUpdated' }, { kind: 'bulk' }, { kind: 'snapshot' }] },
    notes: ['Expanse implements US Core; searches outside it may be refused.'],
  },
  generic: {
    vendor: 'generic',
    label: 'FHIR R4 server',
    pageSize: 100,
    scopeStyle: 'v2',
    rateLimit: { perMinute: 0, perDay: 0 },
    bulk: 'supported',
    bulkLevel: 'system',
    searchNeedsPatient: [],
    strategies: { '*': [{ kind: 'lastUpdated' }, { kind: 'bulk' }, { kind: 'snapshot' }] },
    notes: [],
  },
};

/** The profile's strategy list for a resource. */
export function strategiesFor(p: VendorProfile, resource: FhirResourceName): SyncStrategy[] {
  return p.strategies[resource] ?? p.strategies['*'] ?? [{ kind: 'snapshot' }];
}

/** The scopes a source asks for: read and search of each resource, in the vendor's style. */
export function defaultScope(p: VendorProfile, resources: readonly string[]): string {
  return resources.map((r) => (p.scopeStyle === 'v2' ? `system/${r}.rs` : `system/${r}.read`)).join(' ');
}
