import { describe, expect, it } from 'vitest';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createMapStage } from '../../../gateway/pipeline/map-stage.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';
import { adtA04, siu } from '../../support/hl7-fixtures.ts';

const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
const stage = createMapStage({
  validator: createRecordValidator(),
  clock: createManualClock(),
  identity: { tenantId: 't1', practiceId: 'p1', gatewayId: 'g1' },
});
const run = (text: string) => stage.preview(codec, text);

describe('ADT mapping', () => {
  it.each(['A01', 'A04', 'A08', 'A28', 'A31'])('maps ADT^%s to a valid patient, provider and coverage', (event) => {
    const r = run(adtA04({ event, in1: true }));
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.records.map((x) => x.type)).toEqual(['patient', 'provider', 'coverage']);
    const p = r.records[0];
    expect(p).toMatchObject({
      op: 'upsert',
      tenantId: 't1',
      practiceId: 'p1',
      gatewayId: 'g1',
      schemaVersion: '1.0',
      source: { system: 'PMS@CLINIC', adapter: 'hl7v2', sourceId: 'CLINIC|MRN001' },
    });
    expect(p.data).toMatchObject({
      identifiers: [{ system: 'CLINIC', value: 'MRN001', type: 'MR' }],
      name: { family: 'Synthetic', given: ['Pat', 'Q'] },
      birthDate: '1980-01-01',
      sex: 'female',
    });
    expect(p.occurredAt).toBe('2026-11-25T09:30:00-05:00');
    expect(r.records[2].data).toMatchObject({
      patient: { system: 'CLINIC', value: 'MRN001' },
      payer: { id: 'PAY1', name: 'Test Vision Plan' },
      memberId: 'MEM1',
      start: '2026-01-01',
      end: '2026-12-31',
    });
  });

  it('gives the same ids for the same message and different ids for another control id', () => {
    const a = run(adtA04({ id: 'SAME' })).records.map((r) => r.id);
    const b = run(adtA04({ id: 'SAME' })).records.map((r) => r.id);
    const c = run(adtA04({ id: 'OTHER' })).records.map((r) => r.id);
    expect(a).toEqual(b);
    expect(a[0]).not.toBe(c[0]);
  });

  it('reports a missing PID-3 as an error at PID-3 with HL7 code 101', () => {
    const r = run(adtA04().replace('MRN001^^^CLINIC^MR', ''));
    expect(r.records).toEqual([]);
    expect(r.issues[0]).toMatchObject({ severity: 'error', location: { segment: 'PID', field: 3 }, hl7ErrorCode: '101' });
  });

  it('leaves out a bad birth date with a warning instead of failing the patient', () => {
    const r = run(adtA04().replace('19800101', '19801399'));
    expect(r.records[0].data.birthDate).toBeUndefined();
    expect(r.issues).toContainEqual(expect.objectContaining({ severity: 'warning', location: expect.objectContaining({ field: 7 }) }));
  });

  it('marks events it does not map as unsupported (answered AA, counted as ignored)', () => {
    expect(run(adtA04({ event: 'A17' })).unsupported).toBe('ADT^A17');
    expect(run('MSH|^~\\&|A|B|C|D|20260101||RDE^O11|1|P|2.5\rPID|1||1').unsupported).toBe('RDE^O11');
  });

  it.each(['A40', 'A34', 'A39', 'A18'])('maps ADT^%s to a merge record naming the surviving and retired patient ids', (event) => {
    const msg = [
      `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||ADT^${event}^ADT_A39|M1${event}|P|2.5.1`,
      `EVN|${event}|20261125093000`,
      'PID|1||KEEP1^^^CLINIC^MR||Synthetic^Pat',
      'MRG|GONE1^^^CLINIC^MR~GONE1B^^^CLINIC^MR',
      'PID|2||KEEP2^^^CLINIC^MR||Synthetic^Two',
      'MRG|GONE2^^^CLINIC^MR',
    ].join('\r');
    const r = run(msg);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.records.map((x) => [x.op, x.source.sourceId])).toEqual([
      ['merge', 'CLINIC|KEEP1'],
      ['merge', 'CLINIC|KEEP2'],
    ]);
    expect(r.records[0].data.mergedFrom).toEqual([
      { system: 'CLINIC', value: 'GONE1' },
      { system: 'CLINIC', value: 'GONE1B' },
    ]);
  });

  it('reports a merge without MRG as an error at MRG', () => {
    const r = run('MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||ADT^A40|MX|P|2.5.1\rPID|1||KEEP1^^^CLINIC^MR');
    expect(r.records).toEqual([]);
    expect(r.issues[0]).toMatchObject({ severity: 'error', location: { segment: 'MRG' } });
  });

  it('maps ADT^A23 to a patient delete record', () => {
    const r = run(adtA04({ event: 'A23' }));
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({
      type: 'patient',
      op: 'delete',
      data: { identifiers: [{ system: 'CLINIC', value: 'MRN001', type: 'MR' }] },
    });
  });

  it('uses the profile to choose the chart identifier', () => {
    const msg = adtA04().replace('MRN001^^^CLINIC^MR', 'ENT9^^^ENT^EPI~MRN001^^^CLINIC^PI');
    const epic = createHl7Codec({ profile: 'epic', timezone: 'UTC' }) as SourceCodec<unknown>;
    expect(stage.preview(epic, msg).records[0].source.sourceId).toBe('ENT|ENT9');
    const cerner = createHl7Codec({ profile: 'cerner', timezone: 'UTC' }) as SourceCodec<unknown>;
    expect(stage.preview(cerner, msg).records[0].source.sourceId).toBe('CLINIC|MRN001');
  });
});

