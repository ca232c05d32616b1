/**
 * Every resource of the public FHIR corpus (R4 examples, the eye-care IG, a Synthea bulk export)
 * through mapFhirResource: the per-type answers are pinned (records, unsupported, errors), every
 * record validates against the canonical schema, and one resource of each mapped type is checked
 * value by value.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { rowHash } from '../../../adapters/canonical/row-hash.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import type { DraftRecord, MapResult } from '../../../adapters/contracts.ts';
import { mapFhirResource, type FhirMapContext } from '../../../adapters/fhir/map-fhir.ts';
import { toCanonical } from '../../../gateway/pipeline/map.ts';
import { corpus } from '../../support/corpus.ts';
import { fhirCorpusResources, type CorpusResource } from './fhir-corpus.ts';

const ctx: FhirMapContext = { system: 'FHIR', adapter: 'file', now: () => Date.parse('2026-03-01T12:00:00Z') };
const identity = { tenantId: 't1', practiceId: 'p1', gatewayId: 'g1' };

interface Tally {
  resources: number;
  records: number;
  unsupported: number;
  errors: number;
  warnings: number;
}

/** What each resource type of the corpus maps to (CONVENTIONS 13: a regression to "rejected, with a reason" fails here). */
const PINNED: Record<string, Tally> = {
  // mapped
  Patient: { resources: 44, records: 42, unsupported: 0, errors: 2, warnings: 0 }, // 2: bundle entries without an id (urn:uuid fullUrl) or identifier
  Practitioner: { resources: 58, records: 58, unsupported: 0, errors: 0, warnings: 0 },
  PractitionerRole: { resources: 44, records: 44, unsupported: 0, errors: 0, warnings: 0 },
  Organization: { resources: 56, records: 56, unsupported: 0, errors: 0, warnings: 0 },
  Location: { resources: 50, records: 50, unsupported: 0, errors: 0, warnings: 0 },
  Appointment: { resources: 3, records: 2, unsupported: 0, errors: 1, warnings: 0 }, // 1: a proposed appointment with no start
  Schedule: { resources: 3, records: 3, unsupported: 0, errors: 0, warnings: 0 },
  Slot: { resources: 4, records: 4, unsupported: 0, errors: 0, warnings: 0 },
  VisionPrescription: { resources: 2, records: 2, unsupported: 0, errors: 0, warnings: 0 },
  // 26 eye-care IG Observations (3 refractions of 3 components each: 23 + 9 records); 17 vital signs and labs not mapped
  Observation: { resources: 43, records: 32, unsupported: 17, errors: 0, warnings: 0 },
  Coverage: { resources: 4, records: 4, unsupported: 0, errors: 0, warnings: 0 },
  ChargeItem: { resources: 1, records: 1, unsupported: 0, errors: 0, warnings: 0 },
  Claim: { resources: 14, records: 11, unsupported: 0, errors: 3, warnings: 0 }, // 3: the patient only contained, without an identifier
  Invoice: { resources: 1, records: 1, unsupported: 0, errors: 0, warnings: 0 },
  // not mapped
  Account: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  AllergyIntolerance: { resources: 11, records: 0, unsupported: 11, errors: 0, warnings: 0 },
  AppointmentResponse: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  BodyStructure: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  Bundle: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  CapabilityStatement: { resources: 4, records: 0, unsupported: 4, errors: 0, warnings: 0 },
  ClaimResponse: { resources: 5, records: 0, unsupported: 5, errors: 0, warnings: 0 },
  Condition: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  CoverageEligibilityRequest: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  CoverageEligibilityResponse: { resources: 4, records: 0, unsupported: 4, errors: 0, warnings: 0 },
  Device: { resources: 18, records: 0, unsupported: 18, errors: 0, warnings: 0 },
  DeviceRequest: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  DiagnosticReport: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  Encounter: { resources: 4, records: 0, unsupported: 4, errors: 0, warnings: 0 },
  ExplanationOfBenefit: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  Medication: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  MedicationRequest: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  OperationOutcome: { resources: 6, records: 0, unsupported: 6, errors: 0, warnings: 0 },
  Parameters: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  PaymentNotice: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  Procedure: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
  ServiceRequest: { resources: 2, records: 0, unsupported: 2, errors: 0, warnings: 0 },
  // the corpus's package.json (an IG package manifest, no resourceType)
  unknown: { resources: 1, records: 0, unsupported: 1, errors: 0, warnings: 0 },
};

