/**
 * The FHIR mapping's entry points on resources written here: deletes, entered-in-error, the
 * types each resource maps to, odd input (primitive extensions, contained resources, wrong shapes:
 * an error issue, never a throw), laterality and values of eye-exam Observations, and PHI-free
 * messages.
 */
import { describe, expect, it } from 'vitest';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import type { MapResult } from '../../../adapters/contracts.ts';
import {
  canonicalTypesOf,
  FHIR_RESOURCES,
  fhirDeleteRecords,
  mapFhirResource,
  type FhirMapContext,
} from '../../../adapters/fhir/map-fhir.ts';
import { toCanonical } from '../../../gateway/pipeline/map.ts';

const ctx: FhirMapContext = { system: 'EHR', adapter: 'fhir', now: () => Date.parse('2026-03-01T12:00:00Z') };
const validator = createRecordValidator();
const identity = { tenantId: 't1', practiceId: 'p1', gatewayId: 'g1' };
const map = (res: Record<string, unknown>, c: FhirMapContext = ctx) => mapFhirResource(res, c, 'hash-1');
const problemsOf = (r: MapResult) =>
  r.records.flatMap((d) =>
    validator.validate(toCanonical(d, identity, '2026-03-01T12:00:00Z')).map((p) => `${d.type} ${p.path} ${p.problem}`),
  );
const errors = (r: MapResult) => r.issues.filter((i) => i.severity === 'error').map((i) => i.message);

const SNOMED = 'http://snomed.info/sct';
const observation = (over: Record<string, unknown>) => ({
  resourceType: 'Observation',
  id: 'o1',
  status: 'final',
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2026-02-10T09:30:00+01:00',
  code: { coding: [{ system: SNOMED, code: '251739003', display: 'Distance visual acuity' }] },
  ...over,
});
const rx = (over: Record<string, unknown> = {}) => ({
  resourceType: 'VisionPrescription',
  id: 'rx1',
  status: 'active',
  dateWritten: '2026-01-31',
  patient: { reference: 'Patient/p1' },
  prescriber: { reference: 'PractitionerRole/pr1' },
  lensSpecification: [
    { product: { coding: [{ code: 'lens' }] }, eye: 'right', sphere: -1.25, cylinder: -0.5, axis: 90 },
    { product: { coding: [{ code: 'lens' }] }, eye: 'left', sphere: -1, prism: [{ amount: 1, base: 'in' }] },
  ],
  ...over,
});

describe('FHIR resource types and canonical types', () => {
  it('lists every mapped resource type, each with the canonical types it maps to', () => {
    expect(Object.fromEntries(FHIR_RESOURCES.map((t) => [t, canonicalTypesOf(t)]))).toEqual({
      Patient: ['patient'],
      Practitioner: ['provider'],
      PractitionerRole: ['provider'],
      Organization: ['organization'],
      Location: ['location'],
      Appointment: ['appointment'],
      Schedule: ['schedule'],
      Slot: ['slot'],
      VisionPrescription: ['spectacle-rx', 'contact-lens-rx'],
      Observation: ['eye-exam-observation'],
      Coverage: ['coverage'],
      ChargeItem: ['charge'],
      Claim: ['claim'],
      Invoice: ['invoice'],
      DocumentReference: ['clinical-document'],
    });
    expect(canonicalTypesOf('Encounter')).toEqual([]);
    expect(canonicalTypesOf('constructor')).toEqual([]);
  });

  it('answers an unmapped type as unsupported by name, never as silence', () => {
    expect(map({ resourceType: 'Encounter', id: 'e1' })).toEqual({ unsupported: 'Encounter', records: [], issues: [] });
    expect(map({ id: 'x' })).toEqual({ unsupported: 'unknown', records: [], issues: [] });
    expect(map({ resourceType: 'toString', id: 'x' })).toEqual({ unsupported: 'toString', records: [], issues: [] });
    const bp = observation({ code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] }, valueQuantity: { value: 120 } });
    expect(map(bp)).toEqual({ unsupported: 'Observation', records: [], issues: [] });
  });
});