describe('SIU mapping', () => {
  it.each([
    ['S12', 'booked'],
    ['S13', 'booked'],
    ['S14', 'booked'],
    ['S15', 'cancelled'],
  ])('maps SIU^%s to an appointment with status %s', (event, status) => {
    const r = run(siu({ event }));
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const appt = r.records.find((x) => x.type === 'appointment')!;
    expect(appt.data).toMatchObject({
      appointmentId: { system: 'PMS', value: 'A1' },
      patient: { system: 'CLINIC', value: 'MRN001' },
      status,
      start: '2026-12-01T10:00:00-05:00',
      durationMinutes: 30,
      visitType: { code: 'EYEEXAM', display: 'Comprehensive eye exam' },
      provider: { system: 'NPI', value: 'D100' },
      location: { code: 'ROOM2', display: 'Exam room 2' },
    });
    expect(r.records.find((x) => x.type === 'provider')).toBeDefined();
  });

  it('maps S16 and S17 to cancelled (S17 as a delete) and S26 to no-show', () => {
    const appt = (event: string) => run(siu({ event })).records.find((x) => x.type === 'appointment')!;
    expect(appt('S16')).toMatchObject({ op: 'upsert', data: { status: 'cancelled' } });
    expect(appt('S17')).toMatchObject({ op: 'delete', data: { status: 'cancelled' } });
    expect(appt('S26')).toMatchObject({ op: 'upsert', data: { status: 'noshow' } });
  });

  it('lets SCH-25 filler status override the event', () => {
    const appt = run(siu({ event: 'S14', filler: 'Noshow' })).records.find((x) => x.type === 'appointment')!;
    expect(appt.data.status).toBe('noshow');
  });

  it('reports a bad start time as a data type error', () => {
    const r = run(siu({ start: '20261399100000' }));
    expect(r.records).toEqual([]);
    expect(r.issues[0]).toMatchObject({ severity: 'error', hl7ErrorCode: '102', location: { segment: 'AIS', field: 4 } });
  });

  it('shares the patient partition between ADT and SIU records of one patient', () => {
    const a = run(adtA04());
    const s = run(siu());
    expect(a.records[0].data.identifiers).toBeDefined();
    expect(s.records.find((x) => x.type === 'appointment')!.data.patient).toEqual({ system: 'CLINIC', value: 'MRN001' });
  });
});
