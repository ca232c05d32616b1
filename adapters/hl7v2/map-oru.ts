/**
 * ORU^R01 eye-exam results → `eye-exam-observation` records and, where one OBR group carries a
 * refraction for both eyes, a `spectacle-rx` (or `contact-lens-rx`) normalised as the
 * architecture asks (0.25 D steps, axis 1–180, the profile's cylinder convention).
 *
 * Which OBX codes mean what is data (EYE_CODES, extendable per profile): SNOMED CT codes as the
 * HL7 "Eyes on FHIR" IG uses them (251795007 sphere, 251797004 cylinder, 251799001 axis,
 * 41633001 IOP, visual acuity 251739003/397536007/419775003/413078003) and the plain-text codes
 * optical PMS exports use (SPH, CYL, AXIS, ADD, PRISM, BASE, PD, BC, DIA). OBX rows with no eye
 * code (a lab result) are not eye-exam data: a message with none is "not mapped" (ignored).
 * Laterality: OBX-20 (SNOMED 24028007 right, 7771000 left, 51440002 both, or OD/OS/OU, R/L/B),
 * else OBX-4, else an OD/OS prefix of OBX-3's text.
 */
import type { MapResult } from '../contracts.ts';
import { binocularPd, normaliseEye, parseDiopter, parsePrismBase, type EyeRx } from '../canonical/rx-normalize.ts';
import type { Hl7Message, SegmentReader } from './hl7-message.ts';
import { firstSegment, reader } from './hl7-message.ts';
import { hl7Date, hl7Instant } from './hl7-datetime.ts';
import { mapPid, patientRef, type SegmentMapContext } from './map-segments.ts';
import { addRecord, openScope, required, type Hl7MapContext } from './message-mapper.ts';
import { partitionOf } from './map-adt.ts';

type Eye = 'right' | 'left' | 'both';
type RxField = 'sphere' | 'cylinder' | 'axis' | 'add' | 'prism' | 'prismBase' | 'pd' | 'baseCurve' | 'diameter';
interface EyeCode {
  system: string;
  display: string;
  rx?: RxField;
}

/** OBX-3 codes that are eye-exam data, by code (upper case). */
export const EYE_CODES: Readonly<Record<string, EyeCode>> = {
  '251795007': { system: 'http://snomed.info/sct', display: 'Power of sphere', rx: 'sphere' },
  '251797004': { system: 'http://snomed.info/sct', display: 'Power of cylinder', rx: 'cylinder' },
  '251799001': { system: 'http://snomed.info/sct', display: 'Axis of cylinder', rx: 'axis' },
  '41633001': { system: 'http://snomed.info/sct', display: 'Intraocular pressure' },
  '251739003': { system: 'http://snomed.info/sct', display: 'Distance visual acuity' },
  '397536007': { system: 'http://snomed.info/sct', display: 'Corrected visual acuity' },
  '419775003': { system: 'http://snomed.info/sct', display: 'Best corrected visual acuity' },
  '413078003': { system: 'http://snomed.info/sct', display: 'Visual acuity' },
  SPH: { system: 'local', display: 'Sphere', rx: 'sphere' },
  SPHERE: { system: 'local', display: 'Sphere', rx: 'sphere' },
  CYL: { system: 'local', display: 'Cylinder', rx: 'cylinder' },
  CYLINDER: { system: 'local', display: 'Cylinder', rx: 'cylinder' },
  AXIS: { system: 'local', display: 'Axis', rx: 'axis' },
  ADD: { system: 'local', display: 'Add', rx: 'add' },
  PRISM: { system: 'local', display: 'Prism', rx: 'prism' },
  BASE: { system: 'local', display: 'Prism base', rx: 'prismBase' },
  PD: { system: 'local', display: 'Pupillary distance', rx: 'pd' },
  BC: { system: 'local', display: 'Base curve', rx: 'baseCurve' },
  DIA: { system: 'local', display: 'Diameter', rx: 'diameter' },
  IOP: { system: 'local', display: 'Intraocular pressure' },
  VA: { system: 'local', display: 'Visual acuity' },
  EXP: { system: 'local', display: 'Prescription expiry' },
  EXPIRY: { system: 'local', display: 'Prescription expiry' },
};

/** Codes whose value is the prescription's expiry date (any laterality). */
const EXPIRY_CODES = new Set(['EXP', 'EXPIRY']);

