/**
 * FHIR R4 resources to canonical records: Patient, Appointment and VisionPrescription (the rest of
 * FHIR comes with the FHIR API adapter). Patients are referred to by their FHIR id under the
 * source's system (`<system>/Patient`), so records from one server link up.
 */
import { deterministicId } from '../canonical/record-id.ts';
import { normaliseEye, type EyeRx, type PrismBase } from '../canonical/rx-normalize.ts';
import type { DraftRecord, MapResult } from '../contracts.ts';

type R = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const arr = (v: unknown): R[] => (Array.isArray(v) ? (v as R[]) : []);

export const FHIR_RESOURCES = ['Patient', 'Appointment', 'VisionPrescription'] as const;

export interface FhirMapContext {
  system: string;
  adapter: string;
  now: () => number;
}

function refId(ref: unknown, type: string): string | undefined {
  const r = str((ref as R | undefined)?.reference);
  if (!r) return undefined;
  const m = new RegExp(`(?:^|/)${type}/([^/]+)(?:/_history/.*)?$`).exec(r);
  return m?.[1] ?? (r.startsWith('urn:uuid:') ? r.slice(9) : undefined);
}

function record(
  ctx: FhirMapContext,
  res: R,
  type: DraftRecord['type'],
  data: R,
  patientId: string | undefined,
  contentHash: string,
  occurredAt?: string,
): DraftRecord {
  const rt = String(res.resourceType);
  const id = String(res.id ?? contentHash);
  return {
    id: deterministicId('fhir', ctx.system, rt, id, contentHash),
    type,
    op: 'upsert',
    source: { system: ctx.system, adapter: ctx.adapter, sourceId: `${rt}/${id}` },
    occurredAt: occurredAt ?? new Date(ctx.now()).toISOString(),
    partitionKey: patientId ? `patient:${ctx.system}/Patient|${patientId}` : `${ctx.system}:${rt}/${id}`,
    data,
  };
}

const GENDER: Record<string, string> = { male: 'male', female: 'female', other: 'other', unknown: 'unknown' };
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

function mapPatient(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const id = str(res.id);
  const identifiers = arr(res.identifier)
    .map((i) => ({ system: str(i.system) ?? ctx.system, value: str(i.value), type: str(arr((i.type as R | undefined)?.coding)[0]?.code) }))
    .filter((i) => i.value);
  if (id) identifiers.unshift({ system: `${ctx.system}/Patient`, value: id, type: 'FHIR' });
  if (identifiers.length === 0)
    return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: 'Patient has neither id nor identifier' }] };
  const n = arr(res.name).find((x) => x.use === 'official') ?? arr(res.name)[0];
  const data: R = { identifiers: identifiers.map((i) => Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined))) };
  if (n) {
    const name: R = {};
    if (str(n.family)) name.family = str(n.family);
    const given = (Array.isArray(n.given) ? n.given : []).map(str).filter(Boolean);
    if (given.length) name.given = given;
    if (Array.isArray(n.prefix) && str(n.prefix[0])) name.prefix = str(n.prefix[0]);
    if (Array.isArray(n.suffix) && str(n.suffix[0])) name.suffix = str(n.suffix[0]);
    if (Object.keys(name).length) data.name = name;
  }
  if (str(res.birthDate)) data.birthDate = str(res.birthDate);
  if (str(res.gender)) data.sex = GENDER[str(res.gender)!] ?? 'unknown';
  const addresses = arr(res.address).map((a) =>
    Object.fromEntries(
      Object.entries({
        use: str(a.use),
        lines: (Array.isArray(a.line) ? a.line : []).map(str).filter(Boolean),
        city: str(a.city),
        state: str(a.state),
        postalCode: str(a.postalCode),
        country: str(a.country),
      }).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)),
    ),
  );
  if (addresses.some((a) => Object.keys(a).length)) data.addresses = addresses.filter((a) => Object.keys(a).length);
  const phones = arr(res.telecom)
    .filter((t) => t.system === 'phone' && str(t.value))
    .map((t) => (str(t.use) ? { use: str(t.use), value: str(t.value) } : { value: str(t.value) }));
  if (phones.length) data.phones = phones;
  const emails = arr(res.telecom)
    .filter((t) => t.system === 'email' && str(t.value))
    .map((t) => str(t.value));
  if (emails.length) data.emails = emails;
  if (typeof res.deceasedBoolean === 'boolean') data.deceased = res.deceasedBoolean;
  else if (str(res.deceasedDateTime)) data.deceased = true;
  return { records: [record(ctx, res, 'patient', data, id, hash)], issues: [] };
}

