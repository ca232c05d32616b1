/**
 * C-CDA R2.1 documents → a patient record from recordTarget/patientRole and a clinical-document
 * record whose content is the document as received; both valid against the canonical schema.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createCdaCodec, mapCdaBase64, mapCdaDocument } from '../../../adapters/cda/index.ts';
import { CodecError, type SourceCodec } from '../../../adapters/contracts.ts';
import { fixture, fixturePath, identity, throughPipeline, TZ } from './support.ts';

const NOTE = 'eye-exam-consult-note.xml';
const ctx = { ...identity, timezone: TZ };
const codec = createCdaCodec({ timezone: TZ }) as SourceCodec<unknown>;
const patientRef = { system: 'urn:oid:2.16.840.1.113883.19.5.99.3', value: 'EX-10001' };

/** A small CCD of the same made-up patient, namespace-prefixed, with a replaced parent document. */
const prefixedCcd = `<?xml version="1.0"?>
<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">
  <cda:id root="7c0d3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f"/>
  <cda:code code="34133-9" codeSystem="2.16.840.1.113883.6.1" displayName="Summarization of episode note"/>
  <cda:effectiveTime value="20240601120000"/>
  <cda:confidentialityCode code="R"/>
  <cda:recordTarget><cda:patientRole>
    <cda:id root="2.16.840.1.113883.19.5.99.3" extension="EX-10001"/>
    <cda:patient><cda:administrativeGenderCode code="UN"/></cda:patient>
  </cda:patientRole></cda:recordTarget>
  <cda:relatedDocument typeCode="RPLC"><cda:parentDocument><cda:id root="2.16.840.1.113883.19.5.99.1" extension="DOC-EYE-0001"/></cda:parentDocument></cda:relatedDocument>
  <cda:component><cda:nonXMLBody><cda:text mediaType="text/plain">synthetic</cda:text></cda:nonXMLBody></cda:component>
</cda:ClinicalDocument>`;

