/**
 * HL7 parse throughput on one core, ours beside @medplum/core's Hl7Message.parse, for a ~1 KB ADT
 * and a ~10 KB ORU; plus our parse → map → validate for the ADT.
 */
import { Hl7Message } from '@medplum/core';
import { parseHl7 } from '../../adapters/hl7v2/hl7-message.ts';
import { createHl7Codec } from '../../adapters/hl7v2/hl7-codec.ts';
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import type { SourceCodec } from '../../adapters/contracts.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';
import { systemClock } from '../../gateway/clock.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';

export function oru10k(): string {
  const segs = [
    'MSH|^~\\&|EXAM|CLINIC|EWML|GW|20261125093000-0500||ORU^R01^ORU_R01|ORU1|P|2.5.1',
    'PID|1||MRN001^^^CLINIC^MR||Synthetic^Pat||19800101|F',
    'OBR|1|ORD1|FIL1|92004^Comprehensive eye exam^CPT|||20261125090000-0500',
  ];
  // refraction rows (SNOMED sphere/cylinder/axis, OD and OS) and IOP: real eye-exam data the ORU mapping turns into records
  const codes = [
    '251795007^Power of sphere^SCT',
    '251797004^Power of cylinder^SCT',
    '251799001^Axis of cylinder^SCT',
    '41633001^Intraocular pressure^SCT',
  ];
  for (let i = 1; segs.join('\r').length < 10_000; i++) {
    const code = codes[i % 4];
    const value = i % 4 === 2 ? String(90 + (i % 90)) : i % 4 === 3 ? String(12 + (i % 10)) : ((i % 16) * 0.25 - 2).toFixed(2);
    segs.push(`OBX|${i}|NM|${code}||${value}|D|||||F|||20261125090000-0500||||||${i % 2 ? 'OD' : 'OS'}`);
  }
  return segs.join('\r');
}

function rate(fn: () => void, ms = 1500): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
  }
  return n / ((performance.now() - t0) / 1000);
}

export function parseBench(): Array<{ name: string; ours: number; peer: number }> {
  const adt = [
    adtA04({ id: 'PB1', in1: true }),
    'NK1|1|Synthetic^Spouse|SPO^Spouse^HL70063|1 Test Way^^Testville^TS^00000^USA|555-0101^PRN^PH',
    'AL1|1|DA|1605^Penicillin^RXNORM|MO|Rash',
    'DG1|1||H52.13^Myopia, bilateral^I10|||F',
    'PD1|||Test Eye Clinic^^CLINIC|D100^Provider^Paula^^^Dr^OD',
    'ZPS|1|custom^segment^kept',
    'NK1|2|Synthetic^Parent|PAR^Parent^HL70063|2 Test Way^^Testville^TS^00000^USA|555-0102^PRN^PH',
    'GT1|1||Synthetic^Guarantor||3 Test Way^^Testville^TS^00000^USA|555-0103^PRN^PH|||||SE^Self',
    'OBX|1|ST|PREFLANG^Preferred language||English||||||F',
    'AL1|2|DA|7980^Sulfa drugs^RXNORM|MO|Hives',
    'DG1|2||H52.4^Presbyopia^I10|||F',
  ].join('\r');
  const oru = oru10k();
  const codec = createHl7Codec({ profile: 'generic', timezone: 'UTC' }) as SourceCodec<unknown>;
  const stage = createMapStage({
    validator: createRecordValidator(),
    clock: systemClock,
    identity: { tenantId: 't', practiceId: 'p', gatewayId: 'g' },
  });
  return [
    {
      name: `parse ${(adt.length / 1024).toFixed(1)} KB ADT^A04`,
      ours: rate(() => parseHl7(adt)),
      peer: rate(() => Hl7Message.parse(adt)),
    },
    {
      name: `parse ${(oru.length / 1024).toFixed(1)} KB ORU^R01`,
      ours: rate(() => parseHl7(oru)),
      peer: rate(() => Hl7Message.parse(oru)),
    },
    { name: 'parse+map+validate ADT^A04 (3 records)', ours: rate(() => stage.run(codec, parseHl7(adt))), peer: NaN },
    {
      name: `parse+map+validate ORU^R01 (${stage.run(codec, parseHl7(oru)).records.length} records)`,
      ours: rate(() => stage.run(codec, parseHl7(oru))),
      peer: NaN,
    },
  ];
}
