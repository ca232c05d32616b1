/**
 * HL7 v3 patient-registry messages → patient records: PRPA_IN201301UV02 (added) and 201302
 * (revised) as upserts, 201304 (duplicates resolved) as a merge naming the retired ids.
 */
import { describe, expect, it } from 'vitest';
import { createHl7v3Codec, mapHl7v3Message } from '../../../adapters/cda/index.ts';
import { CodecError, type SourceCodec } from '../../../adapters/contracts.ts';
import { fixture, identity, throughPipeline, TZ } from './support.ts';

const ctx = { ...identity, timezone: TZ };
const codec = createHl7v3Codec({ timezone: TZ }) as SourceCodec<unknown>;
const SENDER = '2.16.840.1.113883.19.3.2';
const iris = { system: 'urn:oid:2.16.840.1.113883.19.5.99.3', value: 'EX-10001' };

describe('HL7 v3 patient messages', () => {
  it('PRPA_IN201301UV02 adds the patient: its ids with the other ids, name, sex, birth date, address, phone', () => {
    const r = throughPipeline(codec, fixture('prpa-in201301uv02-add.xml'));
    expect(r.issues).toEqual([]);
    expect(r.invalid).toEqual([]);
    expect(r.records.length).toBe(1);
    const p = r.records[0];
    expect([p.type, p.op, p.occurredAt]).toEqual(['patient', 'upsert', '2024-03-05T09:30:00-05:00']);
    expect(p.source).toEqual({ system: SENDER, adapter: 'hl7v3', sourceId: `${iris.system}|${iris.value}`, messageId: 'MSG-ADD-0001' });
    expect(p.data).toEqual({
      identifiers: [iris, { system: 'urn:oid:2.16.840.1.113883.19.5.77', value: 'LAB-5501' }],
      name: { family: 'Testpatient', given: ['Iris'] },
      birthDate: '1980-02-14',
      sex: 'female',
      addresses: [{ use: 'home', lines: ['100 Example Lane'], city: 'Springfield', state: 'IL', postalCode: '62701', country: 'US' }],
      phones: [{ use: 'home', value: '+1-555-010-0200' }],
    });
  });

  it('PRPA_IN201302UV02 revises the patient (namespace prefix, partial birth date, house number and street, mailing use)', () => {
    const r = throughPipeline(codec, fixture('prpa-in201302uv02-revise.xml'));
    expect(r.issues).toEqual([]);
    expect(r.invalid).toEqual([]);
    expect(r.records.length).toBe(1);
    const p = r.records[0];
    expect(p.op).toBe('upsert');
    // creationTime has no offset: the practice's zone
    expect(p.occurredAt).toBe('2024-04-02T14:15:00-05:00');
    expect(p.source.messageId).toBe('MSG-REV-0002');
    expect(p.data).toEqual({
      identifiers: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99.3', value: 'EX-20002' }],
      name: { family: 'Examplefield', given: ['Oscar'], suffix: 'Jr.' },
      birthDate: '1972-07',
      sex: 'male',
      addresses: [{ use: 'mailing', lines: ['42 Sample Road'], city: 'Riverton', postalCode: '00501' }],
      phones: [{ use: 'work', value: '+1-555-010-0300' }],
      emails: ['oscar.examplefield@example.org'],
    });
  });

  it('PRPA_IN201304UV02 is a merge of the surviving patient with the retired id in mergedFrom', () => {
    const r = throughPipeline(codec, fixture('prpa-in201304uv02-merge.xml'));
    expect(r.issues).toEqual([]);
    expect(r.invalid).toEqual([]);
    expect(r.records.length).toBe(1);
    const m = r.records[0];
    expect([m.type, m.op, m.source.sourceId]).toEqual(['patient', 'merge', `${iris.system}|${iris.value}`]);
    expect(m.data).toEqual({
      identifiers: [iris],
      name: { family: 'Testpatient', given: ['Iris'] },
      birthDate: '1980-02-14',
      sex: 'female',
      mergedFrom: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99.3', value: 'EX-10777' }],
    });
  });

  it('a merge, an add and a revision of one patient share its partition and have distinct, repeatable ids', () => {
    const add = mapHl7v3Message(fixture('prpa-in201301uv02-add.xml'), ctx).records[0];
    const merge = mapHl7v3Message(fixture('prpa-in201304uv02-merge.xml'), ctx).records[0];
    expect(add.partitionKey).toBe(merge.partitionKey);
    expect(add.partitionKey).toBe('patient:urn:oid:2.16.840.1.113883.19.5.99.3|EX-10001');
    expect(add.id).not.toBe(merge.id);
    expect(mapHl7v3Message(fixture('prpa-in201304uv02-merge.xml'), ctx).records[0].id).toBe(merge.id);
  });

  it('a merge that names no retired id is an error issue, with no record', () => {
    const text = fixture('prpa-in201304uv02-merge.xml').replace(
      '<id root="2.16.840.1.113883.19.5.99.3" extension="EX-10777"/>',
      '<id root="2.16.840.1.113883.19.5.99.3" extension="EX-10001"/>',
    );
    const r = mapHl7v3Message(text, ctx);
    expect(r.records).toEqual([]);
    expect(r.issues).toEqual([
      {
        severity: 'error',
        code: 'GW_MAP_FAILED',
        message: 'replacementOf/priorRegistration names no retired patient id',
        location: { segment: 'registrationEvent/replacementOf' },
      },
    ]);
  });

  it('other interactions parse and are not mapped', () => {
    const text = fixture('prpa-in201301uv02-add.xml').replaceAll('PRPA_IN201301UV02', 'PRPA_IN201303UV02');
    const r = throughPipeline(codec, text);
    expect(r.unsupported).toBe('PRPA_IN201303UV02');
    expect(r.records).toEqual([]);
    expect(codec.describe(codec.parse(text))).toEqual({ kind: 'PRPA_IN201303UV02', messageId: 'MSG-ADD-0001' });
  });

  it('the codec names the message by sender and id for resend checks and logs', () => {
    const parsed = codec.parse(fixture('prpa-in201304uv02-merge.xml'));
    expect(codec.format).toBe('hl7v3');
    expect(codec.dedupeKey(parsed)).toBe(`hl7v3|${SENDER}|2.16.840.1.113883.19.3.1|MSG-MRG-0003`);
    expect(codec.describe(parsed)).toEqual({ kind: 'PRPA_IN201304UV02', messageId: 'MSG-MRG-0003' });
  });

  it('malformed XML and XML that is not a v3 interaction throw a CodecError', () => {
    const cut = fixture('prpa-in201301uv02-add.xml').replace('</patientPerson>', '');
    expect(() => codec.parse(cut)).toThrow(CodecError);
    expect(() => codec.parse(cut)).toThrow(/^not well-formed XML \(InvalidTag at line \d+, column \d+\)$/);
    expect(() => codec.parse('<ClinicalDocument xmlns="urn:hl7-org:v3"/>')).toThrow(
      'not an HL7 v3 message: the root element is not an interaction in urn:hl7-org:v3',
    );
    expect(() => codec.parse('<PRPA_IN201301UV02 xmlns="urn:example"/>')).toThrow(CodecError);
  });
});
