/**
 * MDM T01–T11 (HL7 v2 chapter 9, "Medical records / information management") → a
 * `clinical-document` record: the TXA metadata (type, unique id, status, availability, author,
 * dates, parent for addenda and replacements) and the document itself from the OBX segments
 * (text joined line by line, or an encapsulated ED payload as sent). The record is sealed at rest
 * and in transit like every other. T11 (cancel) is a `delete`.
 */
import type { MapResult } from '../contracts.ts';
import type { Hl7Message } from './hl7-message.ts';
import { firstSegment, segmentsNamed } from './hl7-message.ts';
import { hl7Instant } from './hl7-datetime.ts';
import { mapXcn, patientRef, readEntityIds } from './map-segments.ts';
import { partitionOf } from './map-adt.ts';
import { addRecord, openPatientMessage, required, type Hl7MapContext } from './message-mapper.ts';

const EVENTS = new Set(['T01', 'T02', 'T03', 'T04', 'T05', 'T06', 'T07', 'T08', 'T09', 'T10', 'T11']);

export function mapMdm(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent;
  if (!EVENTS.has(event)) return { unsupported: `MDM^${event || '?'}`, records: [], issues: [] };
  const txa = firstSegment(msg, 'TXA');
  const opened = openPatientMessage(msg, ctx);
  if (!opened.ok) return opened.result;
  const { scope, sctx, patient } = opened;
  if (!txa) {
    required(scope, 'TXA', 0, 'TXA segment is missing', 1, '100');
    return { records: [], issues: scope.issues };
  }
  const ref = patientRef(patient.primary);
  const docId = readEntityIds(txa.reps(12), sctx)[0] ?? readEntityIds(txa.reps(16), sctx)[0];
  if (!docId) {
    required(scope, 'TXA', 12, 'TXA-12 unique document number is missing');
    return { records: [], issues: scope.issues };
  }
  const typeCode = txa.get(2, 1);
  if (!typeCode) {
    required(scope, 'TXA', 2, 'TXA-2 document type is missing');
    return { records: [], issues: scope.issues };
  }
  const data: Record<string, unknown> = {
    patient: ref,
    documentId: docId,
    documentType: txa.get(2, 2) ? { code: typeCode, display: txa.get(2, 2) } : { code: typeCode },
  };
  const put = (k: string, v: string | undefined) => {
    if (v) data[k] = v;
  };
  put('status', txa.get(17));
  put('availability', txa.get(19));
  put('confidentiality', txa.get(18));
  put('authoredAt', hl7Instant(txa.get(6) || txa.get(4), ctx.timezone));
  const parent = readEntityIds(txa.reps(13), sctx)[0];
  if (parent) data.parentDocumentId = parent;
  const author = mapXcn(txa.reps(9)[0], 'author', sctx) ?? mapXcn(txa.reps(5)[0], 'author', sctx);
  if (author) data.author = author.ref;
  const obxs = segmentsNamed(msg, 'OBX');
  const ed = obxs.find((o) => o.get(2).toUpperCase() === 'ED');
  if (ed) {
    const [type, subtype, encoding] = [ed.get(5, 2), ed.get(5, 3), ed.get(5, 4)];
    data.contentType = type && subtype ? `${type}/${subtype}`.toLowerCase() : 'application/octet-stream';
    if (encoding) data.contentEncoding = encoding.toLowerCase();
    put('content', ed.raw(5).split(msg.delimiters.component)[4]);
  } else if (obxs.length) {
    data.contentType = 'text/plain';
    const lines = obxs.flatMap((o) => o.reps(5).map((c) => c.join(msg.delimiters.component)));
    put('content', lines.join('\n'));
  }
  addRecord(scope, 'clinical-document', `${docId.system}|${docId.value}`, partitionOf(ref), data, event === 'T11' ? 'delete' : 'upsert');
  return { records: scope.records, issues: scope.issues };
}