const EYE_WORDS: Record<string, Eye> = {
  '24028007': 'right',
  '7771000': 'left',
  '51440002': 'both',
  OD: 'right',
  OS: 'left',
  OU: 'both',
  R: 'right',
  L: 'left',
  B: 'both',
  RE: 'right',
  LE: 'left',
  BE: 'both',
  RIGHT: 'right',
  LEFT: 'left',
  BOTH: 'both',
};

function eyeOf(obx: SegmentReader): Eye | undefined {
  for (const t of [obx.get(20, 1), obx.get(20, 2), obx.get(4)]) {
    const e = EYE_WORDS[t.trim().toUpperCase()];
    if (e) return e;
  }
  const prefix = /^(OD|OS|OU|RE|LE|RIGHT|LEFT)\b/i.exec(obx.get(3, 2).trim());
  return prefix ? EYE_WORDS[prefix[1].toUpperCase()] : undefined;
}

interface Group {
  obr?: SegmentReader;
  obrIndex: number;
  rx: Record<'right' | 'left', Partial<Record<RxField, string>>>;
  at?: string;
  contact: boolean;
  binocularPd?: string;
  expires?: string;
}

export function mapOru(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  if (msg.header.triggerEvent !== 'R01') return { unsupported: `ORU^${msg.header.triggerEvent || '?'}`, records: [], issues: [] };
  const scope = openScope(msg, ctx);
  const pidSeg = firstSegment(msg, 'PID');
  if (!pidSeg) {
    required(scope, 'PID', 0, 'PID segment is missing', 1, '100');
    return { records: [], issues: scope.issues };
  }
  const sctx: SegmentMapContext = { sourceSystem: scope.sourceSystem, profile: ctx.profile, issues: scope.issues };
  const groups: Group[] = [];
  let current: Group = { obrIndex: 0, rx: { right: {}, left: {} }, contact: false };
  let obxSeq = 0;
  let eyeRows = 0;
  let patient: ReturnType<typeof mapPid>;
  for (const seg of msg.segments) {
    if (seg.name === 'OBR') {
      if (current.obr || Object.keys(current.rx.right).length || Object.keys(current.rx.left).length) groups.push(current);
      const obr = reader(msg, seg, groups.length + 1);
      current = {
        obr,
        obrIndex: groups.length + 1,
        rx: { right: {}, left: {} },
        contact: /CONTACT|\bCL\b/i.test(obr.get(4, 2) + ' ' + obr.get(4, 1)),
      };
      continue;
    }
    if (seg.name !== 'OBX') continue;
    const obx = reader(msg, seg, ++obxSeq);
    const code = obx.get(3, 1).trim().toUpperCase();
    const known = (EYE_CODES[code] ?? ctx.profile.eyeCodes[code]) as EyeCode | undefined;
    if (!known) continue;
    eyeRows++;
    patient ??= mapPid(pidSeg, sctx);
    if (!patient) return { records: [], issues: scope.issues };
    const ref = patientRef(patient.primary);
    if (EXPIRY_CODES.has(code)) {
      current.expires = hl7Date(obx.get(5));
      continue;
    }
    const eye = eyeOf(obx);
    if (!eye) {
      scope.issues.push({
        severity: 'warning',
        code: 'GW_MAP_FAILED',
        message: `OBX ${obxSeq}: no laterality (OBX-20, OBX-4 or an OD/OS prefix); left out`,
        location: { segment: 'OBX', sequence: obxSeq, field: 20 },
      });
      continue;
    }
    const raw = obx.get(5).trim();
    if (!raw) continue;
    const at = hl7Instant(obx.get(14) || current.obr?.get(7) || '', ctx.timezone) ?? scope.occurredAt;
    current.at ??= at;
    const num = obx.get(2).toUpperCase() === 'NM' ? Number(raw) : NaN;
    const data: Record<string, unknown> = {
      patient: ref,
      code: {
        system: known.system === 'local' ? `${scope.sourceSystem}:codes` : known.system,
        code,
        display: obx.get(3, 2) || known.display,
      },
      eye,
      value: Number.isFinite(num) ? num : raw,
      observedAt: at,
    };
    const unit = obx.get(6, 1);
    if (unit) data.unit = unit;
    addRecord(scope, 'eye-exam-observation', `${current.obrIndex}|${obx.get(1) || obxSeq}|${code}|${eye}`, partitionOf(ref), data);
    if (known.rx && eye !== 'both') current.rx[eye][known.rx] = raw;
    else if (known.rx === 'pd') current.binocularPd = raw;
    if (known.rx === 'baseCurve' || known.rx === 'diameter') current.contact = true;
  }
  groups.push(current);
  if (eyeRows === 0) return { unsupported: 'ORU^R01 (no eye-exam results)', records: [], issues: [] };
  if (patient) {
    const ref = patientRef(patient.primary);
    for (const g of groups) addRx(scope, g, ref, ctx);
  }
  return { records: scope.records, issues: scope.issues };
}

