/** Synthetic HL7 messages (no real people): built per test so each can vary one thing. */
let n = 0;

export function controlId(prefix = 'T'): string {
  return `${prefix}${process.pid}${(n++).toString(36)}`;
}

export function adtA04(
  o: { id?: string; mrn?: string; version?: string; event?: string; family?: string; extraPid?: string; in1?: boolean } = {},
): string {
  const id = o.id ?? controlId();
  const v = o.version ?? '2.5.1';
  const ev = o.event ?? 'A04';
  const segs = [
    `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000-0500||ADT^${ev}^ADT_A01|${id}|P|${v}`,
    `EVN|${ev}|20261125093000-0500`,
    `PID|1||${o.mrn ?? 'MRN001'}^^^CLINIC^MR||${o.family ?? 'Synthetic'}^Pat^Q||19800101|F|||1 Test Way^^Testville^TS^00000^USA^H||555-0100^PRN^PH${o.extraPid ?? ''}`,
    'PV1|1|O|CLINIC1||||D100^Provider^Paula^^^Dr^OD^^NPI',
  ];
  if (o.in1) segs.push('IN1|1|PLAN1|PAY1|Test Vision Plan||||GRP1||||20260101|20261231||||01|||||||||||||||||||MEM1');
  return segs.join('\r');
}

export function siu(o: { id?: string; event?: string; appt?: string; mrn?: string; start?: string; filler?: string } = {}): string {
  const id = o.id ?? controlId();
  const ev = o.event ?? 'S12';
  return [
    `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125094500-0500||SIU^${ev}^SIU_S12|${id}|P|2.5.1`,
    `SCH|${o.appt ?? 'A1'}^PMS|${o.appt ?? 'A1'}^PMS|||||EXAM^Eye exam|ROUTINE|30|MIN|^^30^${o.start ?? '20261201100000-0500'}||||||||||||||${o.filler ?? ''}`,
    `PID|1||${o.mrn ?? 'MRN001'}^^^CLINIC^MR||Synthetic^Pat||19800101|F`,
    `AIS|1|A|EYEEXAM^Comprehensive eye exam|${o.start ?? '20261201100000-0500'}|||30|MIN`,
    'AIP|1|A|D100^Provider^Paula^^^Dr^OD^^NPI|OD',
    'AIL|1|A|ROOM2^^^CLINIC^^^^^Exam room 2',
  ].join('\r');
}
