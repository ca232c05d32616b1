/**
 * `GET [base]/metadata`: the CapabilityStatement (FHIR R4 §3.1.0.9 "capabilities" and the
 * CapabilityStatement resource), saying per resource type which interactions and search
 * parameters the vendor profile offers — so a client can find out, as it must with Epic, that
 * `_lastUpdated` is not there before it tries. Security carries the SMART `oauth-uris` extension
 * (SMART App Launch 2.2 §2.0.8, the CapabilityStatement form of discovery).
 */
import { supportedSearchParams } from './search-params.ts';
import type { FhirStore } from './store.ts';
import type { VendorProfile } from './vendors.ts';

export interface CapabilityInput {
  profile: VendorProfile;
  store: FhirStore;
  baseUrl: string;
  tokenUrl: string;
  fhirVersion: string;
  /** The server clock, for `date`. */
  now: number;
}

/**
 * Types a generic R4 server supports whether or not it holds any yet: a real server's
 * CapabilityStatement lists what it can serve, not what it happens to store (a client reading
 * `/metadata` before the first resource arrives must still see Patient).
 */
const GENERIC_TYPES = [
  'Appointment',
  'ChargeItem',
  'Claim',
  'Coverage',
  'DocumentReference',
  'Invoice',
  'Location',
  'Observation',
  'Organization',
  'Patient',
  'Practitioner',
  'PractitionerRole',
  'Schedule',
  'Slot',
  'VisionPrescription',
];

/** The resource types listed: the profile's list, or (generic) the usual types and every type the store holds. */
export function listedTypes(profile: VendorProfile, store: FhirStore): string[] {
  return profile.resourceTypes === null ? [...new Set([...GENERIC_TYPES, ...store.types()])].sort() : [...profile.resourceTypes].sort();
}

export function capabilityStatement(c: CapabilityInput) {
  const { profile } = c;
  const exportOps = profile.bulk.system
    ? [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' }]
    : [];
  const resource = listedTypes(profile, c.store).map((type) => ({
    type,
    interaction: [
      { code: 'read' },
      { code: 'vread' },
      { code: 'search-type' },
      { code: 'history-type' },
      { code: 'create' },
      { code: 'update' },
    ],
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
    searchParam: supportedSearchParams(profile, type),
    ...(type === 'Patient' && profile.bulk.patient
      ? { operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' }] }
      : {}),
    ...(type === 'Group' && profile.bulk.group
      ? { operation: [{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }] }
      : {}),
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date(c.now).toISOString(),
    kind: 'instance',
    software: { name: profile.software.name, version: profile.software.version },
    implementation: { description: `${profile.vendor} FHIR test server`, url: c.baseUrl },
    fhirVersion: c.fhirVersion,
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: c.tokenUrl }],
            },
          ],
        },
        resource,
        ...(exportOps.length > 0 ? { operation: exportOps } : {}),
      },
    ],
  };
}
