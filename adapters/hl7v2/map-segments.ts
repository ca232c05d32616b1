/**
 * Segment-level mapping shared by the message mappers: PID → patient data, IN1 → coverage data,
 * XCN → provider data. Pure functions; problems are returned as issues with the field at fault,
 * never with the value (PHI).
 */
import type { Identifier, PatientData, Reference } from '../canonical/types.ts';
import type { MapIssue } from '../contracts.ts';
import type { SegmentReader } from './hl7-message.ts';
import { hl7Date } from './hl7-datetime.ts';
import type { Hl7Profile } from './profiles.ts';

export interface SegmentMapContext {
  /** `APP@FACILITY` of the sender, the default identifier system. */
  sourceSystem: string;
  profile: Hl7Profile;
  issues: MapIssue[];
}

const SEX: Record<string, PatientData['sex']> = { F: 'female', M: 'male', O: 'other', A: 'other', N: 'other', X: 'other', U: 'unknown' };
const PHONE_USE: Record<string, string> = {
  PRN: 'home',
  ORN: 'other',
  WPN: 'work',
  VHN: 'vacation',
  ASN: 'answering-service',
  EMR: 'emergency',
  NET: 'email',
  BPN: 'pager',
  PRS: 'mobile',
};

/** CX (PID-3 etc.) repetitions → identifiers; the system is the assigning authority or the sender. */
export function readIdentifiers(reps: string[][], ctx: SegmentMapContext): Identifier[] {
  const out: Identifier[] = [];
  for (const c of reps) {
    const value = (c[0] ?? '').trim();
    if (!value) continue;
    const authority = (c[3] ?? '').split(/[&]/)[0]?.trim();
    const id: Identifier = { system: authority || ctx.sourceSystem, value };
    const type = (c[4] ?? '').trim();
    if (type) id.type = type;
    out.push(id);
  }
  return out;
}

/** EI (entity identifier: id^namespace^universal id^type) repetitions → identifiers. */
export function readEntityIds(reps: string[][], ctx: SegmentMapContext): Identifier[] {
  const out: Identifier[] = [];
  for (const c of reps) {
    const value = (c[0] ?? '').trim();
    if (value) out.push({ system: (c[1] ?? '').trim() || (c[2] ?? '').trim() || ctx.sourceSystem, value });
  }
  return out;
}

/** The chart identifier: the first whose type the profile prefers, else the first. */
export function primaryIdentifier(ids: Identifier[], profile: Hl7Profile): Identifier | undefined {
  for (const t of profile.patientIdTypes) {
    const hit = ids.find((i) => i.type?.toUpperCase() === t);
    if (hit) return hit;
  }
  return ids[0];
}

export function patientRef(id: Identifier): Reference {
  return { system: id.system, value: id.value };
}

function nonEmpty<T extends Record<string, unknown>>(o: T): T | undefined {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const k in o) {
    const v = o[k];
    if (v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
    any = true;
  }
  return any ? (out as T) : undefined;
}

/** XPN → name (family^given^middle^suffix^prefix). */
export function readName(c: string[] | undefined): PatientData['name'] {
  if (!c) return undefined;
  const given = [c[1], c[2]].map((x) => (x ?? '').trim()).filter(Boolean);
  return nonEmpty({
    family: (c[0] ?? '').split('&')[0].trim() || undefined,
    given,
    suffix: (c[3] ?? '').trim() || undefined,
    prefix: (c[4] ?? '').trim() || undefined,
  });
}

