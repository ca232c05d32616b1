/**
 * CDA R2 documents (C-CDA R2.1: CCD, consultation and progress notes…) → canonical records: the
 * patient of each recordTarget/patientRole, and one `clinical-document` record for the document
 * itself, whose `content` is the document exactly as received (the outbox seals every record, so
 * the document is sealed as it is). Only the header is read: the body stays in the content for
 * the cloud, whole.
 *
 * Record ids are fixed by the document id (ClinicalDocument/id, unique to one document instance)
 * and not by the route it came by, so the same document from an export folder and as a FHIR
 * DocumentReference attachment is one record to the cloud.
 */
import { partitionOf } from '../hl7v2/map-adt.ts';
import { deterministicId } from '../canonical/record-id.ts';
import type { RecordType } from '../canonical/types.ts';
import { CodecError, type DraftRecord, type MapIssue, type MapResult, type SourceCodec } from '../contracts.ts';
import { coding, instanceId, instanceKey, messageIdOf, v3Instant } from './v3-datatypes.ts';
import { patientRef, readPatient, type V3MapContext, type V3Patient } from './v3-patient.ts';
import { attr, element, elements, parseV3Xml, textOf, type XmlElement } from './v3-xml.ts';
import { decodeXmlBytes, V3_NAMESPACE } from './xml-root.ts';

export type { V3MapContext } from './v3-patient.ts';

export const CDA_FORMAT = 'cda';

/** A parsed CDA document: its text as received, and its root element. */
export interface CdaDocument {
  text: string;
  doc: XmlElement;
  /** `root|extension` of ClinicalDocument/id, if it has one. */
  key: string | undefined;
  /** How `content` carries the document: the text itself, or the base64 it arrived as. */
  content?: { data: string; encoding: 'base64' };
}

/** Parses a CDA document; throws a CodecError when it is not well-formed or not a v3 ClinicalDocument. */
export function parseCdaDocument(text: string): CdaDocument {
  const { root, element: doc } = parseV3Xml(text);
  if (root.local !== 'ClinicalDocument' || root.namespace !== V3_NAMESPACE)
    throw new CodecError(`not a CDA document: the root element is not ClinicalDocument in ${V3_NAMESPACE}`);
  return { text, doc, key: instanceKey(element(doc, 'id')) };
}

/**
 * Document completion status from the header's signatures, in HL7 v2 table 0271's codes (as MDM's
 * TXA-17 gives them): LA legally authenticated, AU authenticated, DO documented.
 */
function completionStatus(doc: XmlElement): string {
  const signed = (el: XmlElement | undefined) => el !== undefined && (attr(element(el, 'signatureCode'), 'code') ?? 'S') === 'S';
  if (signed(element(doc, 'legalAuthenticator'))) return 'LA';
  if (elements(doc, 'authenticator').some(signed)) return 'AU';
  return 'DO';
}

function custodianOf(doc: XmlElement): string | undefined {
  return instanceKey(element(doc, 'custodian', 'assignedCustodian', 'representedCustodianOrganization', 'id'));
}

