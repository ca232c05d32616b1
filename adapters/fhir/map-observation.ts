/**
 * FHIR R4 Observation (eye exam) → `eye-exam-observation`: visual acuity, refraction, intraocular
 * pressure, visual-field indices.
 *
 * **Which Observations.** One whose code (or a component's) is an eye-exam code below, by LOINC
 * where LOINC has one and by SNOMED CT as the HL7 eye-care IG ("Eyes on FHIR", `uv/eyecare`,
 * later `uv/ophthalmology`) uses it; or one that claims a profile of that IG (its visual-field
 * indices use the IG's own code system). Every other Observation (vital signs, labs) is not eye
 * data: `unsupported`, counted as ignored, not an error.
 *
 * **Which eye.** In this order: the IG's `laterality` extension; `bodySite` (its codes or text,
 * or the IG's BodyStructure reference in a `bodySite` extension: a contained BodyStructure's
 * location and qualifier, else the reference's display, else the reference's own words, the IG
 * naming its eye structures `…-right-eye`/`…-left-eye`); else the code itself (LOINC's per-eye
 * codes, or a display that says the eye). SNOMED CT: right 24028007 / 419465000 / 362503005 /
 * 18944008 / 1290043002, left 7771000 / 419161000 / 362502000 / 8966001 / 1290041000, both
 * 51440002 / 40638003.
 *
 * **Records.** The Observation's own value is one record (source id `Observation/<id>`); each
 * component with a value and a component code below (a refraction's sphere, cylinder and axis, or
 * LOINC's per-eye acuity and pressure in a panel) is one more (`Observation/<id>#<code>`), its eye
 * from its own code, else the Observation's. Values: a Quantity's number (with its unit; a
 * comparator makes it text such as `<5`), a string (Snellen `20/40`), an integer, a Ratio as
 * `n/d` text, a CodeableConcept's text.
 */
import type { DraftRecord, MapIssue, MapResult } from '../contracts.ts';
import {
  arr,
  codingOf,
  codingsOf,
  compact,
  conceptText,
  containedOf,
  fhirInstant,
  num,
  obj,
  patientRef,
  str,
  strs,
  type Coding,
  type R,
} from './fhir-refs.ts';
import { fail, record, warning, type FhirMapContext } from './map-record.ts';

type Eye = 'right' | 'left' | 'both';

const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';

/** Eye-exam codes (`system|code`), with the eye where the code itself names one. */
const EYE_CODES: ReadonlyMap<string, { eye?: Eye }> = new Map([
  // SNOMED CT, as the eye-care IG uses it: visual acuity, refraction and its parts, IOP, visual field
  [`${SNOMED}|363983007`, {}],
  [`${SNOMED}|251739003`, {}],
  [`${SNOMED}|397536007`, {}],
  [`${SNOMED}|419775003`, {}],
  [`${SNOMED}|413078003`, {}],
  [`${SNOMED}|420050001`, {}],
  [`${SNOMED}|251794006`, {}],
  [`${SNOMED}|251795007`, {}],
  [`${SNOMED}|251797004`, {}],
  [`${SNOMED}|251799001`, {}],
  [`${SNOMED}|41633001`, {}],
  [`${SNOMED}|422859007`, {}],
  [`${SNOMED}|421362004`, {}],
  // LOINC: visual acuity (uncorrected, best corrected; by Snellen chart or not), the panel, IOP
  [`${LOINC}|98499-7`, { eye: 'right' }],
  [`${LOINC}|98498-9`, { eye: 'left' }],
  [`${LOINC}|65893-0`, { eye: 'right' }],
  [`${LOINC}|65897-1`, { eye: 'left' }],
  [`${LOINC}|79880-1`, { eye: 'right' }],
  [`${LOINC}|79881-9`, { eye: 'left' }],
  [`${LOINC}|79882-7`, { eye: 'right' }],
  [`${LOINC}|79883-5`, { eye: 'left' }],
  [`${LOINC}|98497-1`, {}],
  [`${LOINC}|56844-4`, {}],
  [`${LOINC}|79892-6`, { eye: 'right' }],
  [`${LOINC}|79893-4`, { eye: 'left' }],
]);