describe('fhirDeleteRecords', () => {
  it('names the deleted record by type, source system and <Type>/<id>, with empty data, at the deletion time', () => {
    const r = fhirDeleteRecords('Patient', 'p1', ctx, '2026-03-01T10:00:00Z');
    expect(r.issues).toEqual([]);
    expect(r.records).toEqual([
      {
        id: r.records[0].id,
        type: 'patient',
        op: 'delete',
        source: { system: 'EHR', adapter: 'fhir', sourceId: 'Patient/p1' },
        occurredAt: '2026-03-01T10:00:00Z',
        partitionKey: 'EHR:Patient/p1',
        data: {},
      },
    ]);
    expect(r.records[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(problemsOf(r)).toEqual([]);
  });

  it('gives the same ids for the same deletion and new ids for a later one', () => {
    const a = fhirDeleteRecords('Coverage', 'c1', ctx, '2026-03-01T10:00:00Z');
    expect(fhirDeleteRecords('Coverage', 'c1', ctx, '2026-03-01T10:00:00Z').records.map((x) => x.id)).toEqual(a.records.map((x) => x.id));
    expect(fhirDeleteRecords('Coverage', 'c1', ctx, '2026-03-02T10:00:00Z').records[0].id).not.toBe(a.records[0].id);
    expect(fhirDeleteRecords('Coverage', 'c2', ctx, '2026-03-01T10:00:00Z').records[0].id).not.toBe(a.records[0].id);
  });

  it('retracts both Rx types of a VisionPrescription, which one it was being unknown without it', () => {
    const r = fhirDeleteRecords('VisionPrescription', 'rx1', ctx, '2026-03-01T10:00:00Z');
    expect(r.records.map((x) => [x.type, x.source.sourceId])).toEqual([
      ['spectacle-rx', 'VisionPrescription/rx1'],
      ['contact-lens-rx', 'VisionPrescription/rx1'],
    ]);
    expect(new Set(r.records.map((x) => x.id)).size).toBe(2);
  });

  it("retracts an Observation's own record and each component record it could have made", () => {
    const r = fhirDeleteRecords('Observation', 'o1', ctx, '2026-03-01T10:00:00Z');
    expect(r.records).toHaveLength(14);
    expect(r.records.map((x) => x.source.sourceId).slice(0, 4)).toEqual([
      'Observation/o1',
      'Observation/o1#251795007',
      'Observation/o1#251797004',
      'Observation/o1#251799001',
    ]);
    const refraction = map(
      observation({
        code: { coding: [{ system: SNOMED, code: '251794006' }] },
        bodySite: { coding: [{ system: SNOMED, code: '362503005' }] },
        component: [{ code: { coding: [{ system: SNOMED, code: '251795007' }] }, valueQuantity: { value: -2 } }],
      }),
    );
    const deleted = new Set(r.records.map((x) => x.source.sourceId));
    expect(refraction.records.map((x) => deleted.has(x.source.sourceId))).toEqual([true]);
  });

  it("puts the deletes in the patient's partition when the caller knows the patient", () => {
    const r = fhirDeleteRecords('Observation', 'o1', ctx, '2026-03-01T10:00:00Z', { patient: { system: 'EHR/Patient', value: 'p1' } });
    expect(new Set(r.records.map((x) => x.partitionKey))).toEqual(new Set(['patient:EHR/Patient|p1']));
  });

  it('answers an unmapped type as unsupported, and a missing id or a bad instant as an error', () => {
    expect(fhirDeleteRecords('Encounter', 'e1', ctx, '2026-03-01T10:00:00Z')).toEqual({
      unsupported: 'Encounter',
      records: [],
      issues: [],
    });
    expect(errors(fhirDeleteRecords('Patient', '', ctx, '2026-03-01T10:00:00Z'))).toEqual(['Patient delete has no id']);
    expect(errors(fhirDeleteRecords('Patient', 'p1', ctx, 'yesterday'))).toEqual([
      'Patient delete has no instant (an ISO date-time with its offset)',
    ]);
    expect(errors(fhirDeleteRecords('Patient', 'p1', ctx, '2026-03-01'))).toHaveLength(1);
  });

  it('treats a resource entered in error as deleted (its version decides the id, meta.lastUpdated the time)', () => {
    const r = map(rx({ status: 'entered-in-error', meta: { lastUpdated: '2026-02-01T08:00:00Z' } }));
    expect(r.records.map((x) => [x.op, x.type, x.source.sourceId, x.occurredAt])).toEqual([
      ['delete', 'spectacle-rx', 'VisionPrescription/rx1', '2026-02-01T08:00:00Z'],
      ['delete', 'contact-lens-rx', 'VisionPrescription/rx1', '2026-02-01T08:00:00Z'],
    ]);
    const obs = map(observation({ status: 'entered-in-error', valueQuantity: { value: 0.1 } }));
    expect(obs.records.every((x) => x.op === 'delete' && x.occurredAt === '2026-03-01T12:00:00.000Z')).toBe(true);
    // an Appointment keeps its mapping: cancelled
    const appt = map({
      resourceType: 'Appointment',
      id: 'a1',
      status: 'entered-in-error',
      start: '2026-03-02T09:00:00Z',
      participant: [{ actor: { reference: 'Patient/p1' } }],
    });
    expect(appt.records.map((x) => [x.op, x.data.status])).toEqual([['upsert', 'cancelled']]);
  });
});

describe('odd input', () => {
  it('never throws: wrong shapes in every element of every mapped type give records that validate, or error issues', () => {
    const base: Record<string, Record<string, unknown>> = {
      Patient: { name: [{ family: 'Sample', given: ['Ann'] }], birthDate: '1970-01-01', gender: 'female', telecom: [], address: [] },
      Practitioner: { identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }], name: [{ family: 'Sample' }] },
      PractitionerRole: { practitioner: { reference: 'Practitioner/d1' }, code: [{ text: 'optometrist' }], location: [] },
      Organization: { name: 'Clinic', type: [], telecom: [], address: [] },
      Location: { name: 'Room 1', status: 'active', address: {}, managingOrganization: { reference: 'Organization/o1' } },
      Appointment: { status: 'booked', start: '2026-03-02T09:00:00Z', participant: [{ actor: { reference: 'Patient/p1' } }] },
      Schedule: { actor: [{ reference: 'Practitioner/d1' }], planningHorizon: { start: '2026-03-02T09:00:00Z' } },
      Slot: { schedule: { reference: 'Schedule/s1' }, status: 'free', start: '2026-03-02T09:00:00Z', end: '2026-03-02T09:15:00Z' },
      VisionPrescription: rx(),
      Observation: observation({ bodySite: { coding: [{ system: SNOMED, code: '362502000' }] }, valueString: '20/40' }),
      Coverage: { status: 'active', beneficiary: { reference: 'Patient/p1' }, payor: [{ display: 'Vision Plan' }] },
      ChargeItem: { status: 'billable', subject: { reference: 'Patient/p1' }, code: { text: 'eye exam' } },
      Claim: { status: 'active', patient: { reference: 'Patient/p1' }, item: [] },
      Invoice: { status: 'issued', subject: { reference: 'Patient/p1' } },
      DocumentReference: {
        status: 'current',
        subject: { reference: 'Patient/p1' },
        type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
        content: [{ attachment: { contentType: 'application/xml', data: 'PGEvPg==' } }],
      },
    };
    const odd: unknown[] = [null, 42, -1, 1e6, 'x', '', true, [], {}, [null], [42], [{}], { coding: 'x' }, { reference: 42 }, { _x: 1 }];
    // every path of the resource (nested elements and array items too), each replaced by each odd value
    const paths = (v: unknown, at: Array<string | number> = []): Array<Array<string | number>> =>
      v !== null && typeof v === 'object'
        ? Object.entries(v).flatMap(([k, x]) => {
            const here = [...at, Array.isArray(v) ? Number(k) : k];
            return [here, ...paths(x, here)];
          })
        : [];
    const replaced = (res: unknown, path: Array<string | number>, value: unknown): Record<string, unknown> => {
      const copy = structuredClone(res) as Record<string, unknown>;
      let o = copy as Record<string | number, unknown>;
      for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
      o[path[path.length - 1]] = value;
      return copy;
    };
    let calls = 0;
    const bad: string[] = [];
    for (const type of FHIR_RESOURCES) {
      const res = { resourceType: type, id: 'r1', ...base[type] };
      const good = map(res);
      expect(errors(good), type).toEqual([]);
      expect(problemsOf(good), type).toEqual([]);
      for (const path of paths(res).filter((p) => p[0] !== 'resourceType')) {
        for (const v of odd) {
          calls++;
          const r = map(replaced(res, path, v));
          if (errors(r).length > 0) expect(r.records, `${type}.${path.join('.')}`).toEqual([]);
          else bad.push(...problemsOf(r).map((p) => `${type}.${path.join('.')} = ${JSON.stringify(v)}: ${p}`));
        }
      }
    }
    expect(bad).toEqual([]);
    expect(calls).toBe(2040);
  });

  it('reads an element that only has its primitive extension as absent, and keeps unknown elements out', () => {
    const r = map({
      resourceType: 'Patient',
      id: 'p1',
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
      name: [{ family: 'Sample', given: [null, 'Ann'], _given: [{ extension: [] }, null] }],
      telecom: [null, { system: 'phone', value: '555-0100' }],
      somethingNew: { a: 1 },
    });
    expect(r.issues).toEqual([]);
    expect(r.records[0].data).toEqual({
      identifiers: [{ system: 'EHR/Patient', value: 'p1', type: 'FHIR' }],
      name: { family: 'Sample', given: ['Ann'] },
      phones: [{ value: '555-0100' }],
    });
  });

  it('answers what is not a JSON object, or a mapper meeting input it cannot read, with an error naming no value', () => {
    expect(errors(mapFhirResource(null as unknown as Record<string, unknown>, ctx, 'h'))).toEqual([
      'not a FHIR resource (not a JSON object)',
    ]);
    expect(errors(mapFhirResource([] as unknown as Record<string, unknown>, ctx, 'h'))).toHaveLength(1);
    const trap = { resourceType: 'Patient', id: 'p1' };
    Object.defineProperty(trap, 'name', {
      enumerable: true,
      get() {
        throw new TypeError('cannot read Zebulon');
      },
    });
    expect(errors(map(trap))).toEqual(['Patient could not be mapped (TypeError)']);
  });

  it('reads contained resources: a payor Organization, a Patient with an identifier, a Slot’s Schedule, a BodyStructure', () => {
    const cov = map({
      resourceType: 'Coverage',
      id: 'c1',
      beneficiary: { reference: 'Patient/p1' },
      contained: [{ resourceType: 'Organization', id: 'ins', name: 'Vision Plan', identifier: [{ value: 'VP1' }] }],
      payor: [{ reference: '#ins' }],
    });
    expect(cov.records[0].data.payer).toEqual({ id: 'VP1', name: 'Vision Plan' });
    const claim = map({
      resourceType: 'Claim',
      id: 'cl1',
      status: 'active',
      contained: [{ resourceType: 'Patient', id: 'pt', identifier: [{ system: 'urn:mrn', value: 'M1' }] }],
      patient: { reference: '#pt' },
    });
    expect(claim.records[0].data.patient).toEqual({ system: 'urn:mrn', value: 'M1' });
    expect(claim.records[0].partitionKey).toBe('patient:urn:mrn|M1');
    const slot = map({
      resourceType: 'Slot',
      id: 's1',
      status: 'busy',
      start: '2026-03-02T09:00:00Z',
      end: '2026-03-02T09:15:00Z',
      contained: [
        {
          resourceType: 'Schedule',
          id: 'sch',
          identifier: [{ system: 'urn:schedules', value: 'S9' }],
          actor: [{ reference: 'Practitioner/d1' }, { reference: 'Location/l1' }],
        },
      ],
      schedule: { reference: '#sch' },
    });
    expect(slot.records[0].data).toMatchObject({
      schedule: { system: 'urn:schedules', value: 'S9' },
      provider: { system: 'EHR/Practitioner', value: 'd1' },
      location: { system: 'EHR/Location', value: 'l1' },
    });
    expect(problemsOf(slot)).toEqual([]);
    const va = map(
      observation({
        contained: [
          {
            resourceType: 'BodyStructure',
            id: 'bs',
            location: { coding: [{ system: SNOMED, code: '244486005' }] },
            locationQualifier: [{ coding: [{ system: SNOMED, code: '7771000' }] }],
          },
        ],
        bodySite: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/bodySite', valueReference: { reference: '#bs' } }] },
        valueQuantity: { value: 0.2, unit: 'logmar' },
      }),
    );
    expect(va.records[0].data.eye).toBe('left');
  });

  it('names the missing element, never a value, when a resource cannot be mapped', () => {
    expect(errors(map({ resourceType: 'Patient' }))).toEqual(['Patient has neither id nor identifier']);
    expect(errors(map({ resourceType: 'Coverage', id: 'c1', beneficiary: { reference: 'Patient/p1' } }))).toEqual([
      'Coverage has no payor',
    ]);
    expect(errors(map({ resourceType: 'Slot', id: 's1', schedule: { reference: 'Schedule/x' }, status: 'open' }))).toEqual([
      'Slot status is missing or not an R4 slot status',
    ]);
    expect(errors(map(rx({ lensSpecification: [{ eye: 'right', sphere: -1 }] })))).toEqual([
      'VisionPrescription needs a sphere (or contact lens power) for each eye',
    ]);
    expect(errors(map(observation({ valueQuantity: { value: 0.3 } })))).toEqual([
      'Observation has no laterality (laterality extension, bodySite or an eye-specific code)',
    ]);
    expect(errors(map(observation({ bodySite: { text: 'right eye' }, dataAbsentReason: { text: 'not done' } })))).toEqual([
      'Observation has no value (value[x] or a component value)',
    ]);
  });

  it('keeps names, ids and values out of every issue message', () => {
    const secret = 'Zebulon-8812';
    const results = [
      map({ resourceType: 'Patient', name: [{ family: secret }] }),
      map(
        rx({
          id: secret,
          lensSpecification: [
            { eye: 'right', sphere: -1.13, cylinder: -0.5 },
            { eye: 'left', sphere: 1 },
          ],
        }),
      ),
      map(observation({ id: secret, valueString: secret })),
      map({ resourceType: 'Coverage', id: secret, beneficiary: { display: secret } }),
      map({ resourceType: 'Claim', id: secret, patient: { reference: `Patient/${secret}` } }),
    ];
    const messages = results.flatMap((r) => r.issues.map((i) => i.message));
    expect(messages).toHaveLength(6);
    for (const m of messages) expect(m).not.toContain('Zebulon');
  });
});

