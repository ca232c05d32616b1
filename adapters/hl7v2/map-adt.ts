/**
 * ADT → canonical records (HL7 v2 chapter 3). A01/A04/A08/A28/A31 (and the other patient-update
 * events that carry a full PID) upsert the patient; PV1 providers become `provider` records; IN1
 * segments become `coverage` records. Every record of a patient shares the patient's partition key.
 */
import type { MapResult } from '../contracts.ts';
import { firstSegment, segmentsNamed, type Hl7Message } from './hl7-message.ts';
import { mapIn1, mapPid, mapXcn, patientRef, type SegmentMapContext } from './map-segments.ts';
import { addRecord, openScope, required, type Hl7MapContext } from './message-mapper.ts';

/** Events mapped as a patient upsert. */
export const ADT_UPSERT_EVENTS = new Set(['A01', 'A04', 'A05', 'A08', 'A28', 'A31']);

export function partitionOf(ref: { system: string; value: string }): string {
  return `patient:${ref.system}|${ref.value}`;
}

export function mapAdt(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent || firstSegment(msg, 'EVN')?.get(1) || '';
  if (!ADT_UPSERT_EVENTS.has(event)) return { unsupported: `ADT^${event || '?'}`, records: [], issues: [] };
  const evn = firstSegment(msg, 'EVN');
  const scope = openScope(msg, ctx, evn?.get(6) || evn?.get(2));
  const pid = firstSegment(msg, 'PID');
  if (!pid) { required(scope, 'PID', 0, 'PID segment is missing', 1, '100'); return { records: [], issues: scope.issues }; }
  const sctx: SegmentMapContext = { sourceSystem: scope.sourceSystem, profile: ctx.profile, issues: scope.issues };
  const patient = mapPid(pid, sctx);
  if (!patient) return { records: [], issues: scope.issues };
  const ref = patientRef(patient.primary);
  const partition = partitionOf(ref);
  addRecord(scope, 'patient', `${ref.system}|${ref.value}`, partition, patient.data as unknown as Record<string, unknown>);
  const pv1 = firstSegment(msg, 'PV1');
  if (pv1) {
    const seen = new Set<string>();
    for (const [field, role] of [[7, 'attending'], [8, 'referring'], [9, 'consulting'], [17, 'admitting']] as const) {
      for (const rep of pv1.reps(field)) {
        const p = mapXcn(rep, role, sctx);
        if (!p || seen.has(p.sourceId)) continue;
        seen.add(p.sourceId);
        addRecord(scope, 'provider', p.sourceId, partition, p.data);
      }
    }
  }
  for (const in1 of segmentsNamed(msg, 'IN1')) {
    const cov = mapIn1(in1, ref, sctx);
    if (cov) addRecord(scope, 'coverage', `${ref.system}|${ref.value}|${cov.sourceId}`, partition, cov.data);
  }
  return { records: scope.records, issues: scope.issues };
}
