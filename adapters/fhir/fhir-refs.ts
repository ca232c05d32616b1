/**
 * Reading FHIR R4 JSON defensively, and FHIR references as canonical references.
 *
 * Input comes from other systems, so nothing here trusts a shape: an element that is not what R4
 * says (a string where an object belongs, `null` inside an array, a primitive that only has its
 * `_field` extension sibling) reads as absent, never as an exception.
 *
 * References (R4 §2.3.0 "Resource References"): a literal reference (`Type/id`, an absolute URL
 * ending in `Type/id`, optionally `/_history/n`) names the resource on the source's server, so it
 * becomes `{system: '<ctx.system>/<Type>', value: id}`: the same pair the referenced resource's own
 * record carries, so records from one server link up. A logical reference (`identifier` only)
 * keeps the identifier's system and value. A reference to a contained resource (`#id`) names
 * nothing outside the resource; callers read the contained resource itself with `containedOf`.
 * Absolute URLs are taken as the source's own server: the mapper cannot tell a foreign server's
 * base from its own, and servers that answer with absolute references mean themselves.
 */

export type R = Record<string, unknown>;

/** A canonical reference (canonical-schema `ref`). */
export interface Ref {
  system: string;
  value: string;
  display?: string;
}

/** A canonical coding (canonical-schema `coding`). */
export interface Coding {
  system?: string;
  code: string;
  display?: string;
}

/** The bits of a map context references need. */
export interface RefContext {
  system: string;
}

/** A non-blank string, trimmed; anything else is absent. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
/** A finite number; anything else (text, NaN) is absent. */
export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** A JSON object (not an array, not null). */
export const obj = (v: unknown): R | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as R) : undefined);
/** The objects of an array (a `null` kept in place for a `_field` extension is skipped). */
export const arr = (v: unknown): R[] => (Array.isArray(v) ? v.filter((x): x is R => obj(x) !== undefined) : []);
/** The non-blank strings of an array. */
export const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(str).filter((x): x is string => x !== undefined) : []);

/** The object without its absent values and empty arrays (canonical records leave absent values out). */
export function compact<T extends R>(o: T): T {
  const out: R = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out as T;
}

const DATE = /^\d{4}(-\d{2}(-\d{2})?)?$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** A FHIR date or the date part of a dateTime, as the canonical `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`). */
export function fhirDate(v: unknown): string | undefined {
  const s = str(v);
  if (!s) return undefined;
  const d = s.length > 10 && s[10] === 'T' ? s.slice(0, 10) : s;
  return DATE.test(d) ? d : undefined;
}

/** A FHIR dateTime/instant as the canonical `instant` (a full date, or a time with its offset); partial dates are absent. */
export function fhirInstant(v: unknown): string | undefined {
  const s = str(v);
  return s && INSTANT.test(s) ? s : undefined;
}

/** The id of a literal reference to a resource of `type` (`Type/id`, `…/Type/id/_history/n`, or a bundle's `urn:uuid:`). */
export function refId(ref: unknown, type: string): string | undefined {
  const r = str(obj(ref)?.reference);
  if (!r) return undefined;
  const m = new RegExp(`(?:^|/)${type}/([^/]+)(?:/_history/.*)?$`).exec(r);
  return m?.[1] ?? (r.startsWith('urn:uuid:') ? r.slice(9) : undefined);
}

/**
 * A reference to one of `types` as a canonical reference: literal → `<ctx.system>/<Type>` + id,
 * logical → the identifier; with the reference's display where it has one. Absent when the
 * reference names none of `types`, or only a contained resource. `typed`: the element may name
 * other types too (a participant's actor), so a logical reference counts only when its `type`
 * says it is one of `types`.
 */
export function refTo(ref: unknown, types: readonly string[], ctx: RefContext, typed = false): Ref | undefined {
  const r = obj(ref);
  if (!r) return undefined;
  const display = str(r.display);
  const withDisplay = (x: Ref): Ref => (display ? { ...x, display } : x);
  const literal = str(r.reference);
  if (literal && !literal.startsWith('#')) {
    for (const t of types) {
      const id = refId(r, t);
      if (id && (!literal.startsWith('urn:uuid:') || t === types[0])) return withDisplay({ system: `${ctx.system}/${t}`, value: id });
    }
  }
  const type = str(r.type);
  const ident = obj(r.identifier);
  const value = str(ident?.value);
  if (value && (type ? types.includes(type) : !typed)) return withDisplay({ system: str(ident?.system) ?? ctx.system, value });
  return undefined;
}

/**
 * The patient an element of `res` names, for `patient` fields and partitions: `<ctx.system>/Patient`
 * + id, or the logical reference's identifier, or a contained Patient's first identifier (a
 * contained resource has no id outside its container, so without an identifier it names no one).
 */
export function patientRef(res: R, ref: unknown, ctx: RefContext, typed = false): Ref | undefined {
  const r = refTo(ref, ['Patient'], ctx, typed);
  if (r) return { system: r.system, value: r.value };
  const inner = containedOf(res, ref);
  if (inner?.resourceType !== 'Patient') return undefined;
  const id = arr(inner.identifier).find((i) => str(i.value));
  return id ? { system: str(id.system) ?? ctx.system, value: str(id.value)! } : undefined;
}

/** The contained resource a `#id` reference points at. */
export function containedOf(res: R, ref: unknown): R | undefined {
  const r = str(obj(ref)?.reference);
  if (!r?.startsWith('#')) return undefined;
  const id = r.slice(1);
  return arr(res.contained).find((c) => str(c.id) === id);
}

/** The first coding of a CodeableConcept that has a code. */
export function codingOf(cc: unknown): Coding | undefined {
  return codingsOf(cc)[0];
}

/** The codings of a CodeableConcept that have a code (system and display where given). */
export function codingsOf(cc: unknown): Coding[] {
  return arr(obj(cc)?.coding)
    .filter((c) => str(c.code))
    .map((c) => compact({ system: str(c.system), code: str(c.code)!, display: str(c.display) }));
}

/** The codings of a list of CodeableConcepts, one per concept (its first coding, else its text as the code). */
export function conceptsOf(list: unknown): Coding[] {
  return arr(list)
    .map((cc) => codingOf(cc) ?? (str(cc.text) ? { code: str(cc.text)! } : undefined))
    .filter((c): c is Coding => c !== undefined);
}

/** The text a person would read for a CodeableConcept: its text, else its first coding's display, else its code. */
export function conceptText(cc: unknown): string | undefined {
  const c = obj(cc);
  if (!c) return undefined;
  const first = arr(c.coding).find((x) => str(x.display) || str(x.code));
  return str(c.text) ?? str(first?.display) ?? str(first?.code);
}