/** PID → patient data. PID-3 is required; the caller reports it when absent. */
export function mapPid(pid: SegmentReader, ctx: SegmentMapContext): { data: PatientData; primary: Identifier } | undefined {
  const ids = readIdentifiers(pid.reps(3), ctx);
  // v2.1–2.3 senders often put the chart number in PID-2 (external id) or PID-4 (alternate id)
  if (ids.length === 0) ids.push(...readIdentifiers(pid.reps(2), ctx), ...readIdentifiers(pid.reps(4), ctx));
  const primary = primaryIdentifier(ids, ctx.profile);
  if (!primary) {
    ctx.issues.push({
      severity: 'error',
      code: 'GW_MAP_FAILED',
      message: 'PID-3 patient identifier is missing',
      location: { segment: 'PID', sequence: pid.sequence, field: 3 },
      hl7ErrorCode: '101',
    });
    return undefined;
  }
  const data: PatientData = { identifiers: ids };
  const name = readName(pid.reps(5)[0]);
  if (name) data.name = name;
  const dobRaw = pid.get(7);
  if (dobRaw) {
    const dob = hl7Date(dobRaw);
    if (dob && dob.length === 10) data.birthDate = dob;
    else
      ctx.issues.push({
        severity: 'warning',
        code: 'GW_MAP_FAILED',
        message: 'PID-7 birth date is not a valid date; left out',
        location: { segment: 'PID', sequence: pid.sequence, field: 7 },
        hl7ErrorCode: '102',
      });
  }
  const sex = SEX[pid.get(8).toUpperCase()];
  if (sex) data.sex = sex;
  const addresses = pid
    .reps(11)
    .map((c) =>
      nonEmpty({
        use: addressUse(c[6]),
        lines: [c[0], c[1]].map((x) => (x ?? '').split('&')[0].trim()).filter(Boolean),
        city: (c[2] ?? '').trim() || undefined,
        state: (c[3] ?? '').trim() || undefined,
        postalCode: (c[4] ?? '').trim() || undefined,
        country: (c[5] ?? '').trim() || undefined,
      }),
    )
    .filter((a) => a !== undefined);
  if (addresses.length) data.addresses = addresses;
  const phones: NonNullable<PatientData['phones']> = [];
  const emails: string[] = [];
  for (const [field, fallbackUse] of [
    [13, 'home'],
    [14, 'work'],
  ] as const) {
    for (const c of pid.reps(field)) {
      const email = (c[3] ?? '').trim();
      if (email || (c[1] ?? '') === 'NET') {
        if (email || c[0]) emails.push(email || c[0].trim());
        continue;
      }
      const number =
        (c[0] ?? '').trim() ||
        [c[5], c[6]]
          .map((x) => (x ?? '').trim())
          .filter(Boolean)
          .join('');
      if (!number) continue;
      phones.push({ use: PHONE_USE[(c[1] ?? '').toUpperCase()] ?? (c[2] === 'CP' ? 'mobile' : fallbackUse), value: number });
    }
  }
  if (phones.length) data.phones = phones;
  if (emails.length) data.emails = emails;
  const deceased = pid.get(30).toUpperCase();
  if (deceased === 'Y') data.deceased = true;
  else if (deceased === 'N') data.deceased = false;
  return { data, primary };
}

function addressUse(code: string | undefined): string | undefined {
  switch ((code ?? '').toUpperCase()) {
    case 'H':
      return 'home';
    case 'B':
    case 'O':
      return 'work';
    case 'M':
      return 'mailing';
    case 'C':
      return 'temporary';
    default:
      return undefined;
  }
}

export interface CoverageDraft {
  sourceId: string;
  data: Record<string, unknown>;
}

/** IN1 → coverage data; skipped (with a warning) when no payer is named. */
export function mapIn1(in1: SegmentReader, patient: Reference, ctx: SegmentMapContext): CoverageDraft | undefined {
  const payerId = in1.get(3);
  const payerName = in1.get(4) || payerId;
  if (!payerName) {
    ctx.issues.push({
      severity: 'warning',
      code: 'GW_MAP_FAILED',
      message: 'IN1-3/IN1-4 insurance company is missing; coverage left out',
      location: { segment: 'IN1', sequence: in1.sequence, field: 4 },
      hl7ErrorCode: '101',
    });
    return undefined;
  }
  const priority = Number.parseInt(in1.get(1), 10);
  const data: Record<string, unknown> = { patient, payer: nonEmpty({ id: payerId || undefined, name: payerName }) };
  const plan = in1.get(2) || in1.get(15);
  if (plan) data.planName = plan;
  const member = in1.get(36) || in1.get(49);
  if (member) data.memberId = member;
  const group = in1.get(8);
  if (group) data.groupNumber = group;
  const rel = in1.get(17);
  if (rel) data.subscriberRelationship = rel;
  if (Number.isInteger(priority) && priority > 0) data.priority = priority;
  const start = hl7Date(in1.get(12));
  if (start) data.start = start;
  const end = hl7Date(in1.get(13));
  if (end) data.end = end;
  return { sourceId: `${payerId || payerName}|${member || group || in1.sequence}`, data };
}

export interface ProviderDraft {
  sourceId: string;
  data: Record<string, unknown>;
  ref: Reference & { display?: string };
}

/** XCN (id^family^given^middle^suffix^prefix^degree^source table^assigning authority) → provider. */
export function mapXcn(c: string[] | undefined, role: string, ctx: SegmentMapContext): ProviderDraft | undefined {
  if (!c) return undefined;
  const value = (c[0] ?? '').trim();
  if (!value) return undefined;
  const system = (c[8] ?? '').split('&')[0].trim() || ctx.sourceSystem;
  const name = nonEmpty({
    family: (c[1] ?? '').split('&')[0].trim() || undefined,
    given: [c[2], c[3]].map((x) => (x ?? '').trim()).filter(Boolean),
    suffix: (c[4] ?? '').trim() || undefined,
    prefix: (c[5] ?? '').trim() || undefined,
  });
  const data: Record<string, unknown> = { identifiers: [{ system, value }], role };
  if (name) data.name = name;
  const display = [c[5], c[2], c[1]]
    .map((x) => (x ?? '').trim())
    .filter(Boolean)
    .join(' ');
  return { sourceId: `${system}|${value}`, data, ref: display ? { system, value, display } : { system, value } };
}
