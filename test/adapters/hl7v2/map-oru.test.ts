import { describe, expect, it } from 'vitest';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createMapStage } from '../../../gateway/pipeline/map-stage.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';

const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
const stage = createMapStage({
  validator: createRecordValidator(),
  clock: createManualClock(),
  identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
});
const head = 'MSH|^~\\&|EXAM|CLINIC|EWML|GW|20261125093000-0500||ORU^R01^ORU_R01|ORU1|P|2.5.1\rPID|1||MRN001^^^CLINIC^MR||Synthetic^Pat';
function obx(n: number, code: string, value: string, eye: string, type = 'NM', unit = ''): string {
  const f: string[] = ['OBX'];
  f[1] = String(n);
  f[2] = type;
  f[3] = code;
  f[5] = value;
  f[6] = unit;
  f[11] = 'F';
  f[14] = '20261125090000-0500';
  f[20] = eye;
  return Array.from(f, (x) => x ?? '').join('|');
}

describe('ORU eye-exam mapping', () => {
  it('maps a refraction (SNOMED codes, laterality in OBX-20) to observations and a normalised spectacle Rx', () => {
    const msg = [
      head,
      'OBR|1|ORD1|RX1|REFR^Final spectacle Rx|||20261125090000-0500',
      obx(1, '251795007^Power of sphere^SCT', '-2.00', '24028007^Right^SCT', 'NM', 'D'),
      obx(2, '251797004^Power of cylinder^SCT', '+1.25', '24028007^Right^SCT'),
      obx(3, '251799001^Axis of cylinder^SCT', '90', '24028007^Right^SCT'),
      obx(4, '251795007^Power of sphere^SCT', '-1.75', '7771000^Left^SCT'),
      obx(5, 'ADD^Add', '2.00', 'OS', 'NM'),
      obx(6, 'ADD^Add', '2.00', 'OD', 'NM'),
      obx(7, 'PRISM^Prism', '1', 'OD'),
      obx(8, 'BASE^Prism base', 'BU', 'OD', 'ST'),
      obx(9, 'PD^PD', '63.5', 'OU'),
    ].join('\r');
    const r = stage.preview(codec, msg);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const obs = r.records.filter((x) => x.type === 'eye-exam-observation');
    expect(obs).toHaveLength(9);
    expect(obs[0].data).toMatchObject({
      code: { system: 'http://snomed.info/sct', code: '251795007' },
      eye: 'right',
      value: -2,
      unit: 'D',
      observedAt: '2026-11-25T09:00:00-05:00',
    });
    const rx = r.records.find((x) => x.type === 'spectacle-rx')!;
    // written plus-cylinder, stored minus-cylinder: -2.00 +1.25 x 90 → -0.75 -1.25 x 180
    expect(rx.data).toEqual({
      patient: { system: 'CLINIC', value: 'MRN001' },
      issuedAt: '2026-11-25',
      expiresAt: '2028-11-25',
      cylinderConvention: 'minus',
      right: { sphere: -0.75, cylinder: -1.25, axis: 180, add: 2, prisms: [{ amount: 1, base: 'up' }] },
      left: { sphere: -1.75, add: 2 },
      binocularPd: 63.5,
    });
  });

  it("takes the expiry the PMS sends (EXP), else the profile's validity", () => {
    const msg = [
      head,
      'OBR|1|ORD1|RX1|REFR|||20260131090000-0500',
      obx(1, 'SPH', '-1.00', 'OD'),
      obx(2, 'SPH', '-1.25', 'OS'),
      obx(3, 'EXP^Expires', '20270131', '', 'DT'),
    ].join('\r');
    expect(stage.preview(codec, msg).records.find((x) => x.type === 'spectacle-rx')!.data.expiresAt).toBe('2027-01-31');
    const noExp = msg.split('\r').slice(0, -1).join('\r');
    const site = createHl7Codec({
      profile: 'generic',
      timezone: 'UTC',
      overrides: { rxValidityMonths: { spectacle: 13, contactLens: 12 } },
    }) as SourceCodec<unknown>;
    expect(stage.preview(site, noExp).records.find((x) => x.type === 'spectacle-rx')!.data.expiresAt).toBe('2027-02-28');
  });

  it('reads laterality from OBX-4 or an OD/OS prefix, and leaves out rows with none (a warning)', () => {
    const msg = [
      head,
      'OBR|1|ORD1|IOP1|IOP^Tonometry|||20261125090000-0500',
      'OBX|1|NM|41633001^Intraocular pressure^SCT|OD|16|mm[Hg]|||||F',
      'OBX|2|NM|IOP^OS IOP||17|mm[Hg]|||||F',
      'OBX|3|NM|IOP^IOP||18|mm[Hg]|||||F',
    ].join('\r');
    const r = stage.preview(codec, msg);
    expect(r.records.map((x) => [x.data.eye, x.data.value])).toEqual([
      ['right', 16],
      ['left', 17],
    ]);
    expect(r.issues).toContainEqual(
      expect.objectContaining({ severity: 'warning', location: expect.objectContaining({ segment: 'OBX', sequence: 3 }) }),
    );
    expect(r.records.some((x) => x.type === 'spectacle-rx')).toBe(false);
  });

  it('makes a contact-lens Rx when the group carries base curve and diameter', () => {
    const msg = [
      head,
      'OBR|1|ORD1|CL1|CLRX^Contact lens Rx|||20261125090000-0500',
      obx(1, 'SPH', '-3.00', 'OD'),
      obx(2, 'BC', '8.6', 'OD'),
      obx(3, 'DIA', '14.2', 'OD'),
      obx(4, 'SPH', 'PL', 'OS'),
      obx(5, 'BC', '8.6', 'OS'),
      obx(6, 'DIA', '14.2', 'OS'),
    ].join('\r');
    const rx = stage.preview(codec, msg).records.find((x) => x.type === 'contact-lens-rx')!;
    expect(rx.data.expiresAt).toBe('2027-11-25'); // a contact-lens Rx is valid 12 months unless the PMS says
    expect(rx.data.right).toEqual({ sphere: -3, baseCurve: 8.6, diameter: 14.2 });
    expect(rx.data.left).toEqual({ sphere: 0, baseCurve: 8.6, diameter: 14.2 });
  });

  it('leaves lab results (no eye codes) unmapped, answered AA and counted as ignored', () => {
    const r = stage.preview(codec, [head, 'OBR|1|L1|L1|CBC', 'OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|||||F'].join('\r'));
    expect(r.unsupported).toBe('ORU^R01 (no eye-exam results)');
    expect(r.records).toEqual([]);
  });
});

