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
const run = (text: string) => stage.preview(codec, text);
const pid = 'PID|1||MRN001^^^CLINIC^MR||Synthetic^Pat||19800101|F';

describe('financial mapping', () => {
  it('maps DFT^P03 FT1 rows to charges and payments', () => {
    const r = run(
      [
        'MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||DFT^P03^DFT_P03|D1|P|2.5.1',
        'EVN|P03|20261125093000',
        pid,
        'FT1|1|T100||20261125||CG|92004^Comprehensive eye exam^C4|||1|180.00&USD',
        'FT1|2|T101||20261125||CG|V2100^Single vision lens^HCPCS|||2||45.00&USD',
        'FT1|3|T102||20261125||PY|PAY^Copay|||1|25.00&USD',
      ].join('\r'),
    );
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.records.map((x) => x.type)).toEqual(['charge', 'charge', 'payment']);
    expect(r.records[0].data).toEqual({
      patient: { system: 'CLINIC', value: 'MRN001' },
      code: { code: '92004', system: 'http://www.ama-assn.org/go/cpt', display: 'Comprehensive eye exam' },
      transactionType: 'CG',
      amount: 180,
      currency: 'USD',
      quantity: 1,
      serviceDate: '2026-11-25',
    });
    expect(r.records[1].data).toMatchObject({ amount: 90, quantity: 2 });
    expect(r.records[2].data).toMatchObject({ amount: 25, currency: 'USD' });
  });

  it('reports an FT1 without a transaction code at FT1-7', () => {
    const r = run(['MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||DFT^P03|D2|P|2.5', pid, 'FT1|1|T1||20261125||CG||||1|10'].join('\r'));
    expect(r.records).toEqual([]);
    expect(r.issues[0]).toMatchObject({ severity: 'error', location: { segment: 'FT1', field: 7 } });
  });

  it('maps BAR^P01 to the patient and coverage, and leaves BAR^P02 unmapped', () => {
    const r = run(
      [
        'MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||BAR^P01^BAR_P01|B1|P|2.5.1',
        'EVN|P01|20261125093000',
        pid,
        'PV1|1|O',
        'IN1|1|PLAN1|PAY1|Test Vision Plan||||GRP1',
      ].join('\r'),
    );
    expect(r.records.map((x) => x.type)).toEqual(['patient', 'coverage']);
    expect(run(['MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000||BAR^P02|B2|P|2.5.1', pid].join('\r')).unsupported).toBe('BAR^P02');
  });
});
