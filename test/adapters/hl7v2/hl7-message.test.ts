import { describe, expect, it } from 'vitest';
import { CodecError } from '../../../adapters/contracts.ts';
import { component, escapeHl7, firstSegment, parseHl7, unescapeHl7 } from '../../../adapters/hl7v2/hl7-message.ts';
import { decodeHl7Bytes, peekCharset } from '../../../adapters/hl7v2/hl7-charset.ts';
import { splitHl7Messages } from '../../../adapters/hl7v2/hl7-batch.ts';
import { hl7Date, hl7Instant } from '../../../adapters/hl7v2/hl7-datetime.ts';

const ADT =
  'MSH|^~\\&|APP|FAC|RAPP|RFAC|20260101120000||ADT^A04^ADT_A01|CTRL1|P|2.5.1\rEVN|A04|20260101120000\rPID|1||123^^^HOSP^MR~456^^^OTHER^PI||Doe^Jane^Q||19700203|F';

describe('HL7 v2 parser', () => {
  it('reads the header with MSH-n at index n', () => {
    const m = parseHl7(ADT);
    expect(m.header).toMatchObject({
      sendingApplication: 'APP',
      sendingFacility: 'FAC',
      receivingApplication: 'RAPP',
      messageCode: 'ADT',
      triggerEvent: 'A04',
      messageStructure: 'ADT_A01',
      controlId: 'CTRL1',
      processingId: 'P',
      version: '2.5.1',
    });
    expect(m.segments[0].fields[1]).toBe('|');
    expect(m.segments[0].fields[2]).toBe('^~\\&');
    expect(m.segments.map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID']);
  });

  it('accepts CR, LF and CRLF segment ends, a BOM and leading blank lines', () => {
    for (const sep of ['\r', '\n', '\r\n']) {
      const m = parseHl7('\uFEFF\r\n' + ADT.replaceAll('\r', sep) + sep);
      expect(m.segments).toHaveLength(3);
      expect(firstSegment(m, 'PID')!.get(5, 2)).toBe('Jane');
    }
  });

  it('takes unusual encoding characters from MSH-1/MSH-2', () => {
    const m = parseHl7('MSH#@*$%#APP#FAC#R#RF#20260101##ADT@A08#C2#P#2.3\rPID#1##77@@@H@MR*88@@@H@PI##Roe@Ann');
    expect(m.delimiters).toEqual({ field: '#', component: '@', repetition: '*', escape: '$', subcomponent: '%' });
    const pid = firstSegment(m, 'PID')!;
    expect(pid.reps(3).map((r) => r[0])).toEqual(['77', '88']);
    expect(pid.get(5, 2)).toBe('Ann');
  });

  it('keeps Z-segments with their fields', () => {
    const m = parseHl7(ADT + '\rZPS|1|custom^value~second|x&y');
    const z = firstSegment(m, 'ZPS')!;
    expect(z.reps(2).map((r) => r[0])).toEqual(['custom', 'second']);
    expect(z.get(3, 1, 2)).toBe('y');
  });

  it('keeps the v2.7 truncation character', () => {
    expect(parseHl7('MSH|^~\\&#|A|B|C|D|20260101||ADT^A01|1|P|2.7').delimiters.truncation).toBe('#');
  });

  it('decodes escape sequences on read and encodes them on write', () => {
    const d = parseHl7(ADT).delimiters;
    expect(unescapeHl7('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f', d)).toBe('a|b^c&d~e\\f');
    expect(unescapeHl7('line1\\.br\\line2', d)).toBe('line1\nline2');
    expect(unescapeHl7('\\H\\bold\\N\\', d)).toBe('bold');
    expect(unescapeHl7('caf\\XC3A9\\', d)).toBe('café');
    expect(escapeHl7('a|b^c&d~e\\f', d)).toBe('a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f');
    expect(unescapeHl7(escapeHl7('x|^~\\&y', d), d)).toBe('x|^~\\&y');
  });

  it('reads components and subcomponents of the first repetition', () => {
    const d = parseHl7(ADT).delimiters;
    expect(component('a^b&c^d~x^y', d, 2, 2)).toBe('c');
    expect(component('a^b&c^d~x^y', d, 3)).toBe('d');
    expect(component('', d, 2)).toBe('');
  });

  it.each([
    ['empty input', '', '100'],
    ['no MSH', 'PID|1||123', '100'],
    ['alphanumeric field separator', 'MSHA^~\\&A', '102'],
    ['repeated encoding characters', 'MSH|^^\\&|A|B', '102'],
    ['missing MSH-9', 'MSH|^~\\&|A|B|C|D|20260101|||1|P|2.5', '101'],
    ['missing MSH-10', 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|2.5', '101'],
    ['missing MSH-12', 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|', '101'],
    ['a bad segment name', 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rpid|1', '100'],
    ['a second MSH', 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rMSH|^~\\&|A', '100'],
  ])('rejects %s with a CodecError carrying an HL7 error code', (_what, text, code) => {
    try {
      parseHl7(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CodecError);
      expect((e as CodecError).hl7ErrorCode).toBe(code);
    }
  });
});

describe('HL7 charsets (MSH-18)', () => {
  const latin = (cs: string) =>
    Buffer.concat([
      Buffer.from(`MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5||||||${cs}\rPID|1||1||M`, 'latin1'),
      Buffer.from([0xfc]),
      Buffer.from('ller', 'latin1'),
    ]);
  it('decodes 8859/1 bytes as Latin-1', () => {
    expect(peekCharset(latin('8859/1'))).toBe('8859/1');
    expect(decodeHl7Bytes(latin('8859/1'))).toContain('Müller');
  });
  it('decodes UTF-8 by default and for UNICODE UTF-8, dropping a BOM', () => {
    const b = Buffer.from('\uFEFFMSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|1||1||Müller', 'utf8');
    expect(peekCharset(b)).toBe('UNICODE UTF-8');
    const t = decodeHl7Bytes(b);
    expect(t.startsWith('MSH')).toBe(true);
    expect(t).toContain('Müller');
  });
});

describe('HL7 batches', () => {
  it('splits FHS/BHS batches and bare message files into messages', () => {
    const m1 = 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1';
    const m2 = 'MSH|^~\\&|A|B|C|D|20260101||ADT^A08|2|P|2.5\rPID|1';
    expect(splitHl7Messages(`FHS|^~\\&\rBHS|^~\\&\r${m1}\r${m2}\rBTS|2\rFTS|1`)).toEqual([m1, m2]);
    expect(splitHl7Messages(`${m1}\n\n${m2}\n`)).toEqual([m1, m2]);
  });
});

describe('HL7 dates', () => {
  it('reads dates of every precision', () => {
    expect(hl7Date('19700203')).toBe('1970-02-03');
    expect(hl7Date('197002')).toBe('1970-02');
    expect(hl7Date('1970')).toBe('1970');
    expect(hl7Date('19701302')).toBeUndefined();
    expect(hl7Date('garbage')).toBeUndefined();
  });
  it('keeps a sent offset and places local times in the practice zone', () => {
    expect(hl7Instant('20261201100000-0500', 'UTC')).toBe('2026-12-01T10:00:00-05:00');
    expect(hl7Instant('202612011000', 'America/Chicago')).toBe('2026-12-01T10:00:00-06:00');
    expect(hl7Instant('202607011000', 'America/Chicago')).toBe('2026-07-01T10:00:00-05:00');
    expect(hl7Instant('20260701100000.12', 'UTC')).toBe('2026-07-01T10:00:00.12Z');
    expect(hl7Instant('2026', 'UTC')).toBeUndefined();
  });
});