/**
 * The component codes that become records of their own (`Observation/<id>#<code>`): a
 * refraction's parts and LOINC's per-eye codes. A deleted Observation retracts each of them.
 */
export const EYE_COMPONENT_CODES: readonly string[] = [
  '251795007',
  '251797004',
  '251799001',
  '98499-7',
  '98498-9',
  '65893-0',
  '65897-1',
  '79880-1',
  '79881-9',
  '79882-7',
  '79883-5',
  '79892-6',
  '79893-4',
];
const COMPONENT_KEYS: ReadonlySet<string> = new Set(
  [...EYE_CODES.keys()].filter((k) => EYE_COMPONENT_CODES.includes(k.slice(k.indexOf('|') + 1))),
);

const LATERALITY: Readonly<Record<string, Eye>> = {
  '24028007': 'right',
  '419465000': 'right',
  '362503005': 'right',
  '18944008': 'right',
  '1290043002': 'right',
  '7771000': 'left',
  '419161000': 'left',
  '362502000': 'left',
  '8966001': 'left',
  '1290041000': 'left',
  '51440002': 'both',
  '40638003': 'both',
};

const IG_PROFILE = /\/uv\/(eyecare|ophthalmology)\//;

const key = (c: Coding) => `${c.system ?? ''}|${c.code}`;

/** The eye that words name: right/OD, left/OS, both/bilateral/OU (right and left together: both). */
function eyeInWords(text: string | undefined): Eye | undefined {
  if (!text) return undefined;
  const words = new Set(text.toLowerCase().split(/[^a-z0-9]+/));
  if (words.has('both') || words.has('bilateral') || words.has('ou')) return 'both';
  const right = words.has('right') || words.has('od');
  const left = words.has('left') || words.has('os');
  return right && left ? 'both' : right ? 'right' : left ? 'left' : undefined;
}

function eyeOfConcept(cc: unknown): Eye | undefined {
  const codings = arr(obj(cc)?.coding);
  for (const c of codings) {
    const e = LATERALITY[str(c.code) ?? ''];
    if (e) return e;
  }
  return eyeInWords(str(obj(cc)?.text)) ?? codings.map((c) => eyeInWords(str(c.display))).find(Boolean);
}

function eyeOfBodyStructureRef(res: R, ref: unknown): Eye | undefined {
  const inner = containedOf(res, ref);
  if (inner) {
    const e = eyeOfConcept(inner.location) ?? arr(inner.locationQualifier).map(eyeOfConcept).find(Boolean);
    if (e) return e;
  }
  const r = obj(ref);
  return eyeInWords(str(r?.display)) ?? (str(r?.reference)?.includes('BodyStructure/') ? eyeInWords(str(r?.reference)) : undefined);
}

/** The eye a code names: LOINC's per-eye codes, or a display that says it. */
function eyeOfCode(cc: unknown): Eye | undefined {
  for (const c of codingsOf(cc)) {
    const e = EYE_CODES.get(key(c))?.eye;
    if (e) return e;
  }
  return (
    eyeInWords(str(obj(cc)?.text)) ??
    codingsOf(cc)
      .map((c) => eyeInWords(c.display))
      .find(Boolean)
  );
}

function lateralityOf(res: R): Eye | undefined {
  for (const e of arr(res.extension))
    if (/\/laterality$/.test(str(e.url) ?? '')) {
      const eye = eyeOfConcept(e.valueCodeableConcept);
      if (eye) return eye;
    }
  const site = obj(res.bodySite);
  const fromSite =
    eyeOfConcept(site) ??
    arr(site?.extension)
      .filter((e) => /\/bodySite$/.test(str(e.url) ?? ''))
      .map((e) => eyeOfBodyStructureRef(res, e.valueReference))
      .find(Boolean);
  return fromSite ?? eyeOfCode(res.code);
}