describe.skipIf(!corpus.present)('FHIR corpus → canonical records', () => {
  let all: Array<CorpusResource & { result: MapResult }>;
  const bySource = (sourceId: string): DraftRecord[] => all.flatMap((x) => x.result.records).filter((r) => r.source.sourceId === sourceId);
  const one = (sourceId: string) => {
    const found = bySource(sourceId);
    expect(found).toHaveLength(1);
    return found[0];
  };

  beforeAll(() => {
    all = fhirCorpusResources().map((x) => ({ ...x, result: mapFhirResource(x.resource, ctx, rowHash(x.resource)) }));
  });

  it('maps each resource type to its pinned number of records, unsupported and errors', () => {
    const tally: Record<string, Tally> = {};
    for (const { resource, result } of all) {
      const type = typeof resource.resourceType === 'string' ? resource.resourceType : 'unknown';
      tally[type] ??= { resources: 0, records: 0, unsupported: 0, errors: 0, warnings: 0 };
      const t = tally[type];
      t.resources++;
      t.records += result.issues.some((i) => i.severity === 'error') ? 0 : result.records.length;
      if (result.unsupported) t.unsupported++;
      if (result.issues.some((i) => i.severity === 'error')) t.errors++;
      t.warnings += result.issues.filter((i) => i.severity === 'warning').length;
    }
    expect(tally).toEqual(PINNED);
    expect(all).toHaveLength(404);
  });

  it('names an unmapped resource by its type, with no records and no issues', () => {
    const bp = all.find((x) => x.where === 'fhir-r4-examples/Observation-blood-pressure.json')!;
    expect(bp.result).toEqual({ unsupported: 'Observation', records: [], issues: [] });
    const device = all.find((x) => x.where === 'fhir-r4-examples/Device-example.json')!;
    expect(device.result).toEqual({ unsupported: 'Device', records: [], issues: [] });
  });

  it('gives every record a canonical shape the schema accepts, and a unique deterministic id', () => {
    const validator = createRecordValidator();
    const records = all.flatMap((x) => x.result.records);
    expect(records).toHaveLength(310);
    const problems = records.flatMap((r) =>
      validator.validate(toCanonical(r, identity, '2026-03-01T12:00:00Z')).map((p) => `${r.source.sourceId} ${p.path} ${p.problem}`),
    );
    expect(problems).toEqual([]);
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    const again = fhirCorpusResources().flatMap((x) => mapFhirResource(x.resource, ctx, rowHash(x.resource)).records.map((r) => r.id));
    expect(again).toEqual(records.map((r) => r.id));
  });

  it('keeps identifying values out of issue messages', () => {
    for (const { resource, result } of all) {
      const values = [resource.id, ...(Array.isArray(resource.identifier) ? resource.identifier.map((i) => i?.value) : [])].filter(
        (v): v is string => typeof v === 'string' && v.length > 2,
      );
      for (const issue of result.issues) for (const v of values) expect(issue.message).not.toContain(v);
    }
  });

  it('VisionPrescription 33124: a contact-lens Rx with power as sphere, back curve, diameter, brand, colour and replacement', () => {
    const rx = one('VisionPrescription/33124');
    expect(rx.type).toBe('contact-lens-rx');
    expect(rx.occurredAt).toBe('2014-06-15T00:00:00Z');
    expect(rx.partitionKey).toBe('patient:FHIR/Patient|example');
    const eye = (cylinder: number) => ({
      sphere: -2.75,
      cylinder,
      axis: 160,
      add: 1.75,
      baseCurve: 8.7,
      diameter: 14,
      brand: 'OphthaGuard',
      color: 'green',
      replacement: { value: 1, unit: 'month' },
    });
    expect(rx.data).toEqual({
      patient: { system: 'FHIR/Patient', value: 'example' },
      issuedAt: '2014-06-15',
      cylinderConvention: 'minus',
      right: eye(-2.25),
      left: eye(-3.5),
      prescriber: { system: 'FHIR/Practitioner', value: 'example' },
      status: 'active',
    });
    expect(one('VisionPrescription/33123').data).toMatchObject({
      right: { sphere: -2, add: 2, prisms: [{ amount: 0.5, base: 'down' }] },
      left: { sphere: -1, cylinder: -0.5, axis: 180, add: 2, prisms: [{ amount: 0.5, base: 'up' }] },
    });
    expect(one('VisionPrescription/33123').type).toBe('spectacle-rx');
  });

  it('eye-care IG visual acuity: the value, its unit, the eye from the BodyStructure reference, the SNOMED code', () => {
    const va = one('Observation/va-snellen-distance-re-0');
    expect(va.type).toBe('eye-exam-observation');
    expect(va.occurredAt).toBe('2013-06-27T17:04:20+04:00');
    expect(va.data).toEqual({
      patient: { system: 'FHIR/Patient', value: 'ophthal-patient-example-0' },
      code: { system: 'http://snomed.info/sct', code: '251739003', display: 'Distance visual acuity' },
      eye: 'right',
      value: 0.544,
      unit: 'logmar',
      observedAt: '2013-06-27T17:04:20+04:00',
      status: 'final',
      method: { system: 'http://snomed.info/sct', code: '400913005', display: 'Snellen chart' },
    });
    expect(one('Observation/va-snellen-corrected-le-0').data).toMatchObject({ eye: 'left', value: 0.18 });
    // the later IG: laterality as an extension (SNOMED 419161000 unilateral left)
    expect(one('Observation/observation-bcva-0').data).toMatchObject({ eye: 'left', value: 0.1, code: { code: '419775003' } });
    expect(one('Observation/01e0df2d-f6fa-4761-8fb7-c22f730ade55').data).toMatchObject({ eye: 'right', value: 25.4, unit: 'mm[Hg]' });
    // a visual-field ratio as text
    expect(one('Observation/vf-false-positives-re-0').data).toMatchObject({ eye: 'right', value: '2/100' });
  });

  it('a refraction is one record per component, named Observation/<id>#<code>', () => {
    const parts = bySource('Observation/observation-refraction-re-0#251795007')
      .concat(bySource('Observation/observation-refraction-re-0#251797004'))
      .concat(bySource('Observation/observation-refraction-re-0#251799001'));
    expect(parts.map((r) => [r.data.eye, (r.data.code as { display: string }).display, r.data.value, r.data.unit])).toEqual([
      ['right', 'Power of sphere', -2.5, 'diopter'],
      ['right', 'Power of cylinder', -2.5, 'diopter'],
      ['right', 'Axis of cylinder', 60, 'degree'],
    ]);
    expect(bySource('Observation/observation-refraction-re-0')).toEqual([]);
  });

  it('Coverage: payer, member id, group, plan, priority, relationship and period', () => {
    expect(one('Coverage/7546D').data).toEqual({
      patient: { system: 'FHIR/Patient', value: '5' },
      payer: { name: '2', organization: { system: 'FHIR/Organization', value: '2' } },
      planName: 'Full Coverage: Medical, Dental, Pharmacy, Vision, EHC',
      memberId: 'AB9876',
      groupNumber: 'WESTAIR',
      subscriberRelationship: 'self',
      priority: 2,
      start: '2011-03-17',
      end: '2012-03-17',
      status: 'active',
      coverageType: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EHCPOL', display: 'extended healthcare' },
    });
    expect(one('Coverage/7547E').data).toMatchObject({
      payer: { id: '123456789', name: '123456789', organization: { system: 'http://ehic.com/insurer', value: '123456789' } },
      memberId: 'A123456780',
    });
    expect(one('Coverage/SP1234').data).toMatchObject({ payer: { name: 'self-pay' }, selfPay: true });
  });

  it('Practitioner and PractitionerRole: providers with the NPI, and the role with its practitioner, organization and locations', () => {
    const p = one('Practitioner/0965e26a-8bc3-395f-b7b0-4620fb6e778c');
    expect(p.type).toBe('provider');
    expect(p.data.identifiers).toEqual([
      { system: 'FHIR/Practitioner', value: '0965e26a-8bc3-395f-b7b0-4620fb6e778c', type: 'FHIR' },
      { system: 'http://hl7.org/fhir/sid/us-npi', value: '9999908392', type: 'NPI' },
    ]);
    expect(p.partitionKey).toBe('FHIR:Practitioner/0965e26a-8bc3-395f-b7b0-4620fb6e778c');
    expect(one('PractitionerRole/example').data).toEqual({
      identifiers: [
        { system: 'FHIR/PractitionerRole', value: 'example', type: 'FHIR' },
        { system: 'http://www.acme.org/practitioners', value: '23' },
      ],
      role: 'RP',
      roleCodes: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0286', code: 'RP' }],
      specialties: [{ system: 'http://snomed.info/sct', code: '408443003', display: 'General medical practice' }],
      practitioner: { system: 'FHIR/Practitioner', value: 'example', display: 'Dr Adam Careful' },
      organization: { system: 'FHIR/Organization', value: 'f001' },
      locations: [{ system: 'FHIR/Location', value: '1', display: 'South Wing, second floor' }],
      active: true,
      phones: [{ use: 'work', value: '(03) 5555 6473' }],
      emails: ['adam.southern@example.org'],
    });
    // Synthea references the practitioner logically, by NPI
    expect(one('PractitionerRole/01a97323-3c5e-0b03-7dcf-b0e9c1d87759').data.practitioner).toEqual({
      system: 'http://hl7.org/fhir/sid/us-npi',
      value: '9999999698',
      display: 'Dr. Bobbye345 Wuckert783',
    });
  });

  it('Organization and Location', () => {
    expect(one('Organization/2').data).toEqual({
      identifiers: [
        { system: 'FHIR/Organization', value: '2', type: 'FHIR' },
        { system: 'urn:oid:2.16.840.1.113883.3.19.2.3', value: '666666' },
      ],
      name: 'XYZ Insurance',
      aliases: ['ABC Insurance'],
    });
    expect(one('Location/1').data).toMatchObject({
      name: 'South Wing, second floor',
      status: 'active',
      mode: 'instance',
      physicalType: { code: 'wi', display: 'Wing' },
      phones: [{ use: 'work', value: '2328' }],
      address: { use: 'work', lines: ['Galapagosweg 91, Building A'], city: 'Den Burg', postalCode: '9105 PZ', country: 'NLD' },
      managingOrganization: { system: 'FHIR/Organization', value: 'f001' },
    });
  });

  it('Schedule and Slot: the schedule names who and where, the slot its schedule, status and interval', () => {
    expect(one('Schedule/exampleloc1').data).toMatchObject({
      active: true,
      serviceTypes: [{ code: '75', display: 'Genetic Counselling' }],
      providers: [{ system: 'FHIR/Practitioner', value: '1', display: 'Dr. Beverly Crusher' }],
      locations: [{ system: 'FHIR/Location', value: '3', display: 'USS Enterprise-D Sickbay' }],
      planningStart: '2017-12-25T09:15:00Z',
      planningEnd: '2017-12-25T09:30:00Z',
    });
    const slot = one('Slot/3');
    expect(slot.type).toBe('slot');
    expect(slot.occurredAt).toBe('2013-12-25T09:30:00Z');
    expect(slot.data).toEqual({
      schedule: { system: 'FHIR/Schedule', value: 'example' },
      status: 'busy-unavailable',
      start: '2013-12-25T09:30:00Z',
      end: '2013-12-25T09:45:00Z',
      serviceCategories: [{ code: '17', display: 'General Practice' }],
    });
  });

  it('ChargeItem, Claim and Invoice', () => {
    expect(one('ChargeItem/example').data).toEqual({
      patient: { system: 'FHIR/Patient', value: 'example' },
      code: { code: '01510', display: 'Zusatzpauschale für Beobachtung nach diagnostischer Koronarangiografie' },
      status: 'billable',
      amount: 40,
      currency: 'EUR',
      quantity: 1,
      serviceDate: '2017-01-25',
      provider: { system: 'FHIR/Practitioner', value: 'example' },
      enteredAt: '2017-01-25T23:55:04+01:00',
    });
    const claim = one('Claim/960150');
    expect(claim.occurredAt).toBe('2014-08-16T00:00:00Z');
    expect(claim.data).toMatchObject({
      status: 'active',
      use: 'claim',
      claimType: { code: 'institutional' },
      createdAt: '2014-08-16',
      total: 125,
      currency: 'USD',
      insurer: { system: 'FHIR/Organization', value: '2' },
      provider: { system: 'FHIR/Organization', value: '1' },
      coverage: { system: 'FHIR/Coverage', value: '9876B1' },
      itemCount: 1,
    });
    expect(one('Invoice/example').data).toMatchObject({
      patient: { system: 'FHIR/Patient', value: 'example' },
      status: 'issued',
      issuedAt: '2017-01-25T08:00:00+01:00',
      totalNet: 40,
      totalGross: 48,
      currency: 'EUR',
    });
  });

  it('keeps the Patient output file imports had: identifiers with the FHIR id first, name, sex, addresses, phones', () => {
    const p = one('Patient/f001');
    expect(p.partitionKey).toBe('patient:FHIR/Patient|f001');
    expect(p.data).toEqual({
      // the second identifier has no value: left out
      identifiers: [
        { system: 'FHIR/Patient', value: 'f001', type: 'FHIR' },
        { system: 'urn:oid:2.16.840.1.113883.2.4.6.3', value: '738472983' },
      ],
      name: { family: 'van de Heuvel', given: ['Pieter'], suffix: 'MSc' },
      birthDate: '1944-11-17',
      sex: 'male',
      addresses: [{ use: 'home', lines: ['Van Egmondkade 23'], city: 'Amsterdam', postalCode: '1024 RJ', country: 'NLD' }],
      phones: [{ use: 'mobile', value: '0648352638' }],
      emails: ['p.heuvel@gmail.com'],
      deceased: false,
    });
  });
});
