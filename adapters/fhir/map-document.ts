/**
 * DocumentReference (FHIR R4 §10.5) → a `clinical-document` record: the document's identity and
 * type, its status, author and date, and — when the server put it inline — the attachment itself
 * as received (base64, sealed with the record like every record). An inline CDA document (an XML
 * attachment) is marked `format: cda`, so the cloud can read it as adapters/cda/ reads CDA export
 * files; its patient is the DocumentReference's subject.
 *
 * An attachment given only by URL (a Binary on the server) is not fetched here: the mapper is pure.
 * The record says `contentType` and the warning names the field, so the cloud knows a document
 * exists that has no content yet.
 */
import type { MapResult } from '../contracts.ts';
import { arr, codingOf, compact, fhirInstant, obj, patientRef, refTo, str, type R } from './fhir-refs.ts';
import { fail, record, warning, type FhirMapContext } from './map-record.ts';

const CDA_TYPES = /^(application|text)\/(xml|hl7-v3\+xml|cda\+xml)\b/i;

export function mapDocumentReference(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.subject, ctx);
  if (!patient) return fail('DocumentReference has no Patient subject');
  const id = str(res.id) ?? hash;
  const master = obj(res.masterIdentifier);
  const documentId =
    str(master?.value) !== undefined
      ? { system: str(master?.system) ?? `${ctx.system}/DocumentReference`, value: str(master?.value)! }
      : { system: `${ctx.system}/DocumentReference`, value: id };
  const documentType = codingOf(res.type) ?? (str(obj(res.type)?.text) ? { code: str(obj(res.type)?.text)! } : undefined);
  if (!documentType) return fail('DocumentReference has no type');
  const issues = [];
  const content = arr(res.content)
    .map((c) => obj(c.attachment))
    .find((a) => a !== undefined);
  const author = arr(res.author)
    .map((a) => refTo(a, ['Practitioner', 'PractitionerRole', 'Organization'], ctx, true))
    .find((r) => r !== undefined);
  const confidentiality = arr(res.securityLabel)
    .map(codingOf)
    .find((c) => c !== undefined)?.code;
  const data: R = compact({
    patient,
    documentId,
    documentType,
    status: str(res.docStatus) ?? str(res.status),
    confidentiality,
    authoredAt: fhirInstant(res.date),
    author: author ? { system: author.system, value: author.value } : undefined,
    contentType: str(content?.contentType),
    title: str(content?.title) ?? str(res.description),
  });
  if (content && str(content.data)) {
    data.content = String(content.data).replace(/\s+/g, '');
    data.contentEncoding = 'base64';
  } else if (content && str(content.url))
    issues.push(warning('DocumentReference content.attachment is a URL: the document is not fetched'));
  const cda = content && CDA_TYPES.test(str(content.contentType) ?? '') && data.content !== undefined;
  if (cda) data.format = 'cda';
  return { records: [record(ctx, res, 'clinical-document', data, patient, hash, fhirInstant(res.date))], issues };
}
