/**
 * FHIR R4 scheduling: Appointment → `appointment`, Schedule → `schedule`, Slot → `slot`.
 *
 * A Slot names its Schedule and the Schedule names who and where (its actors), so the two map to
 * two record types the cloud joins by `slot.schedule` = the schedule's FHIR id, rather than one
 * record per slot that would need the Schedule in hand: a Slot arrives alone (a bulk export file,
 * a search page) as often as beside its Schedule. Where a Slot contains its Schedule, the slot
 * record carries the provider and location too.
 */
import type { MapResult } from '../contracts.ts';
import {
  arr,
  codingsOf,
  compact,
  conceptsOf,
  containedOf,
  fhirInstant,
  num,
  obj,
  patientRef,
  refTo,
  str,
  type R,
  type Ref,
} from './fhir-refs.ts';
import { identifiersOf } from './map-datatypes.ts';
import { fail, record, resourceIdOf, type FhirMapContext } from './map-record.ts';

const APPT_STATUS: Record<string, string> = {
  proposed: 'pending',
  pending: 'pending',
  waitlist: 'pending',
  booked: 'booked',
  arrived: 'arrived',
  'checked-in': 'arrived',
  fulfilled: 'fulfilled',
  cancelled: 'cancelled',
  noshow: 'noshow',
  'entered-in-error': 'cancelled',
};

/** R4 Slot.status (required binding `slotstatus`), kept as the source states it. */
const SLOT_STATUS = new Set(['busy', 'free', 'busy-unavailable', 'busy-tentative', 'entered-in-error']);

const PROVIDER_TYPES = ['Practitioner', 'PractitionerRole'] as const;

export function mapAppointment(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const parts = arr(res.participant);
  const patient = parts.map((p) => patientRef(res, p.actor, ctx, true)).find(Boolean);
  if (!patient) return fail('Appointment has no Patient participant');
  const start = fhirInstant(res.start);
  if (!start) return fail('Appointment has no start');
  const concepts = [...arr(res.serviceType), ...(obj(res.appointmentType) ? [res.appointmentType as R] : [])];
  const coding = concepts.flatMap((c) => codingsOf(c))[0];
  const text = concepts.map((c) => str(c.text)).find(Boolean);
  const data: R = {
    appointmentId: { system: `${ctx.system}/Appointment`, value: resourceIdOf(res, hash) },
    patient,
    status: APPT_STATUS[String(res.status)] ?? 'pending',
    start,
    visitType: coding ?? { code: text ?? 'unspecified' },
  };
  const end = fhirInstant(res.end);
  if (end) data.end = end;
  const minutes = num(res.minutesDuration);
  if (minutes !== undefined && minutes >= 0) data.durationMinutes = minutes;
  const practitioner = parts.map((p) => refTo(p.actor, ['Practitioner'], ctx, true)).find(Boolean);
  if (practitioner) data.provider = { system: practitioner.system, value: practitioner.value };
  const reason =
    arr(res.reasonCode)
      .map((c) => str(c.text) ?? str(arr(c.coding)[0]?.display))
      .find(Boolean) ?? str(res.description);
  if (reason) data.reason = reason;
  return { records: [record(ctx, res, 'appointment', data, patient, hash, start)], issues: [] };
}

/** The Schedule's actors split into providers (Practitioner, PractitionerRole) and locations. */
function actorsOf(schedule: R, ctx: FhirMapContext): { providers: Ref[]; locations: Ref[] } {
  const actors = arr(schedule.actor);
  return {
    providers: actors.map((a) => refTo(a, PROVIDER_TYPES, ctx, true)).filter((r): r is Ref => r !== undefined),
    locations: actors.map((a) => refTo(a, ['Location'], ctx, true)).filter((r): r is Ref => r !== undefined),
  };
}

export function mapSchedule(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('Schedule has neither id nor identifier');
  const { providers, locations } = actorsOf(res, ctx);
  const horizon = obj(res.planningHorizon);
  const data = compact({
    identifiers,
    active: typeof res.active === 'boolean' ? res.active : undefined,
    serviceCategories: conceptsOf(res.serviceCategory),
    serviceTypes: conceptsOf(res.serviceType),
    specialties: conceptsOf(res.specialty),
    providers,
    locations,
    planningStart: fhirInstant(horizon?.start),
    planningEnd: fhirInstant(horizon?.end),
  });
  return { records: [record(ctx, res, 'schedule', data, undefined, hash)], issues: [] };
}

export function mapSlot(res: R, ctx: FhirMapContext, hash: string): MapResult {
  // a contained Schedule has no id outside the slot: it is named by its identifier, if it has one
  const inner = containedOf(res, res.schedule);
  const innerId = arr(inner?.identifier).find((i) => str(i.value));
  const schedule =
    refTo(res.schedule, ['Schedule'], ctx) ??
    (innerId ? { system: str(innerId.system) ?? ctx.system, value: str(innerId.value)! } : undefined);
  if (!schedule) return fail('Slot has no schedule (a reference, or a contained Schedule with an identifier)');
  const status = str(res.status);
  if (!status || !SLOT_STATUS.has(status)) return fail('Slot status is missing or not an R4 slot status');
  const start = fhirInstant(res.start);
  const end = fhirInstant(res.end);
  if (!start || !end) return fail('Slot start or end is missing or not an instant');
  const actors = inner ? actorsOf(inner, ctx) : { providers: [], locations: [] };
  const data = compact({
    schedule,
    status,
    start,
    end,
    serviceCategories: conceptsOf(res.serviceCategory),
    serviceTypes: conceptsOf(res.serviceType),
    specialties: conceptsOf(res.specialty),
    appointmentType: codingsOf(res.appointmentType)[0],
    overbooked: typeof res.overbooked === 'boolean' ? res.overbooked : undefined,
    provider: actors.providers[0],
    location: actors.locations[0],
  });
  return { records: [record(ctx, res, 'slot', data, undefined, hash, start)], issues: [] };
}