describe('CDA document mapping', () => {
  it('maps recordTarget/patientRole to a patient: ids as urn:oid, legal name without the call-me name, birth date, sex, address, phones, e-mail', () => {
    const r = mapCdaDocument(fixture(NOTE), ctx);
    expect(r.issues).toEqual([]);
    expect(r.records.map((x) => x.type)).toEqual(['patient', 'clinical-document']);
    const p = r.records[0];
    expect(p.op).toBe('upsert');
    expect(p.occurredAt).toBe('2024-03-05T10:15:00-05:00');
    expect(p.partitionKey).toBe('patient:urn:oid:2.16.840.1.113883.19.5.99.3|EX-10001');
    expect(p.source).toEqual({
      system: '2.16.840.1.113883.19.5.99|ORG-1',
      adapter: 'cda',
      sourceId: 'urn:oid:2.16.840.1.113883.19.5.99.3|EX-10001',
      messageId: 'DOC-EYE-0001',
    });
    expect(p.data).toEqual({
      identifiers: [patientRef, { system: 'urn:oid:2.16.840.1.113883.4.1', value: '000-00-0000', type: 'SS' }],
      name: { family: 'Testpatient', given: ['Iris', 'Jane'], prefix: 'Ms.' },
      birthDate: '1980-02-14',
      sex: 'female',
      addresses: [
        { use: 'home', lines: ['100 Example Lane', 'Apt 2'], city: 'Springfield', state: 'IL', postalCode: '62701', country: 'US' },
      ],
      phones: [
        { use: 'home', value: '+1-555-010-0200' },
        { use: 'mobile', value: '+1-555-010-0201' },
      ],
      emails: ['iris.testpatient@example.org'],
    });
  });

  it('maps the document to a clinical-document record whose content is the document, byte for byte', () => {
    const text = fixture(NOTE);
    const d = mapCdaDocument(text, ctx).records[1];
    expect(d.source.sourceId).toBe('urn:oid:2.16.840.1.113883.19.5.99.1|DOC-EYE-0001');
    expect(d.partitionKey).toBe('patient:urn:oid:2.16.840.1.113883.19.5.99.3|EX-10001');
    const { content, ...meta } = d.data;
    expect(meta).toEqual({
      patient: patientRef,
      documentId: { system: 'urn:oid:2.16.840.1.113883.19.5.99.1', value: 'DOC-EYE-0001' },
      documentType: { system: 'http://loinc.org', code: '11488-4', display: 'Consult note' },
      status: 'LA',
      title: 'Comprehensive Eye Examination',
      confidentiality: 'N',
      authoredAt: '2024-03-05T10:15:00-05:00',
      author: { system: 'urn:oid:2.16.840.1.113883.4.6', value: '9999999991' },
      setId: { system: 'urn:oid:2.16.840.1.113883.19.5.99.2', value: 'SET-EYE-0001' },
      versionNumber: 1,
      contentType: 'application/xml',
      contentEncoding: 'identity',
    });
    expect(content).toBe(text);
    expect(Buffer.from(content as string, 'utf8').equals(readFileSync(fixturePath(NOTE)))).toBe(true);
  });

  it('every record passes the canonical validator after the pipeline envelope', () => {
    const r = throughPipeline(codec, fixture(NOTE));
    expect(r.invalid).toEqual([]);
    expect(r.records.map((x) => [x.type, x.tenantId, x.schemaVersion])).toEqual([
      ['patient', 'tenant-1', '1.0'],
      ['clinical-document', 'tenant-1', '1.0'],
    ]);
  });

  it('gives the same record ids for the same document, and different ones per tenant', () => {
    const a = mapCdaDocument(fixture(NOTE), ctx).records.map((x) => x.id);
    expect(mapCdaDocument(fixture(NOTE), ctx).records.map((x) => x.id)).toEqual(a);
    expect(new Set(a).size).toBe(2);
    const other = mapCdaDocument(fixture(NOTE), { ...ctx, tenantId: 'tenant-2' }).records.map((x) => x.id);
    expect(other.filter((id) => a.includes(id))).toEqual([]);
  });

  it('a base64 attachment (FHIR DocumentReference) gives the same records, its content kept as the base64 received', () => {
    const text = fixture(NOTE);
    const b64 = Buffer.from(text, 'utf8').toString('base64');
    const viaFhir = mapCdaBase64(b64, { ...ctx, adapter: 'fhir' });
    const viaFile = mapCdaDocument(text, ctx);
    expect(viaFhir.records.map((x) => x.id)).toEqual(viaFile.records.map((x) => x.id));
    expect(viaFhir.records[1].source.adapter).toBe('fhir');
    expect(viaFhir.records[1].data.contentEncoding).toBe('base64');
    expect(viaFhir.records[1].data.content).toBe(b64);
    expect(Buffer.from(viaFhir.records[1].data.content as string, 'base64').toString('utf8')).toBe(text);
    expect(() => mapCdaBase64('not base64!', ctx)).toThrow(CodecError);
  });

  it('reads a namespace-prefixed document: a root-only id as a URI, UN as unknown, the replaced parent, status DO when unsigned', () => {
    const r = throughPipeline(codec, prefixedCcd);
    expect(r.issues).toEqual([]);
    expect(r.invalid).toEqual([]);
    expect(r.records[0].data).toEqual({ identifiers: [patientRef], sex: 'unknown' });
    const { content, ...meta } = r.records[1].data;
    expect(meta).toEqual({
      patient: patientRef,
      documentId: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:7c0d3a5e-1f2b-4c3d-9e8f-0a1b2c3d4e5f' },
      documentType: { system: 'http://loinc.org', code: '34133-9', display: 'Summarization of episode note' },
      status: 'DO',
      confidentiality: 'R',
      // no offset: the practice's zone (Chicago, daylight time in June)
      authoredAt: '2024-06-01T12:00:00-05:00',
      parentDocumentId: { system: 'urn:oid:2.16.840.1.113883.19.5.99.1', value: 'DOC-EYE-0001' },
      contentType: 'application/xml',
      contentEncoding: 'identity',
    });
    expect(content).toBe(prefixedCcd);
    // no custodian: the records name the format as their system
    expect(r.records[1].source.system).toBe('CDA');
  });

  it('the codec names the document by its id for resend checks and logs', () => {
    const parsed = codec.parse(fixture(NOTE));
    expect(codec.format).toBe('cda');
    expect(codec.dedupeKey(parsed)).toBe('cda|2.16.840.1.113883.19.5.99.1|DOC-EYE-0001');
    expect(codec.describe(parsed)).toEqual({ kind: 'ClinicalDocument', messageId: 'DOC-EYE-0001' });
  });

  it('a document without a usable patient id or document type is an error issue, with no records', () => {
    const noPatientId = fixture(NOTE)
      .replace('<id root="2.16.840.1.113883.19.5.99.3" extension="EX-10001"/>', '<id nullFlavor="UNK"/>')
      .replace('<id root="2.16.840.1.113883.4.1" extension="000-00-0000"/>', '');
    const a = mapCdaDocument(noPatientId, ctx);
    expect(a.records).toEqual([]);
    expect(a.issues).toEqual([
      {
        severity: 'error',
        code: 'GW_MAP_FAILED',
        message: 'recordTarget/patientRole has no usable id (root and extension)',
        location: { segment: 'recordTarget/patientRole/id' },
      },
    ]);
    const noType = mapCdaDocument(fixture(NOTE).replace(/<code code="11488-4"[^>]*\/>/, ''), ctx);
    expect(noType.records).toEqual([]);
    expect(noType.issues.map((i) => i.message)).toEqual(['ClinicalDocument/code (the document type) is missing']);
  });

  it('malformed XML, a DOCTYPE and non-CDA XML throw a CodecError that names no content', () => {
    const cut = fixture(NOTE).replace('</family>', '');
    let err: unknown;
    try {
      codec.parse(cut);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CodecError);
    expect((err as Error).message).toMatch(/^not well-formed XML \(InvalidTag at line \d+, column \d+\)$/);
    expect((err as Error).message).not.toContain('Testpatient');
    expect(() => codec.parse('<!DOCTYPE x [<!ENTITY a "aaaa">]><ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>')).toThrow(
      'an XML document with a DOCTYPE is not accepted (HL7 v3 XML has none)',
    );
    expect(() => codec.parse('<Export><Patient>1</Patient></Export>')).toThrow(
      'not a CDA document: the root element is not ClinicalDocument in urn:hl7-org:v3',
    );
    expect(() => codec.parse('<ClinicalDocument><id root="1.2"/></ClinicalDocument>')).toThrow(CodecError);
    expect(() => codec.parse('plain text')).toThrow('not an XML document: no root element');
  });
});