function mapAppointment(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const parts = arr(res.participant);
  const patientId = parts.map((p) => refId(p.actor, 'Patient')).find(Boolean);
  if (!patientId)
    return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: 'Appointment has no Patient participant' }] };
  if (!str(res.start)) return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: 'Appointment has no start' }] };
  const coding = [...arr(res.serviceType), ...(res.appointmentType ? [res.appointmentType as R] : [])]
    .flatMap((c) => arr(c.coding))
    .find((c) => str(c.code));
  const text = [...arr(res.serviceType), ...(res.appointmentType ? [res.appointmentType as R] : [])].map((c) => str(c.text)).find(Boolean);
  const data: R = {
    appointmentId: { system: `${ctx.system}/Appointment`, value: String(res.id ?? hash) },
    patient: { system: `${ctx.system}/Patient`, value: patientId },
    status: APPT_STATUS[String(res.status)] ?? 'pending',
    start: str(res.start),
    visitType: coding
      ? Object.fromEntries(
          Object.entries({ system: str(coding.system), code: str(coding.code), display: str(coding.display) }).filter(([, v]) => v),
        )
      : { code: text ?? 'unspecified' },
  };
  if (str(res.end)) data.end = str(res.end);
  if (typeof res.minutesDuration === 'number') data.durationMinutes = res.minutesDuration;
  const practitioner = parts.map((p) => refId(p.actor, 'Practitioner')).find(Boolean);
  if (practitioner) data.provider = { system: `${ctx.system}/Practitioner`, value: practitioner };
  const reason =
    arr(res.reasonCode)
      .map((c) => str(c.text) ?? str(arr(c.coding)[0]?.display))
      .find(Boolean) ?? str(res.description);
  if (reason) data.reason = reason;
  return { records: [record(ctx, res, 'appointment', data, patientId, hash, str(res.start))], issues: [] };
}

function mapVisionPrescription(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patientId = refId(res.patient, 'Patient');
  if (!patientId)
    return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: 'VisionPrescription has no patient' }] };
  const issuedAt = str(res.dateWritten)?.slice(0, 10) ?? str(res.created)?.slice(0, 10);
  if (!issuedAt)
    return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: 'VisionPrescription has no dateWritten' }] };
  const specs = arr(res.lensSpecification);
  const contact = specs.some((s) => arr((s.product as R | undefined)?.coding).some((c) => c.code === 'contact'));
  const issues: MapResult['issues'] = [];
  const eyes: Partial<Record<'right' | 'left', EyeRx>> = {};
  for (const s of specs) {
    const side = s.eye === 'right' || s.eye === 'left' ? s.eye : undefined;
    // contact lenses state their power in `power` (FHIR R4), spectacle lenses in `sphere`
    const sphere = typeof s.sphere === 'number' ? s.sphere : typeof s.power === 'number' ? s.power : undefined;
    if (!side || sphere === undefined) continue;
    const raw: EyeRx = { sphere };
    if (typeof s.cylinder === 'number') raw.cylinder = s.cylinder;
    if (typeof s.axis === 'number') raw.axis = s.axis;
    if (typeof s.add === 'number') raw.add = s.add;
    const prisms = arr(s.prism)
      .filter((p) => typeof p.amount === 'number' && ['up', 'down', 'in', 'out'].includes(String(p.base)))
      .map((p) => ({ amount: p.amount as number, base: p.base as PrismBase }));
    if (prisms.length) raw.prisms = prisms;
    if (typeof s.backCurve === 'number') raw.baseCurve = s.backCurve;
    if (typeof s.diameter === 'number') raw.diameter = s.diameter;
    if (str(s.brand)) raw.brand = str(s.brand);
    const n = normaliseEye(raw, 'minus');
    for (const p of n.problems) issues.push({ severity: 'warning', code: 'GW_MAP_FAILED', message: `${side}.${p.field} ${p.problem}` });
    eyes[side] = n.eye;
  }
  if (!eyes.right || !eyes.left)
    return {
      records: [],
      issues: [
        ...issues,
        { severity: 'error', code: 'GW_MAP_FAILED', message: 'VisionPrescription needs a sphere (or contact lens power) for each eye' },
      ],
    };
  const data: R = {
    patient: { system: `${ctx.system}/Patient`, value: patientId },
    issuedAt,
    cylinderConvention: 'minus',
    right: eyes.right,
    left: eyes.left,
  };
  const prescriber = refId(res.prescriber, 'Practitioner');
  if (prescriber) data.prescriber = { system: `${ctx.system}/Practitioner`, value: prescriber };
  return {
    records: [record(ctx, res, contact ? 'contact-lens-rx' : 'spectacle-rx', data, patientId, hash, `${issuedAt}T00:00:00Z`)],
    issues,
  };
}

/** Maps one FHIR resource; other resource types are `unsupported` (counted, not errors). */
export function mapFhirResource(res: R, ctx: FhirMapContext, contentHash: string): MapResult {
  switch (res.resourceType) {
    case 'Patient':
      return mapPatient(res, ctx, contentHash);
    case 'Appointment':
      return mapAppointment(res, ctx, contentHash);
    case 'VisionPrescription':
      return mapVisionPrescription(res, ctx, contentHash);
    default:
      return { unsupported: String(res.resourceType ?? 'unknown'), records: [], issues: [] };
  }
}
