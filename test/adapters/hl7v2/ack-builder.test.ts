import { describe, expect, it } from 'vitest';
import { buildAck, createAckIdSource, headerFromSegment, salvageHeader } from '../../../adapters/hl7v2/ack-builder.ts';
import { parseHl7 } from '../../../adapters/hl7v2/hl7-message.ts';

const inbound = (v = '2.5.1', enc = '^~\\&', f = '|') =>
  parseHl7(
    `MSH${f}${enc}${f}SAPP${f}SFAC${f}RAPP${f}RFAC${f}20260101${f}${f}ADT^A04^ADT_A01${f}CTRL9${f}P${f}${v}`.replaceAll('^', enc[0]),
  );

describe('ACK builder', () => {
  it('swaps sender and receiver, echoes MSH-10 in MSA-2, keeps the version, uses its own control id', () => {
    const m = inbound();
    const ack = buildAck({
      inbound: headerFromSegment(m.segments[0], m.delimiters),
      code: 'AA',
      controlId: 'GW1',
      nowMs: Date.UTC(2026, 0, 1),
    });
    const [msh, msa] = ack.split('\r');
    const f = msh.split('|');
    expect(f.slice(2, 6)).toEqual(['RAPP', 'RFAC', 'SAPP', 'SFAC']);
    expect(f[8]).toBe('ACK^A04^ACK');
    expect(f[9]).toBe('GW1');
    expect(f[11]).toBe('2.5.1');
    expect(msa).toBe('MSA|AA|CTRL9');
    expect(ack.endsWith('\r')).toBe(true);
  });

  it('answers with the inbound encoding characters', () => {
    const m = parseHl7('MSH#@*$%#SAPP#SFAC#RAPP#RFAC#20260101##ADT@A08#C7#P#2.4');
    const ack = buildAck({
      inbound: headerFromSegment(m.segments[0], m.delimiters),
      code: 'AE',
      controlId: 'GW2',
      nowMs: 0,
      error: { code: '101', text: 'PID-3 missing', location: { segment: 'PID', sequence: 1, field: 3 } },
    });
    expect(ack.startsWith('MSH#@*$%#RAPP#RFAC#SAPP#SFAC#')).toBe(true);
    expect(ack).toContain('MSA#AE#C7#PID-3 missing');
    // v2.4: ERR-1 as ELD with the code in a subcomponent
    expect(ack).toContain('ERR#PID@1@3@101%Required field missing%HL70357');
  });

  it('writes ERR-2 location, ERR-3 (table 0357) and severity for v2.5+', () => {
    const m = inbound('2.5');
    const ack = buildAck({
      inbound: headerFromSegment(m.segments[0], m.delimiters),
      code: 'AE',
      controlId: 'GW3',
      nowMs: 0,
      error: { code: '102', text: 'bad date', location: { segment: 'PID', sequence: 1, field: 7 } },
    });
    const err = ack
      .split('\r')
      .find((s) => s.startsWith('ERR'))!
      .split('|');
    expect(err[2]).toBe('PID^1^7^1');
    expect(err[3]).toBe('102^Data type error^HL70357');
    expect(err[4]).toBe('E');
    expect(err[8]).toBe('bad date');
  });

  it('escapes delimiters in error text', () => {
    const m = inbound();
    const ack = buildAck({
      inbound: headerFromSegment(m.segments[0], m.delimiters),
      code: 'AE',
      controlId: 'X',
      nowMs: 0,
      error: { code: '207', text: 'a|b^c' },
    });
    expect(ack).toContain('MSA|AE|CTRL9|a\\F\\b\\S\\c');
  });

  it("never echoes more than a field's standard length, whatever the inbound header holds", () => {
    const m = parseHl7(`MSH|^~\\&|${'A'.repeat(100_000)}|F|R|RF|2026||ADT^A01|${'9'.repeat(50_000)}|P|2.5`);
    const ack = buildAck({ inbound: headerFromSegment(m.segments[0], m.delimiters), code: 'AA', controlId: 'X', nowMs: 0 });
    expect(ack.length).toBeLessThan(2000);
  });

  it('makes unique control ids of at most 20 characters', () => {
    const src = createAckIdSource('GW', Date.now());
    const ids = new Set(Array.from({ length: 10_000 }, () => src.next()));
    expect(ids.size).toBe(10_000);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(20);
  });

  it('salvages MSH-10 from a message that does not parse, and copes with garbage', () => {
    const s = salvageHeader('MSH|^~\\&|A|B|C|D|2026||ADT^A01|KEEPME|P|2.3\rbad segment');
    expect(s.msh[10]).toBe('KEEPME');
    const ack = buildAck({ inbound: s, code: 'AR', controlId: 'GW4', nowMs: 0, error: { code: '100', text: 'x' } });
    expect(ack).toContain('MSA|AR|KEEPME');
    const g = buildAck({
      inbound: salvageHeader('\u0000\u0001garbage'),
      code: 'AR',
      controlId: 'GW5',
      nowMs: 0,
      error: { code: '100', text: 'x' },
    });
    expect(g.split('\r')[1]).toBe('MSA|AR||x');
  });
});