/** Whether an Observation is eye-exam data (see the module comment). */
export function isEyeExamObservation(res: R): boolean {
  if (strs(obj(res.meta)?.profile).some((p) => IG_PROFILE.test(p))) return true;
  const concepts = [res.code, ...arr(res.component).map((c) => c.code)];
  return concepts.some((cc) => codingsOf(cc).some((c) => EYE_CODES.has(key(c))));
}

/** The coding a record carries: an eye-exam coding where there is one, else the first. */
function codeOf(cc: unknown): Coding | undefined {
  const all = codingsOf(cc);
  return all.find((c) => EYE_CODES.has(key(c))) ?? all[0] ?? (conceptText(cc) ? { code: conceptText(cc)! } : undefined);
}

function observedValue(x: R): { value: number | string; unit?: string } | undefined {
  const q = obj(x.valueQuantity);
  if (q && num(q.value) !== undefined) {
    const unit = str(q.unit) ?? str(q.code);
    const comparator = str(q.comparator);
    return compact({ value: comparator ? `${comparator}${q.value}` : (q.value as number), unit });
  }
  if (str(x.valueString)) return { value: str(x.valueString)! };
  if (num(x.valueInteger) !== undefined) return { value: x.valueInteger as number };
  const ratio = obj(x.valueRatio);
  const n = num(obj(ratio?.numerator)?.value);
  const d = num(obj(ratio?.denominator)?.value);
  if (n !== undefined && d !== undefined) return { value: `${n}/${d}` };
  const text = conceptText(x.valueCodeableConcept);
  if (text) return { value: text };
  if (typeof x.valueBoolean === 'boolean') return { value: String(x.valueBoolean) };
  return undefined;
}

export function mapObservation(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.subject, ctx);
  if (!patient) return fail('Observation has no Patient subject');
  const observedAt =
    fhirInstant(res.effectiveDateTime) ??
    fhirInstant(res.effectiveInstant) ??
    fhirInstant(obj(res.effectivePeriod)?.start) ??
    fhirInstant(res.issued);
  if (!observedAt) return fail('Observation has no effective time (effective[x] or issued)');
  const eye = lateralityOf(res);
  const common = compact({ status: str(res.status), method: codingOf(res.method) });
  const records: DraftRecord[] = [];
  const issues: MapIssue[] = [];
  const add = (code: Coding, e: Eye, v: { value: number | string; unit?: string }, suffix?: string) =>
    records.push(
      record(ctx, res, 'eye-exam-observation', { patient, code, eye: e, ...v, observedAt, ...common }, patient, hash, observedAt, suffix),
    );
  const own = observedValue(res);
  const code = codeOf(res.code);
  if (own && code && eye) add(code, eye, own);
  const used = new Map<string, number>();
  arr(res.component).forEach((c, i) => {
    const v = observedValue(c);
    if (!v) return;
    const cc = codingsOf(c.code).find((x) => COMPONENT_KEYS.has(key(x)));
    if (!cc) {
      issues.push(warning(`Observation component ${i + 1}: not an eye-exam component code; left out`));
      return;
    }
    const e = eyeOfCode(c.code) ?? eye;
    if (!e) {
      issues.push(warning(`Observation component ${i + 1}: no laterality; left out`));
      return;
    }
    const n = (used.get(cc.code) ?? 0) + 1;
    used.set(cc.code, n);
    add(cc, e, v, n === 1 ? cc.code : `${cc.code}.${n}`);
  });
  if (records.length > 0) {
    if (own && !eye)
      issues.unshift(warning('Observation value has no laterality (laterality, bodySite or an eye-specific code); left out'));
    return { records, issues };
  }
  if (!eye) return fail('Observation has no laterality (laterality extension, bodySite or an eye-specific code)', issues);
  return fail('Observation has no value (value[x] or a component value)', issues);
}
