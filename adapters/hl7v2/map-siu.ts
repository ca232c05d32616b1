/**
 * SIU → appointment (HL7 v2 chapter 10, "Scheduling"). S12 new, S13 reschedule, S14 modify,
 * S15 cancel, S16 discontinue, S17 delete (a `delete` record), S26 no-show (status from the event,
 * overridden by SCH-25 filler status where sent). Start and
 * duration come from AIS-4/AIS-7 (v2.5+), then TQ1-7, then SCH-11 (TQ, deprecated in v2.5).
 */
import type { AppointmentData } from '../canonical/types.ts';
import type { MapResult } from '../contracts.ts';
import { firstSegment, type Hl7Message } from './hl7-message.ts';
import { hl7Instant } from './hl7-datetime.ts';
import { mapPid, mapXcn, patientRef, readEntityIds, type SegmentMapContext } from './map-segments.ts';
import { addRecord, openScope, required, type Hl7MapContext } from './message-mapper.ts';
import { partitionOf } from './map-adt.ts';

/** S12 new, S13 reschedule, S14 modify, S15 cancel, S16 discontinue, S17 delete, S26 no-show. */
const EVENT_STATUS: Record<string, AppointmentData['status']> = {
  S12: 'booked',
  S13: 'booked',
  S14: 'booked',
  S15: 'cancelled',
  S16: 'cancelled',
  S17: 'cancelled',
  S26: 'noshow',
};

/** HL7 table 0278 filler status codes. */
const FILLER_STATUS: Record<string, AppointmentData['status']> = {
  BOOKED: 'booked',
  CONFIRMED: 'booked',
  COMPLETE: 'fulfilled',
  CANCELLED: 'cancelled',
  DELETED: 'cancelled',
  NOSHOW: 'noshow',
  PENDING: 'pending',
  WAITLIST: 'pending',
  OVERBOOK: 'booked',
  STARTED: 'arrived',
  DC: 'cancelled',
  BLOCKED: 'pending',
};

function minutes(amount: string, unit: string): number | undefined {
  const n = Number(amount);
  if (!amount || !Number.isFinite(n) || n < 0) return undefined;
  const u = unit.toUpperCase();
  if (u === 'S' || u === 'SEC' || u === 'SECONDS') return n / 60;
  if (u === 'H' || u === 'HR' || u === 'HOURS') return n * 60;
  return n; // table 0066 default for scheduling durations is minutes
}

export function mapSiu(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent;
  const eventStatus = EVENT_STATUS[event];
  if (!eventStatus) return { unsupported: `SIU^${event || '?'}`, records: [], issues: [] };
  const sch = firstSegment(msg, 'SCH');
  const scope = openScope(msg, ctx);
  if (!sch) {
    required(scope, 'SCH', 0, 'SCH segment is missing', 1, '100');
    return { records: [], issues: scope.issues };
  }
  const sctx: SegmentMapContext = { sourceSystem: scope.sourceSystem, profile: ctx.profile, issues: scope.issues };
  const pid = firstSegment(msg, 'PID');
  if (!pid) {
    required(scope, 'PID', 0, 'PID segment is missing', 1, '100');
    return { records: [], issues: scope.issues };
  }
  const patient = mapPid(pid, sctx);
  if (!patient) return { records: [], issues: scope.issues };
  const ref = patientRef(patient.primary);

  const apptIds = [...readEntityIds(sch.reps(2), sctx), ...readEntityIds(sch.reps(1), sctx)];
  const apptId = apptIds[0];
  if (!apptId) {
    required(scope, 'SCH', 2, 'SCH-1/SCH-2 appointment id is missing');
    return { records: [], issues: scope.issues };
  }

  const ais = firstSegment(msg, 'AIS');
  const tq1 = firstSegment(msg, 'TQ1');
  const startRaw = ais?.get(4) || tq1?.get(7) || sch.get(11, 4);
  const start = hl7Instant(startRaw, ctx.timezone);
  if (!start) {
    required(
      scope,
      ais?.get(4) ? 'AIS' : 'SCH',
      ais?.get(4) ? 4 : 11,
      startRaw ? 'appointment start is not a valid date-time' : 'appointment start (AIS-4, TQ1-7 or SCH-11.4) is missing',
      1,
      startRaw ? '102' : '101',
    );
    return { records: [], issues: scope.issues };
  }
  const data: AppointmentData = { appointmentId: apptId, patient: ref, status: eventStatus, start, visitType: { code: 'unspecified' } };
  const filler = sch.get(25).toUpperCase();
  const fillerStatus = ctx.profile.fillerStatus[filler] ?? FILLER_STATUS[filler];
  if (fillerStatus) data.status = fillerStatus as AppointmentData['status'];
  const end = hl7Instant(sch.get(11, 5) || tq1?.get(8) || '', ctx.timezone);
  if (end) data.end = end;
  const duration = minutes(ais?.get(7) ?? '', ais?.get(8) ?? '') ?? minutes(sch.get(9), sch.get(10));
  if (duration !== undefined) data.durationMinutes = duration;
  for (const from of ctx.profile.visitTypeFrom) {
    const [seg, field] = from === 'AIS-3' ? ([ais, 3] as const) : from === 'SCH-8' ? ([sch, 8] as const) : ([sch, 7] as const);
    const code = seg?.get(field, 1);
    if (code) {
      data.visitType = { code };
      const display = seg?.get(field, 2);
      if (display) data.visitType.display = display;
      break;
    }
  }
  if (data.visitType.code === 'unspecified')
    scope.issues.push({
      severity: 'warning',
      code: 'GW_MAP_FAILED',
      message: 'no visit type in AIS-3, SCH-8 or SCH-7; recorded as "unspecified"',
      location: { segment: 'SCH', sequence: 1, field: 8 },
    });
  const reason = sch.get(7, 2) || sch.get(7, 1);
  if (reason) data.reason = reason;
  const aip = firstSegment(msg, 'AIP');
  const partition = partitionOf(ref);
  const provider =
    mapXcn(aip?.reps(3)[0], aip?.get(4, 1) || 'performer', sctx) ?? mapXcn(firstSegment(msg, 'PV1')?.reps(7)[0], 'attending', sctx);
  if (provider) {
    data.provider = provider.ref;
    addRecord(scope, 'provider', provider.sourceId, partition, provider.data);
  }
  const ail = firstSegment(msg, 'AIL');
  const locCode = ail?.get(3, 1) || ail?.get(3, 4);
  if (locCode) {
    data.location = { code: locCode };
    const locName = ail?.get(3, 9) || ail?.get(3, 2);
    if (locName) data.location.display = locName;
  }
  addRecord(scope, 'appointment', `${apptId.system}|${apptId.value}`, partition, data, event === 'S17' ? 'delete' : 'upsert');
  return { records: scope.records, issues: scope.issues };
}
