/**
 * DocumentReference → clinical-document: the document's identity, type, status and author; an inline
 * attachment kept byte for byte as base64 (a CDA marked as such); a URL-only attachment reported, not
 * fetched; entered-in-error retracted; no subject or no type is an error naming the field.
 */
import { describe, expect, it } from 'vitest';
import { createRecordValidator } from '../../../adapters/canonical/validator.ts';
import { fhirDeleteRecords, mapFhirResource, type FhirMapContext } from '../../../adapters/fhir/map-fhir.ts';
import { toCanonical } from '../../../gateway/pipeline/map.ts';

const ctx: FhirMapContext = { system: 'EHR', adapter: 'fhir', now: () => Date.parse('2026-03-01T12:00:00Z') };
const validator = createRecordValidator();
const cda = '<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="2.16.840.1.113883.19.5" extension="doc-1"/></ClinicalDocument>';
const doc = (over: Record<string, unknown> = {}) => ({
  resourceType: 'DocumentReference',
  id: 'dr1',
  status: 'current',
  docStatus: 'final',
  masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.16.840.1.113883.19.5.99999.1' },
  subject: { reference: 'Patient/p1' },
  type: { coding: [{ system: 'http://loinc.org', code: '11488-4', display: 'Consult note' }] },
  date: '2026-02-10T09:30:00Z',
  author: [{ reference: 'Practitioner/pr1' }],
  securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] }],
  content: [{ attachment: { contentType: 'application/xml', data: Buffer.from(cda).toString('base64'), title: 'Eye exam' } }],
  ...over,
});

describe('DocumentReference', () => {
  it('maps to one valid clinical-document record carrying the inline CDA exactly as received', () => {
    const r = mapFhirResource(doc(), ctx, 'h1');
    expect(r.issues).toEqual([]);
    expect(r.records).toHaveLength(1);
    const rec = r.records[0];
    expect(rec.type).toBe('clinical-document');
    expect(rec.source).toEqual({ system: 'EHR', adapter: 'fhir', sourceId: 'DocumentReference/dr1' });
    expect(rec.partitionKey).toBe('patient:EHR/Patient|p1');
    expect(rec.data).toEqual({
      patient: { system: 'EHR/Patient', value: 'p1' },
      documentId: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:2.16.840.1.113883.19.5.99999.1' },
      documentType: { system: 'http://loinc.org', code: '11488-4', display: 'Consult note' },
      status: 'final',
      confidentiality: 'N',
      authoredAt: '2026-02-10T09:30:00Z',
      author: { system: 'EHR/Practitioner', value: 'pr1' },
      contentType: 'application/xml',
      title: 'Eye exam',
      content: Buffer.from(cda).toString('base64'),
      contentEncoding: 'base64',
      format: 'cda',
    });
    expect(Buffer.from(String(rec.data.content), 'base64').toString('utf8')).toBe(cda);
    expect(validator.validate(toCanonical(rec, { tenantId: 't', practiceId: 'p', gatewayId: 'g' }, '2026-03-01T12:00:00Z'))).toEqual([]);
  });

  it('names a URL-only attachment in a warning and keeps the rest; no content, no encoding', () => {
    const r = mapFhirResource(doc({ content: [{ attachment: { contentType: 'application/pdf', url: 'Binary/b1' } }] }), ctx, 'h2');
    expect(r.issues.map((i) => i.message)).toEqual(['DocumentReference content.attachment is a URL: the document is not fetched']);
    expect(r.records[0].data.contentType).toBe('application/pdf');
    expect(r.records[0].data.content).toBeUndefined();
    expect(r.records[0].data.format).toBeUndefined();
  });

  it('is an error without a Patient subject or a type, and retracted when entered-in-error', () => {
    expect(mapFhirResource(doc({ subject: undefined }), ctx, 'h3').issues.map((i) => i.message)).toEqual([
      'DocumentReference has no Patient subject',
    ]);
    expect(mapFhirResource(doc({ type: undefined }), ctx, 'h4').issues.map((i) => i.message)).toEqual(['DocumentReference has no type']);
    const gone = mapFhirResource(doc({ status: 'entered-in-error', meta: { lastUpdated: '2026-02-11T00:00:00Z' } }), ctx, 'h5');
    expect(gone.records.map((x) => [x.op, x.type, x.source.sourceId])).toEqual([['delete', 'clinical-document', 'DocumentReference/dr1']]);
    expect(fhirDeleteRecords('DocumentReference', 'dr1', ctx, '2026-02-12T00:00:00Z').records).toHaveLength(1);
  });
});
