/**
 * Shared plumbing for HL7 message mappers: the sending system, the record envelope, deterministic
 * ids and issue helpers. A mapper is pure: the same message gives the same records and ids.
 */
import { deterministicId } from '../canonical/record-id.ts';
import type { RecordType } from '../canonical/types.ts';
import type { DraftRecord, MapContext, MapIssue, MapResult } from '../contracts.ts';
import { firstSegment, type Hl7Message } from './hl7-message.ts';
import { mapPid, type SegmentMapContext } from './map-segments.ts';
import { hl7Instant } from './hl7-datetime.ts';
import type { Hl7Profile } from './profiles.ts';

export interface Hl7MapContext extends MapContext {
  profile: Hl7Profile;
  /** IANA zone for HL7 times without an offset. */
  timezone: string;
}

export interface MessageScope {
  msg: Hl7Message;
  ctx: Hl7MapContext;
  sourceSystem: string;
  occurredAt: string;
  issues: MapIssue[];
  records: DraftRecord[];
}

/** `APP@FACILITY` from MSH-3/MSH-4 (namespace ids). */
export function sourceSystemOf(msg: Hl7Message): string {
  const app = msg.header.sendingApplication || 'unknown';
  return msg.header.sendingFacility ? `${app}@${msg.header.sendingFacility}` : app;
}

export function openScope(msg: Hl7Message, ctx: Hl7MapContext, eventTime?: string): MessageScope {
  const occurredAt =
    hl7Instant(eventTime ?? '', ctx.timezone) ?? hl7Instant(msg.header.dateTime, ctx.timezone) ?? new Date(0).toISOString();
  return { msg, ctx, sourceSystem: sourceSystemOf(msg), occurredAt, issues: [], records: [] };
}

/** Adds a record with an id fixed by (tenant, practice, sender, type, source id, control id). */
export function addRecord(
  scope: MessageScope,
  type: RecordType,
  sourceId: string,
  partitionKey: string,
  /** One of the canonical data shapes (adapters/canonical/types.ts: PatientData, AppointmentData…). */
  data: object,
  op: DraftRecord['op'] = 'upsert',
): DraftRecord {
  const { ctx, msg, sourceSystem } = scope;
  const id = deterministicId(ctx.tenantId, ctx.practiceId, 'hl7v2', sourceSystem, msg.header.controlId, type, sourceId, op);
  const rec: DraftRecord = {
    id,
    type,
    op,
    occurredAt: scope.occurredAt,
    partitionKey,
    // the data interfaces have no index signature; a record's data is any of them
    data: data as Record<string, unknown>,
    source: { system: sourceSystem, adapter: 'hl7v2', sourceId, messageId: msg.header.controlId },
  };
  scope.records.push(rec);
  return rec;
}

/** Records a mapping error at a field (or, with field 0, at a whole missing segment). */
export function required(scope: MessageScope, segment: string, field: number, message: string, sequence = 1, hl7ErrorCode = '101'): void {
  scope.issues.push({
    severity: 'error',
    code: 'GW_MAP_FAILED',
    message,
    location: field > 0 ? { segment, sequence, field } : { segment, sequence },
    hl7ErrorCode,
  });
}

/**
 * The common start of a patient message: the scope (event time from EVN-2), then the PID mapped.
 * Returns the scope, segment context and patient, or the result to return when there is no usable PID.
 */
export function openPatientMessage(
  msg: Hl7Message,
  ctx: Hl7MapContext,
):
  | { ok: true; scope: MessageScope; sctx: SegmentMapContext; patient: NonNullable<ReturnType<typeof mapPid>> }
  | { ok: false; result: MapResult } {
  const scope = openScope(msg, ctx, firstSegment(msg, 'EVN')?.get(2));
  const pid = firstSegment(msg, 'PID');
  if (!pid) {
    required(scope, 'PID', 0, 'PID segment is missing', 1, '100');
    return { ok: false, result: { records: [], issues: scope.issues } };
  }
  const sctx: SegmentMapContext = { sourceSystem: scope.sourceSystem, profile: ctx.profile, issues: scope.issues };
  const patient = mapPid(pid, sctx);
  if (!patient) return { ok: false, result: { records: [], issues: scope.issues } };
  return { ok: true, scope, sctx, patient };
}
