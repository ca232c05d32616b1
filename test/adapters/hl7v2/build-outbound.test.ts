/** Messages we build for the PMS map back, through our own parser and mappers, to what they were built from. */
import { describe, expect, it } from 'vitest';
import { buildDft, buildLensOrder, buildSiu, toHl7Time } from '../../../adapters/hl7v2/build-outbound.ts';
import { parseHl7, segmentsNamed } from '../../../adapters/hl7v2/hl7-message.ts';
import { createHl7Codec } from '../../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { createMapStage } from '../../../gateway/pipeline/map-stage.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import type { SourceCodec } from '../../../adapters/contracts.ts';
import type { AppointmentData } from '../../../adapters/canonical/types.ts';

const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
const stage = createMapStage({
  validator: createRecordValidator(),
  clock: createManualClock(),
  identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
});
const h = {
  controlId: 'EW1',
  nowMs: Date.UTC(2026, 10, 25),
  sendingApplication: 'EWML',
  sendingFacility: 'gw-1',
  receivingApplication: 'PMS',
  receivingFacility: 'CLINIC',
};

describe('outbound HL7 builders', () => {
  it('converts ISO times to HL7 with their offsets', () => {
    expect(toHl7Time('2026-12-01T10:00:00-05:00')).toBe('20261201100000-0500');
    expect(toHl7Time('2026-12-01T10:00Z')).toBe('20261201100000+0000');
    expect(toHl7Time('2026-12-01')).toBe('20261201');
    expect(() => toHl7Time('tomorrow')).toThrow();
  });

  it.each(['book', 'update', 'cancel'] as const)('builds an SIU to %s an appointment that maps back to the same appointment', (action) => {
    const appt: AppointmentData = {
      appointmentId: { system: 'EWML', value: 'A-9' },
      patient: { system: 'CLINIC', value: 'MRN001' },
      status: action === 'cancel' ? 'cancelled' : 'booked',
      start: '2026-12-01T10:00:00-05:00',
      durationMinutes: 30,
      visitType: { code: 'EYEEXAM', display: 'Eye exam | with ^ delimiters' },
      provider: { system: 'NPI', value: 'D100', display: 'Dr Paula Provider' } as AppointmentData['provider'],
      location: { code: 'ROOM2', display: 'Exam room 2' },
      reason: 'Blurred vision',
    };
    const msg = buildSiu(h, action, appt);
    const r = stage.preview(codec, msg);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const back = r.records.find((x) => x.type === 'appointment')!.data;
    expect(back).toEqual(appt);
  });

  it('builds a DFT^P03 for a charge that maps back to the same charge', () => {
    const charge = {
      patient: { system: 'CLINIC', value: 'MRN001' },
      code: { code: '92004', system: 'http://www.ama-assn.org/go/cpt', display: 'Comprehensive eye exam' },
      amount: 180,
      currency: 'USD',
      quantity: 1,
      serviceDate: '2026-11-25',
    };
    const r = stage.preview(codec, buildDft(h, charge));
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.records[0].data).toEqual({ ...charge, transactionType: 'CG' });
  });

  it('builds an ORM^O01 lens order whose OBX rows read back as the same Rx (as an ORU would)', () => {
    const rx = {
      cylinderConvention: 'minus' as const,
      right: { sphere: -0.75, cylinder: -1.25, axis: 180, add: 2, prisms: [{ amount: 1, base: 'up' }] },
      left: { sphere: -1.75, add: 2 },
      binocularPd: 63.5,
    };
    const msg = buildLensOrder(h, {
      orderId: 'ORD-5',
      patient: { system: 'CLINIC', value: 'MRN001' },
      rx,
      notes: ['Frame: ACME 52-18-140 Black', 'Lens: 1.67 AR coat'],
    });
    const parsed = parseHl7(msg);
    expect(parsed.header).toMatchObject({ messageCode: 'ORM', triggerEvent: 'O01' });
    expect(segmentsNamed(parsed, 'NTE').map((n) => n.get(3))).toEqual(['Frame: ACME 52-18-140 Black', 'Lens: 1.67 AR coat']);
    // the same OBX rows inside an ORU map back to the Rx
    const asOru = msg.replace('ORM^O01^ORM_O01', 'ORU^R01^ORU_R01');
    const back = stage.preview(codec, asOru).records.find((x) => x.type === 'spectacle-rx')!.data;
    expect(back).toMatchObject({ cylinderConvention: 'minus', right: rx.right, left: rx.left, binocularPd: 63.5 });
  });
});
