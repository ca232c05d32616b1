/**
 * FHIR R4 general-purpose datatypes (Identifier, HumanName, Address, ContactPoint) as the
 * canonical shapes `patient`, `provider`, `organization` and `location` share.
 */
import { arr, compact, obj, str, strs, type R, type RefContext } from './fhir-refs.ts';

export interface CanonicalIdentifier {
  system: string;
  value: string;
  type?: string;
}

/** The National Provider Identifier's system (US CMS), typed `NPI` where the source gave no type. */
export const US_NPI = 'http://hl7.org/fhir/sid/us-npi';

/**
 * The resource's identifiers: first its FHIR id (`<ctx.system>/<Type>`, type `FHIR`), then its
 * `identifier[]` (an identifier without a system gets the source's system; the type is
 * `identifier.type`'s first code, or `NPI` for the NPI system).
 */
export function identifiersOf(res: R, ctx: RefContext): CanonicalIdentifier[] {
  const out: CanonicalIdentifier[] = [];
  const id = str(res.id);
  if (id) out.push({ system: `${ctx.system}/${String(res.resourceType)}`, value: id, type: 'FHIR' });
  for (const i of arr(res.identifier)) {
    const value = str(i.value);
    if (!value) continue;
    const system = str(i.system) ?? ctx.system;
    const type = str(arr(obj(i.type)?.coding)[0]?.code) ?? (system === US_NPI ? 'NPI' : undefined);
    out.push(compact({ system, value, type }));
  }
  return out;
}

/** The official name (else the first): family, given names, first prefix and suffix. */
export function humanNameOf(names: unknown): R | undefined {
  const n = arr(names).find((x) => x.use === 'official') ?? arr(names)[0];
  if (!n) return undefined;
  const name = compact({
    family: str(n.family),
    given: strs(n.given),
    prefix: Array.isArray(n.prefix) ? str(n.prefix[0]) : undefined,
    suffix: Array.isArray(n.suffix) ? str(n.suffix[0]) : undefined,
  });
  return Object.keys(name).length ? name : undefined;
}

/** One Address: use, lines, city, state, postal code, country; absent when it says nothing. */
export function addressOf(a: unknown): R | undefined {
  const x = obj(a);
  if (!x) return undefined;
  const out = compact({
    use: str(x.use),
    lines: strs(x.line),
    city: str(x.city),
    state: str(x.state),
    postalCode: str(x.postalCode),
    country: str(x.country),
  });
  return Object.keys(out).length ? out : undefined;
}

/** The addresses that say something. */
export function addressesOf(list: unknown): R[] {
  return arr(list)
    .map(addressOf)
    .filter((a): a is R => a !== undefined);
}

/** Telecom entries of system `phone`: `{use?, value}`. */
export function phonesOf(telecom: unknown): R[] {
  return arr(telecom)
    .filter((t) => t.system === 'phone' && str(t.value))
    .map((t) => (str(t.use) ? { use: str(t.use), value: str(t.value) } : { value: str(t.value) }));
}

/** Telecom entries of system `email`: their values. */
export function emailsOf(telecom: unknown): string[] {
  return arr(telecom)
    .filter((t) => t.system === 'email')
    .map((t) => str(t.value))
    .filter((v): v is string => v !== undefined);
}