describe('VisionPrescription', () => {
  it('normalises a spectacle Rx and references a PractitionerRole prescriber', () => {
    const r = map(rx());
    expect(r.records[0].type).toBe('spectacle-rx');
    expect(r.records[0].data).toEqual({
      patient: { system: 'EHR/Patient', value: 'p1' },
      issuedAt: '2026-01-31',
      cylinderConvention: 'minus',
      right: { sphere: -1.25, cylinder: -0.5, axis: 90 },
      left: { sphere: -1, prisms: [{ amount: 1, base: 'in' }] },
      prescriber: { system: 'EHR/PractitionerRole', value: 'pr1' },
      status: 'active',
    });
  });

  it('takes sphere over power, and a plus cylinder into minus form, with a warning when rounding', () => {
    const r = map(
      rx({
        lensSpecification: [
          { product: { coding: [{ code: 'contact' }] }, eye: 'right', sphere: -1, power: -3, cylinder: 0.5, axis: 180 },
          { product: { coding: [{ code: 'contact' }] }, eye: 'left', power: -1.1, backCurve: 8.6, diameter: 14.2 },
        ],
      }),
    );
    expect(r.records[0].type).toBe('contact-lens-rx');
    expect(r.records[0].data.right).toEqual({ sphere: -0.5, cylinder: -0.5, axis: 90 });
    expect(r.records[0].data.left).toEqual({ sphere: -1, baseCurve: 8.6, diameter: 14.2 });
    expect(r.issues).toEqual([{ severity: 'warning', code: 'GW_MAP_FAILED', message: 'left.sphere not a multiple of 0.25 D; rounded' }]);
  });

  it('states expiresAt from an expiry extension, else from dateWritten and the configured validity, else not at all', () => {
    const ext = { extension: [{ url: 'http://example.org/fhir/StructureDefinition/rx-expiration-date', valueDate: '2027-01-31' }] };
    expect(map(rx(ext)).records[0].data.expiresAt).toBe('2027-01-31');
    const withValidity = { ...ctx, rxValidityMonths: { spectacle: 13, contactLens: 12 } };
    expect(map(rx(), withValidity).records[0].data.expiresAt).toBe('2027-02-28');
    expect(map(rx(ext), withValidity).records[0].data.expiresAt).toBe('2027-01-31');
    expect(map(rx()).records[0].data.expiresAt).toBeUndefined();
  });
});