/** Maps a parsed CDA document (see {@link mapCdaDocument}). */
export function mapParsedCda(parsed: CdaDocument, ctx: V3MapContext): MapResult {
  const { doc } = parsed;
  const issues: MapIssue[] = [];
  const fail = (segment: string, message: string): MapResult => {
    issues.push({ severity: 'error', code: 'GW_MAP_FAILED', message, location: { segment } });
    return { records: [], issues };
  };
  const idEl = element(doc, 'id');
  const documentId = instanceId(idEl);
  const key = parsed.key;
  if (!documentId || !key) return fail('ClinicalDocument/id', 'ClinicalDocument/id is missing');
  const messageId = messageIdOf(idEl);
  const documentType = coding(element(doc, 'code'));
  if (!documentType) return fail('ClinicalDocument/code', 'ClinicalDocument/code (the document type) is missing');
  const system = ctx.system ?? custodianOf(doc) ?? 'CDA';
  const adapter = ctx.adapter ?? CDA_FORMAT;
  const authoredAt = v3Instant(element(doc, 'effectiveTime'), ctx.timezone) ?? v3Instant(element(doc, 'author', 'time'), ctx.timezone);
  if (!authoredAt)
    issues.push({
      severity: 'warning',
      code: 'GW_MAP_FAILED',
      message: 'ClinicalDocument/effectiveTime is not a date-time',
      location: { segment: 'ClinicalDocument/effectiveTime' },
    });
  const occurredAt = authoredAt ?? new Date(0).toISOString();
  const records: DraftRecord[] = [];
  const add = (type: RecordType, sourceId: string, partitionKey: string, data: object) =>
    records.push({
      id: deterministicId(ctx.tenantId, ctx.practiceId, CDA_FORMAT, key, type, sourceId, 'upsert'),
      type,
      op: 'upsert',
      occurredAt,
      partitionKey,
      data: data as Record<string, unknown>,
      source: { system, adapter, sourceId, messageId },
    });

  const roles = elements(doc, 'recordTarget').flatMap((r) => elements(r, 'patientRole'));
  if (roles.length === 0) return fail('ClinicalDocument/recordTarget', 'recordTarget/patientRole is missing');
  const patients: V3Patient[] = [];
  for (const role of roles) {
    const p = readPatient({ ids: elements(role, 'id'), role, person: element(role, 'patient'), where: 'recordTarget/patientRole' }, issues);
    if (p) patients.push(p);
  }
  if (patients.length < roles.length) return { records: [], issues };
  for (const p of patients) {
    const ref = patientRef(p.primary);
    add('patient', `${ref.system}|${ref.value}`, partitionOf(ref), p.data);
  }

  const ref = patientRef(patients[0].primary);
  const data: Record<string, unknown> = { patient: ref, documentId, documentType, status: completionStatus(doc) };
  const title = textOf(element(doc, 'title'));
  if (title) data.title = title;
  const confidentiality = attr(element(doc, 'confidentialityCode'), 'code');
  if (confidentiality) data.confidentiality = confidentiality;
  if (authoredAt) data.authoredAt = authoredAt;
  const author = instanceId(element(doc, 'author', 'assignedAuthor', 'id'));
  if (author) data.author = patientRef(author);
  const parent = instanceId(element(doc, 'relatedDocument', 'parentDocument', 'id'));
  if (parent) data.parentDocumentId = parent;
  const setId = instanceId(element(doc, 'setId'));
  if (setId) data.setId = setId;
  const version = Number(attr(element(doc, 'versionNumber'), 'value'));
  if (Number.isInteger(version) && version > 0) data.versionNumber = version;
  data.contentType = 'application/xml';
  data.contentEncoding = parsed.content?.encoding ?? 'identity';
  data.content = parsed.content?.data ?? parsed.text;
  add('clinical-document', `${documentId.system}|${documentId.value}`, partitionOf(ref), data);
  return { records, issues };
}

/**
 * A CDA document's text → its patient and clinical-document records. Throws a CodecError when the
 * text is not a well-formed v3 ClinicalDocument; what is missing for a record is in `issues`.
 */
export function mapCdaDocument(text: string, ctx: V3MapContext): MapResult {
  return mapParsedCda(parseCdaDocument(text), ctx);
}

/**
 * A CDA document that arrived base64-encoded (a FHIR DocumentReference's `content.attachment.data`)
 * → the same records as {@link mapCdaDocument}, the content kept as that base64 (`contentEncoding`
 * `base64`): the bytes as received.
 */
export function mapCdaBase64(data: string, ctx: V3MapContext): MapResult {
  const compact = data.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) throw new CodecError('the attachment is not base64');
  const parsed = parseCdaDocument(decodeXmlBytes(Buffer.from(compact, 'base64')));
  return mapParsedCda({ ...parsed, content: { data, encoding: 'base64' } }, ctx);
}

/** The `cda` format: one CDA document per input, for files, dead-letter replay and `preview`. */
export function createCdaCodec(o: { timezone: string; system?: string }): SourceCodec<CdaDocument> {
  return {
    format: CDA_FORMAT,
    parse: parseCdaDocument,
    // a document id names one document instance: the same id again is a resend
    dedupeKey: (d) => (d.key ? `cda|${d.key}` : undefined),
    describe: (d) => ({ kind: 'ClinicalDocument', messageId: messageIdOf(element(d.doc, 'id')) }),
    map: (d, ctx) => mapParsedCda(d, { ...ctx, timezone: o.timezone, system: o.system }),
  };
}
