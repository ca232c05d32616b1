/**
 * Every metric label comes from a bounded set. A sender choosing MSH-9 once made one series per
 * distinct type; now unknown types share `other`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameMllp } from '../../adapters/hl7v2/mllp-framer.ts';
import { readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { createMetrics, MAX_SERIES } from '../../gateway/metrics.ts';
import { messageTypeLabel, MESSAGE_TYPE_LABELS } from '../../gateway/message-type-label.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';

const UNKNOWN = 2000;
const msg = (id: string, type: string) =>
  `MSH|^~\\&|PMS|CLINIC|EWML|GW|20261125093000-0500||${type}|${id}|P|2.5.1\rEVN||20261125093000-0500`;

describe('metric labels', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, { logLevel: 'warn' });
  });
  afterAll(async () => {
    await h.stop();
  });

  it(`counts ${UNKNOWN} distinct unknown message types under one label, known unmapped ones under their names`, async () => {
    const c = await h.client();
    const types = [
      'ADT^A09^ADT_A09',
      'ORM^O01^ORM_O01',
      ...Array.from({ length: UNKNOWN }, (_, i) => `Z${i.toString(36).toUpperCase()}^Q${i}`),
    ];
    for (let i = 0; i < types.length; i++) c.writeRaw(frameMllp(msg(`MT${i}`, types[i])));
    const codes = new Map<string, number>();
    for (let i = 0; i < types.length; i++) {
      const a = readAck(await c.nextAnswer(20_000));
      codes.set(a.code, (codes.get(a.code) ?? 0) + 1);
    }
    expect([...codes]).toEqual([['AA', UNKNOWN + 2]]);

    const r = await fetch(`http://127.0.0.1:${h.adminPort}/metrics`, { headers: { authorization: `Bearer ${h.gw.parts.token}` } });
    const text = await r.text();
    const series = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    expect(series('ewml_intake_ignored_total').sort()).toEqual([
      'ewml_intake_ignored_total{adapter="hl7v2",kind="ADT^A09"} 1',
      'ewml_intake_ignored_total{adapter="hl7v2",kind="ORM^O01"} 1',
      `ewml_intake_ignored_total{adapter="hl7v2",kind="other"} ${UNKNOWN}`,
    ]);
    expect(series('ewml_intake_total')).toEqual([`ewml_intake_total{adapter="hl7v2",outcome="ignored"} ${UNKNOWN + 2}`]);
    // every series of every metric: no label anywhere carries a type that was sent
    const all = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(all.filter((l) => /kind="Z/.test(l))).toEqual([]);
    expect(text.length).toBeLessThan(16_384);

    // /status lists the first types as sent (bounded: 100 of them) and counts the rest under other
    const st = h.gw.status() as { counts: { ignored: number }; ignoredByType: Record<string, number> };
    expect(st.counts.ignored).toBe(UNKNOWN + 2);
    expect(Object.keys(st.ignoredByType).length).toBe(101);
    expect(st.ignoredByType).toMatchObject({ 'ADT^A09': 1, 'ORM^O01': 1, 'Z0^Q0': 1, other: UNKNOWN - 98 });
  });

  it('names the types it maps and the standard ones, nothing else', () => {
    expect(
      ['ADT^A09', 'ADT^A62', 'SIU^S26', 'MDM^T11', 'ORU^R01 (no eye-exam results)', 'Observation', 'ADT^?'].map(messageTypeLabel),
    ).toEqual(['ADT^A09', 'ADT^A62', 'SIU^S26', 'MDM^T11', 'ORU^R01 (no eye-exam results)', 'Observation', 'ADT^?']);
    expect(['ADT^A63', 'ZZZ^Z01', 'adt^a01', 'Patient ', 'ADT^A01^ADT_A01', ''].map(messageTypeLabel)).toEqual([
      'other',
      'other',
      'other',
      'other',
      'other',
      'other',
    ]);
    expect(MESSAGE_TYPE_LABELS).toBeLessThan(400);
  });

  it(`keeps at most ${MAX_SERIES} label sets per counter, counting later new ones under other`, () => {
    const m = createMetrics();
    for (let i = 0; i < MAX_SERIES + 500; i++) m.inc('ewml_test_total', { adapter: 'a', code: `C${i}` });
    m.inc('ewml_test_total', { adapter: 'a', code: 'C0' }, 2);
    const lines = m
      .render()
      .split('\n')
      .filter((l) => l.startsWith('ewml_test_total{'));
    expect(lines.length).toBe(MAX_SERIES + 1);
    expect(lines).toContain('ewml_test_total{adapter="other",code="other"} 500');
    expect(lines).toContain('ewml_test_total{adapter="a",code="C0"} 3');
    expect(m.total('ewml_test_total')).toBe(MAX_SERIES + 502);
  });
});
