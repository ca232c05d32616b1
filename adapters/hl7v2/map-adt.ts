/**
 * ADT → canonical records (HL7 v2 chapter 3). A01–A08, A11, A13, A28, A31 upsert the patient;
 * PV1 providers become `provider` records; IN1 segments become `coverage` records. A18/A34/A39/A40
 * become `merge` records; A23 a `delete`. Every record of a patient shares the patient's partition
 * key, so the cloud sees them in the order they were accepted.
 */
import type { MapResult } from '../contracts.ts';
import { firstSegment, reader, segmentsNamed, type Hl7Message } from './hl7-message.ts';
import { mapIn1, mapPid, mapXcn, patientRef, readIdentifiers, type SegmentMapContext } from './map-segments.ts';
import { addRecord, openScope, required, type Hl7MapContext } from './message-mapper.ts';

/** Events that carry a full PID and are mapped as a patient upsert (chapter 3 trigger events). */
export const ADT_UPSERT_EVENTS = new Set(['A01', 'A02', 'A03', 'A04', 'A05', 'A06', 'A07', 'A08', 'A11', 'A13', 'A28', 'A31']);
/** Merge events: each PID names the surviving patient, its MRG-1 the retired identifiers. */
export const ADT_MERGE_EVENTS = new Set(['A18', 'A34', 'A39', 'A40']);
/** A23 "delete a patient record". */
export const ADT_DELETE_EVENTS = new Set(['A23']);

export function partitionOf(ref: { system: string; value: string }): string {
  return `patient:${ref.system}|${ref.value}`;
}

export function mapAdt(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent || firstSegment(msg, 'EVN')?.get(1) || '';
  const isUpsert = ADT_UPSERT_EVENTS.has(event);
  const isMerge = ADT_MERGE_EVENTS.has(event);
  const isDelete = ADT_DELETE_EVENTS.has(event);
  if (!isUpsert && !isMerge && !isDelete) return { unsupported: `ADT^${event || '?'}`, records: [], issues: [] };
  const evn = firstSegment(msg, 'EVN');
  const scope = openScope(msg, ctx, evn?.get(6) || evn?.get(2));
  const pids = segmentsNamed(msg, 'PID');
  if (pids.length === 0) {
    required(scope, 'PID', 0, 'PID segment is missing', 1, '100');
    return { records: [], issues: scope.issues };
  }
  const sctx: SegmentMapContext = { sourceSystem: scope.sourceSystem, profile: ctx.profile, issues: scope.issues };
  if (isMerge) return mapMerges(msg, scope, sctx);
  const patient = mapPid(pids[0], sctx);
  if (!patient) return { records: [], issues: scope.issues };
  const ref = patientRef(patient.primary);
  const partition = partitionOf(ref);
  if (isDelete) {
    addRecord(scope, 'patient', `${ref.system}|${ref.value}`, partition, { identifiers: patient.data.identifiers }, 'delete');
    return { records: scope.records, issues: scope.issues };
  }
  addPatientBundle(msg, scope, sctx, patient);
  return { records: scope.records, issues: scope.issues };
}

/** The patient, the PV1 providers and the IN1 coverages of a message (ADT upserts, BAR accounts). */
export function addPatientBundle(
  msg: Hl7Message,
  scope: ReturnType<typeof openScope>,
  sctx: SegmentMapContext,
  patient: NonNullable<ReturnType<typeof mapPid>>,
): void {
  const ref = patientRef(patient.primary);
  const partition = partitionOf(ref);
  addRecord(scope, 'patient', `${ref.system}|${ref.value}`, partition, patient.data);
  const pv1 = firstSegment(msg, 'PV1');
  if (pv1) {
    const seen = new Set<string>();
    for (const [field, role] of [
      [7, 'attending'],
      [8, 'referring'],
      [9, 'consulting'],
      [17, 'admitting'],
    ] as const) {
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
}

/**
 * A18/A34/A39/A40: one `merge` record per PID/MRG pair, naming the surviving patient
 * (`identifiers`) and the retired ones (`mergedFrom`, from MRG-1, or MRG-4 for A39's person ids).
 */
function mapMerges(msg: Hl7Message, scope: ReturnType<typeof openScope>, sctx: SegmentMapContext): MapResult {
  const segs = msg.segments;
  let pidSeq = 0;
  let mrgSeq = 0;
  for (let i = 0; i < segs.length; i++) {
    if (segs[i].name !== 'PID') continue;
    pidSeq++;
    const pid = reader(msg, segs[i], pidSeq);
    let j = i + 1;
    while (j < segs.length && segs[j].name !== 'MRG' && segs[j].name !== 'PID') j++;
    if (j >= segs.length || segs[j].name !== 'MRG') {
      required(scope, 'MRG', 0, `MRG segment missing after PID ${pidSeq}`, pidSeq, '100');
      continue;
    }
    mrgSeq++;
    const mrg = reader(msg, segs[j], mrgSeq);
    const patient = mapPid(pid, sctx);
    if (!patient) continue;
    const retired = [...readIdentifiers(mrg.reps(1), sctx), ...readIdentifiers(mrg.reps(4), sctx)];
    if (retired.length === 0) {
      required(scope, 'MRG', 1, 'MRG-1 prior patient identifier is missing', mrgSeq);
      continue;
    }
    const ref = patientRef(patient.primary);
    const data = { ...patient.data, mergedFrom: retired.map(patientRef) };
    addRecord(scope, 'patient', `${ref.system}|${ref.value}`, partitionOf(ref), data, 'merge');
  }
  return { records: scope.issues.some((x) => x.severity === 'error') ? [] : scope.records, issues: scope.issues };
}