describe('eye-exam Observation', () => {
  const one = (over: Record<string, unknown>) => {
    const r = map(observation(over));
    expect(errors(r)).toEqual([]);
    expect(problemsOf(r)).toEqual([]);
    return r.records.map((x): Record<string, unknown> => ({ ...x.data, sourceId: x.source.sourceId }));
  };

  it('keeps a Snellen fraction as text and a comparator with its number', () => {
    expect(one({ bodySite: { coding: [{ system: SNOMED, code: '362503005' }] }, valueString: '20/40' })).toMatchObject([
      { eye: 'right', value: '20/40' },
    ]);
    expect(one({ bodySite: { text: 'OS' }, valueQuantity: { value: 5, comparator: '<', unit: 'mm[Hg]' } })).toMatchObject([
      { eye: 'left', value: '<5', unit: 'mm[Hg]' },
    ]);
    expect(one({ bodySite: { text: 'both eyes' }, valueRatio: { numerator: { value: 20 }, denominator: { value: 25 } } })).toMatchObject([
      { eye: 'both', value: '20/25' },
    ]);
  });

  it('takes the eye from a LOINC per-eye code, and maps a panel to one record per eye component', () => {
    expect(
      one({ code: { coding: [{ system: 'http://loinc.org', code: '79892-6' }] }, valueQuantity: { value: 17, unit: 'mm[Hg]' } }),
    ).toMatchObject([{ eye: 'right', code: { system: 'http://loinc.org', code: '79892-6' }, value: 17 }]);
    const panel = one({
      code: { coding: [{ system: 'http://loinc.org', code: '98497-1', display: 'Visual acuity panel' }] },
      component: [
        { code: { coding: [{ system: 'http://loinc.org', code: '98499-7' }] }, valueString: '20/20' },
        { code: { coding: [{ system: 'http://loinc.org', code: '98498-9' }] }, valueString: '20/30' },
      ],
    });
    expect(panel.map((x) => [x.sourceId, x.eye, x.value])).toEqual([
      ['Observation/o1#98499-7', 'right', '20/20'],
      ['Observation/o1#98498-9', 'left', '20/30'],
    ]);
  });

  it('maps an Observation of the IG profile with its own code system, and leaves an unknown component out with a warning', () => {
    const r = map(
      observation({
        meta: { profile: ['http://hl7.org/fhir/uv/ophthalmology/StructureDefinition/observation-visual-field'] },
        code: { coding: [{ system: 'http://example.org/vf', code: 'VFI' }] },
        extension: [
          {
            url: 'http://hl7.org/fhir/uv/ophthalmology/StructureDefinition/laterality',
            valueCodeableConcept: { coding: [{ system: SNOMED, code: '419465000' }] },
          },
        ],
        valueQuantity: { value: 97, unit: '%' },
        component: [{ code: { coding: [{ system: 'http://example.org/vf', code: 'X' }] }, valueInteger: 3 }],
      }),
    );
    expect(r.records.map((x) => [x.data.eye, x.data.value])).toEqual([['right', 97]]);
    expect(r.issues).toEqual([
      { severity: 'warning', code: 'GW_MAP_FAILED', message: 'Observation component 1: not an eye-exam component code; left out' },
    ]);
  });
});
