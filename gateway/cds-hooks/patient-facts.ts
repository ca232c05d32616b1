/**
 * What the CDS read model keeps of a canonical record, and how a patient's summary changes with
 * each one. Pure functions: no storage, no clock (the caller passes `now`).
 *
 * A patient's summary is small on purpose — the cards need the latest prescription of each kind
 * and the next appointments, nothing else: no Rx values, no names, no dates of birth. Types and
 * fields: ARCHITECTURE.md "Canonical records" (`spectacle-rx` / `contact-lens-rx`: `patient`,
 * `issuedAt`, `expiresAt?`; `appointment`: `patient`, `status`, `start`, `visitType`).
 *
 * "Order ready for pickup" is not here: no canonical record type carries an order or its status
 * yet. When one does, it becomes one more fact kind and one more card (cards.ts), nothing else.
 */
import type { CanonicalRecord, Reference } from '../../adapters/canonical/types.ts';

export const RxKind = { spectacle: 'spectacle', contactLens: 'contactLens' } as const;
export type RxKind = (typeof RxKind)[keyof typeof RxKind];

export interface RxEntry {
  /** The record's id (deterministic): a later delete or correction of the same record finds it. */
  id: string;
  issuedAt: string;
  expiresAt?: string;
  /** Tie-break between two prescriptions issued the same day: the later event wins. */
  occurredAt: string;
}

export interface AppointmentEntry {
  /** The appointment's identity in its source (`system|value`); sealed with the rest. */
  key: string;
  start: string;
  status: string;
  visit?: string;
  location?: string;
  provider?: string;
}

export interface PatientSummary {
  spectacle?: RxEntry;
  contactLens?: RxEntry;
  /** Upcoming appointments, nearest first (at most {@link MAX_APPOINTMENTS}). */
  appointments: AppointmentEntry[];
}

export type Fact =
  | { kind: 'rx'; patient: Reference; rx: RxKind; remove: boolean; entry: RxEntry }
  | { kind: 'appointment'; patient: Reference; remove: boolean; entry: AppointmentEntry }
  /** A patient record: the identifiers that name the same person (looked up by any of them). */
  | { kind: 'identity'; group: string; ids: Reference[]; remove: boolean };

export const MAX_APPOINTMENTS = 8;
/** Identifiers of one patient record the read model links (a PID-3 list is rarely longer than 4). */
export const MAX_IDENTIFIERS = 12;
const ACTIVE_APPOINTMENT = new Set(['booked', 'pending', 'arrived']);
/** FHIR VisionPrescription.status values that mean "not a prescription (any more)". */
const VOID_RX = new Set(['cancelled', 'entered-in-error', 'draft']);

type Data = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
function refOf(v: unknown): Reference | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const system = str((v as Data).system);
  const value = str((v as Data).value);
  return system && value ? { system, value } : undefined;
}

/** The fact a committed record carries for the read model, if any (most record types carry none). */
export function factOf(r: CanonicalRecord): Fact | undefined {
  const d = r.data as Data;
  switch (r.type) {
    case 'spectacle-rx':
    case 'contact-lens-rx': {
      const patient = refOf(d.patient);
      const issuedAt = str(d.issuedAt);
      if (!patient || !issuedAt) return undefined;
      const expiresAt = str(d.expiresAt);
      const status = str(d.status);
      return {
        kind: 'rx',
        patient,
        rx: r.type === 'spectacle-rx' ? 'spectacle' : 'contactLens',
        remove: r.op === 'delete' || (status !== undefined && VOID_RX.has(status)),
        entry: { id: r.id, issuedAt, ...(expiresAt ? { expiresAt } : {}), occurredAt: r.occurredAt },
      };
    }
    case 'appointment': {
      const patient = refOf(d.patient);
      const start = str(d.start);
      if (!patient || !start) return undefined;
      const idRef = refOf(d.appointmentId);
      const status = str(d.status) ?? 'booked';
      const visitType = d.visitType as Data | undefined;
      const location = d.location as Data | undefined;
      const provider = d.provider as Data | undefined;
      const visit = str(visitType?.display) ?? str(visitType?.code);
      const where = str(location?.display) ?? str(location?.code);
      const who = str(provider?.display);
      return {
        kind: 'appointment',
        patient,
        remove: r.op === 'delete' || !ACTIVE_APPOINTMENT.has(status),
        entry: {
          key: idRef ? `${idRef.system}|${idRef.value}` : `${r.source.system}|${r.source.sourceId}`,
          start,
          status,
          ...(visit ? { visit } : {}),
          ...(where ? { location: where } : {}),
          ...(who ? { provider: who } : {}),
        },
      };
    }
    case 'patient': {
      const ids: Reference[] = [];
      for (const list of [d.identifiers, d.mergedFrom]) {
        if (!Array.isArray(list)) continue;
        for (const x of list) {
          const ref = refOf(x);
          if (ref && ids.length < MAX_IDENTIFIERS) ids.push(ref);
        }
      }
      if (ids.length === 0) return undefined;
      return { kind: 'identity', group: `${r.source.system}|${r.source.sourceId}`, ids, remove: r.op === 'delete' };
    }
    default:
      return undefined;
  }
}

/** The later of two prescriptions (issue date, then the event time). */
export function newerRx(a: RxEntry | undefined, b: RxEntry | undefined): RxEntry | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.issuedAt !== b.issuedAt) return a.issuedAt > b.issuedAt ? a : b;
  return a.occurredAt >= b.occurredAt ? a : b;
}

/** Appointments from `nowMs` minus a day on (one under way still shows), nearest first, bounded. */
function upcoming(list: AppointmentEntry[], nowMs: number): AppointmentEntry[] {
  const from = nowMs - 86_400_000;
  return list
    .filter((a) => {
      const t = Date.parse(a.start);
      return Number.isFinite(t) && t >= from;
    })
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start))
    .slice(0, MAX_APPOINTMENTS);
}

/** The summary after one rx or appointment fact (the input is not changed). */
export function applyFact(s: PatientSummary, f: Exclude<Fact, { kind: 'identity' }>, nowMs: number): PatientSummary {
  if (f.kind === 'rx') {
    const current = s[f.rx];
    let next: RxEntry | undefined;
    if (f.remove) next = current?.id === f.entry.id ? undefined : current;
    // the same record corrected (a new issue date too) replaces itself; another one only when newer
    else next = current?.id === f.entry.id ? f.entry : newerRx(current, f.entry);
    const out: PatientSummary = { ...s };
    if (next) out[f.rx] = next;
    else delete out[f.rx];
    return out;
  }
  const others = s.appointments.filter((a) => a.key !== f.entry.key);
  return { ...s, appointments: upcoming(f.remove ? others : [...others, f.entry], nowMs) };
}

/** One summary of several (a patient known under several identifiers): the latest Rx of each kind, every appointment. */
export function mergeSummaries(list: readonly PatientSummary[], nowMs: number): PatientSummary | undefined {
  if (list.length === 0) return undefined;
  const seen = new Map<string, AppointmentEntry>();
  let spectacle: RxEntry | undefined;
  let contactLens: RxEntry | undefined;
  for (const s of list) {
    spectacle = newerRx(spectacle, s.spectacle);
    contactLens = newerRx(contactLens, s.contactLens);
    for (const a of s.appointments) seen.set(a.key, a);
  }
  return {
    ...(spectacle ? { spectacle } : {}),
    ...(contactLens ? { contactLens } : {}),
    appointments: upcoming([...seen.values()], nowMs),
  };
}

export const isEmptySummary = (s: PatientSummary): boolean => !s.spectacle && !s.contactLens && s.appointments.length === 0;
