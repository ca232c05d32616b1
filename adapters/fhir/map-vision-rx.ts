/**
 * FHIR R4 VisionPrescription → `spectacle-rx` or `contact-lens-rx`.
 *
 * One resource is one prescription: a contact-lens Rx when any lens specification's product is
 * `contact` (R4 example code system `ex-visionprescriptionproduct`), else a spectacle Rx.
 * Per eye: `sphere` (spectacles) or `power` (R4 states a contact lens's power there, not in
 * `sphere`), cylinder, axis, add, prisms (amount + base up/down/in/out), back curve → `baseCurve`,
 * diameter, brand, colour, and `duration` (how long a lens is worn before it is replaced) →
 * `replacement`. Values are normalised as every Rx is (0.25 D steps, axis 1–180, minus cylinder).
 *
 * R4 has no expiry element: `expiresAt` comes from an extension whose URL names an expiry
 * (`…expir…`, a date or dateTime value), else from `dateWritten` plus the context's configured
 * validity; with neither it is left out rather than guessed.
 */
import { normaliseEye, type EyeRx, type PrismBase } from '../canonical/rx-normalize.ts';
import type { MapResult } from '../contracts.ts';
import { arr, codingsOf, compact, fhirDate, num, obj, patientRef, refTo, str, type R } from './fhir-refs.ts';
import { fail, record, warning, type FhirMapContext } from './map-record.ts';

const PRISM_BASES: ReadonlySet<string> = new Set(['up', 'down', 'in', 'out']);

/** What a prescription can say (the canonical schema's ranges): a value outside is a typo or a unit mix-up, not an Rx. */
const RANGES: ReadonlyArray<[keyof EyeRx, number, number]> = [
  ['sphere', -40, 40],
  ['cylinder', -40, 40],
  ['add', 0, 6],
  ['baseCurve', 5, 12],
  ['diameter', 5, 25],
];

function outOfRange(eye: EyeRx): string | undefined {
  for (const [field, min, max] of RANGES) {
    const v = eye[field];
    if (typeof v === 'number' && (v < min || v > max)) return field;
  }
  return eye.prisms?.some((p) => p.amount < 0 || p.amount > 30) ? 'prism' : undefined;
}

/** `YYYY-MM-DD` plus whole months, the day clamped to the month's end (31 Jan + 1 month = 28/29 Feb). */
export function plusMonths(date: string, months: number): string {
  const [y, m, d] = date.split('-').map(Number);
  const first = new Date(Date.UTC(y, m - 1 + months, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  first.setUTCDate(Math.min(d, last));
  return first.toISOString().slice(0, 10);
}

function expiryExtension(res: R): string | undefined {
  for (const e of arr(res.extension)) {
    if (!/expir/i.test(str(e.url) ?? '')) continue;
    const d = fhirDate(e.valueDate) ?? fhirDate(e.valueDateTime);
    if (d && d.length === 10) return d;
  }
  return undefined;
}

function eyeOf(s: R): { raw: EyeRx; extra: R } | undefined {
  // contact lenses state their power in `power` (FHIR R4), spectacle lenses in `sphere`
  const sphere = num(s.sphere) ?? num(s.power);
  if (sphere === undefined) return undefined;
  const raw: EyeRx = { sphere };
  if (num(s.cylinder) !== undefined) raw.cylinder = num(s.cylinder);
  if (num(s.axis) !== undefined) raw.axis = num(s.axis);
  if (num(s.add) !== undefined) raw.add = num(s.add);
  const prisms = arr(s.prism)
    .filter((p) => num(p.amount) !== undefined && PRISM_BASES.has(String(p.base)))
    .map((p) => ({ amount: p.amount as number, base: p.base as PrismBase }));
  if (prisms.length) raw.prisms = prisms;
  if (num(s.backCurve) !== undefined) raw.baseCurve = num(s.backCurve);
  if (num(s.diameter) !== undefined) raw.diameter = num(s.diameter);
  if (str(s.brand)) raw.brand = str(s.brand);
  const duration = obj(s.duration);
  const value = num(duration?.value);
  const unit = str(duration?.unit) ?? str(duration?.code);
  const extra = compact({
    color: str(s.color),
    replacement: value !== undefined && value > 0 && unit ? { value, unit } : undefined,
  });
  return { raw, extra };
}

export function mapVisionPrescription(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.patient, ctx);
  if (!patient) return fail('VisionPrescription has no patient');
  const issuedAt = [fhirDate(res.dateWritten), fhirDate(res.created)].find((d) => d?.length === 10);
  if (!issuedAt) return fail('VisionPrescription has no dateWritten');
  const specs = arr(res.lensSpecification);
  const contact = specs.some((s) => codingsOf(s.product).some((c) => c.code === 'contact'));
  const issues: MapResult['issues'] = [];
  const eyes: Partial<Record<'right' | 'left', R>> = {};
  for (const s of specs) {
    const side = s.eye === 'right' || s.eye === 'left' ? s.eye : undefined;
    const eye = side ? eyeOf(s) : undefined;
    if (!side || !eye) continue;
    const n = normaliseEye(eye.raw, 'minus');
    for (const p of n.problems) issues.push(warning(`${side}.${p.field} ${p.problem}`));
    const bad = outOfRange(n.eye);
    if (bad) return fail(`VisionPrescription ${side}.${bad} is outside the range of a prescription`, issues);
    eyes[side] = { ...n.eye, ...eye.extra };
  }
  if (!eyes.right || !eyes.left) return fail('VisionPrescription needs a sphere (or contact lens power) for each eye', issues);
  const data: R = {
    patient,
    issuedAt,
    cylinderConvention: 'minus',
    right: eyes.right,
    left: eyes.left,
  };
  const months = contact ? ctx.rxValidityMonths?.contactLens : ctx.rxValidityMonths?.spectacle;
  const expiresAt = expiryExtension(res) ?? (months && months > 0 ? plusMonths(issuedAt, months) : undefined);
  if (expiresAt) data.expiresAt = expiresAt;
  const prescriber = refTo(res.prescriber, ['Practitioner', 'PractitionerRole'], ctx);
  if (prescriber) data.prescriber = { system: prescriber.system, value: prescriber.value };
  const status = str(res.status);
  if (status) data.status = status;
  return {
    records: [record(ctx, res, contact ? 'contact-lens-rx' : 'spectacle-rx', data, patient, hash, `${issuedAt}T00:00:00Z`)],
    issues,
  };
}
