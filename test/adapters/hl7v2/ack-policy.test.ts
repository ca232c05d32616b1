import { describe, expect, it } from 'vitest';
import { answersFor } from '../../../adapters/hl7v2/ack-policy.ts';
import type { IntakeResult } from '../../../adapters/contracts.ts';
import type { Hl7Header } from '../../../adapters/hl7v2/hl7-message.ts';

const header = (accept?: string, app?: string): Hl7Header => ({
  sendingApplication: 'A',
  sendingFacility: 'B',
  receivingApplication: 'C',
  receivingFacility: 'D',
  dateTime: '',
  messageCode: 'ADT',
  triggerEvent: 'A04',
  messageStructure: '',
  controlId: '1',
  processingId: 'P',
  version: '2.5',
  ...(accept !== undefined ? { acceptAckType: accept } : {}),
  ...(app !== undefined ? { applicationAckType: app } : {}),
});
const ok: IntakeResult = { status: 'accepted', recordIds: ['x'] };
const mapErr: IntakeResult = {
  status: 'rejected',
  code: 'GW_MAP_FAILED',
  retry: 'permanent',
  reason: 'PID-3 missing',
  hl7ErrorCode: '101',
};
const full: IntakeResult = { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
const bad: IntakeResult = { status: 'rejected', code: 'GW_PARSE_FAILED', retry: 'permanent', reason: 'x' };
const codes = (r: IntakeResult, h?: Hl7Header, mode: 'as-requested' | 'original' = 'as-requested') =>
  answersFor(r, h, mode).map((a) => a.code);

describe('acknowledgement policy (HL7 table 0155)', () => {
  it('answers in original mode when MSH-15 and MSH-16 are empty', () => {
    expect(codes(ok, header())).toEqual(['AA']);
    expect(codes(mapErr, header())).toEqual(['AE']);
    expect(codes(full, header())).toEqual(['AR']);
    expect(codes(bad, undefined)).toEqual(['AR']);
  });

  it('sends the accept ACK as MSH-15 asks and the application ACK as MSH-16 asks', () => {
    expect(codes(ok, header('AL', 'NE'))).toEqual(['CA']);
    expect(codes(ok, header('AL', 'AL'))).toEqual(['CA', 'AA']);
    expect(codes(mapErr, header('AL', 'AL'))).toEqual(['CA', 'AE']);
    expect(codes(ok, header('NE', 'AL'))).toEqual(['AA']);
    expect(codes(ok, header('ER', 'ER'))).toEqual([]);
    expect(codes(mapErr, header('ER', 'ER'))).toEqual(['AE']);
    expect(codes(mapErr, header('SU', 'SU'))).toEqual(['CA']);
    expect(codes(full, header('AL', 'AL'))).toEqual(['CE']);
    expect(codes(full, header('SU', 'AL'))).toEqual([]);
    expect(codes({ status: 'rejected', code: 'GW_CONTROL_ID_CONFLICT', retry: 'permanent', reason: 'x' }, header('AL', 'AL'))).toEqual([
      'CR',
    ]);
  });

  it('takes an empty MSH-15 as AL and an empty MSH-16 as NE in enhanced mode', () => {
    expect(codes(ok, header(undefined, 'AL'))).toEqual(['CA', 'AA']);
    expect(codes(ok, header('AL', undefined))).toEqual(['CA']);
  });

  it('answers unmapped types AA by default, or AE with ERR 200 when configured', () => {
    const ignored: IntakeResult = { status: 'ignored', reason: 'RDE^O11 is not mapped' };
    expect(answersFor(ignored, header(), 'as-requested')).toEqual([{ code: 'AA' }]);
    expect(answersFor(ignored, header(), 'as-requested', 'AE')).toEqual([
      { code: 'AE', error: { code: '200', text: 'GW_UNSUPPORTED_MESSAGE: RDE^O11 is not mapped' } },
    ]);
    expect(codes(ignored, header('AL', 'AL'))).toEqual(['CA', 'AA']);
  });

  it('answers in original mode whatever MSH-15/16 say when configured so', () => {
    expect(codes(ok, header('AL', 'AL'), 'original')).toEqual(['AA']);
  });
});