describe('site overrides of the profile (config hl7.profileOverrides)', () => {
  it("adds a vendor's own eye codes and changes the cylinder convention", () => {
    const site = createHl7Codec({
      profile: 'generic',
      timezone: 'UTC',
      overrides: {
        cylinderConvention: 'plus',
        eyeCodes: {
          'VND-SPH': { display: 'Vendor sphere', rx: 'sphere' },
          'VND-CYL': { display: 'Vendor cylinder', rx: 'cylinder' },
          'VND-AX': { display: 'Vendor axis', rx: 'axis' },
        },
      },
    }) as SourceCodec<unknown>;
    const msg = [
      head,
      'OBR|1|ORD1|RX1|REFR|||20261125090000-0500',
      obx(1, 'VND-SPH', '-2.00', 'OD'),
      obx(2, 'VND-CYL', '-1.25', 'OD'),
      obx(3, 'VND-AX', '180', 'OD'),
      obx(4, 'VND-SPH', '-1.00', 'OS'),
    ].join('\r');
    const rx = stage.preview(site, msg).records.find((x) => x.type === 'spectacle-rx')!;
    expect(rx.data).toMatchObject({ cylinderConvention: 'plus', right: { sphere: -3.25, cylinder: 1.25, axis: 90 }, left: { sphere: -1 } });
    // without the override these codes mean nothing
    expect(stage.preview(codec, msg).unsupported).toBe('ORU^R01 (no eye-exam results)');
  });

  it('changes which identifier types name the chart', () => {
    const site = createHl7Codec({ profile: 'generic', timezone: 'UTC', overrides: { patientIdTypes: ['PI'] } }) as SourceCodec<unknown>;
    const adt = 'MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||ADT^A08|O1|P|2.5.1\rPID|1||MRN9^^^CLINIC^MR~PI7^^^ENT^PI||Synthetic^Pat';
    expect(stage.preview(site, adt).records[0].source.sourceId).toBe('ENT|PI7');
    expect(stage.preview(codec, adt).records[0].source.sourceId).toBe('CLINIC|MRN9');
  });
});