function eyeRx(fields: Partial<Record<RxField, string>>): EyeRx | undefined {
  const sphere = parseDiopter(fields.sphere ?? '');
  if (sphere === undefined) return undefined;
  const eye: EyeRx = { sphere };
  const cyl = parseDiopter(fields.cylinder ?? '');
  if (cyl !== undefined) eye.cylinder = cyl;
  const axis = Number(fields.axis);
  if (fields.axis && Number.isFinite(axis)) eye.axis = axis;
  const add = parseDiopter(fields.add ?? '');
  if (add !== undefined) eye.add = add;
  const prism = Number(fields.prism);
  const base = parsePrismBase(fields.prismBase ?? '');
  if (fields.prism && Number.isFinite(prism) && prism > 0 && base) eye.prisms = [{ amount: prism, base }];
  const pd = Number(fields.pd);
  if (fields.pd && Number.isFinite(pd)) eye.pd = pd;
  const bc = Number(fields.baseCurve);
  if (fields.baseCurve && Number.isFinite(bc)) eye.baseCurve = bc;
  const dia = Number(fields.diameter);
  if (fields.diameter && Number.isFinite(dia)) eye.diameter = dia;
  return eye;
}

function addRx(scope: ReturnType<typeof openScope>, g: Group, patient: { system: string; value: string }, ctx: Hl7MapContext): void {
  const right = eyeRx(g.rx.right);
  const left = eyeRx(g.rx.left);
  if (!right || !left) return;
  const want = ctx.profile.cylinderConvention;
  const r = normaliseEye(right, want);
  const l = normaliseEye(left, want);
  for (const [side, p] of [
    ['right', r.problems],
    ['left', l.problems],
  ] as const) {
    for (const x of p)
      scope.issues.push({
        severity: 'warning',
        code: 'GW_MAP_FAILED',
        message: `refraction ${side} ${x.field}: ${x.problem}`,
        location: { segment: 'OBR', sequence: g.obrIndex },
      });
  }
  const issued = hl7Date(g.obr?.get(7) ?? '') ?? (g.at ?? scope.occurredAt).slice(0, 10);
  const issuedAt = issued.length === 10 ? issued : scope.occurredAt.slice(0, 10);
  const data: Record<string, unknown> = { patient, issuedAt, cylinderConvention: want, right: r.eye, left: l.eye };
  // expiry: as the PMS sent it, else the profile's validity (spectacle and contact-lens Rx differ by law and habit)
  const months = g.contact ? ctx.profile.rxValidityMonths.contactLens : ctx.profile.rxValidityMonths.spectacle;
  const expiresAt = g.expires && g.expires.length === 10 ? g.expires : months > 0 ? addMonths(issuedAt, months) : undefined;
  if (expiresAt) data.expiresAt = expiresAt;
  const bpd =
    g.binocularPd !== undefined && Number.isFinite(Number(g.binocularPd)) ? Number(g.binocularPd) : binocularPd(r.eye.pd, l.eye.pd);
  if (bpd !== undefined) data.binocularPd = bpd;
  addRecord(
    scope,
    g.contact ? 'contact-lens-rx' : 'spectacle-rx',
    `${g.obrIndex}|${g.obr?.get(3) || g.obr?.get(2) || 'rx'}`,
    partitionOf(patient),
    data,
  );
}

/** `YYYY-MM-DD` plus whole months (the day clamped to the month's end). */
export function addMonths(date: string, months: number): string {
  const [y, m, d] = date.split('-').map(Number);
  const total = y * 12 + (m - 1) + months;
  const ny = Math.floor(total / 12);
  const nm = total % 12;
  const last = new Date(Date.UTC(ny, nm + 1, 0)).getUTCDate();
  return `${String(ny).padStart(4, '0')}-${String(nm + 1).padStart(2, '0')}-${String(Math.min(d, last)).padStart(2, '0')}`;
}
