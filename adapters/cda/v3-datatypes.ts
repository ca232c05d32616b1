/**
 * HL7 v3 data types (Data Types R1, as the CDA R2 and v3 XML ITS write them) → canonical values:
 * II → identifier, PN → name, AD → address, TEL → phone or e-mail, TS → date or instant, CD → coding,
 * AdministrativeGender → sex. A value with a `nullFlavor` is absent.
 */
import { compactInstant } from '../canonical/local-time.ts';
import type { Identifier, PatientData } from '../canonical/types.ts';
import { hl7Date } from '../hl7v2/hl7-datetime.ts';
import { attr, elements, textOf, type XmlElement } from './v3-xml.ts';

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** II root as a URI: `urn:oid:` for an OID, `urn:uuid:` for a UUID, else (an HL7 RUID) as written. */
export function rootUri(root: string): string {
  if (OID.test(root)) return `urn:oid:${root}`;
  if (UUID.test(root)) return `urn:uuid:${root.toLowerCase()}`;
  return root;
}

/**
 * II → identifier: `{system: urn:oid:<root>, value: <extension>}`; an II of a root alone is itself
 * the identifier, so it is named as a URI (`{system: urn:ietf:rfc:3986, value: urn:oid:<root>}`,
 * the FHIR convention).
 */
export function instanceId(el: XmlElement | undefined): Identifier | undefined {
  if (!el || attr(el, 'nullFlavor')) return undefined;
  const root = attr(el, 'root');
  if (!root) return undefined;
  const extension = attr(el, 'extension');
  return extension ? { system: rootUri(root), value: extension } : { system: 'urn:ietf:rfc:3986', value: rootUri(root) };
}

/** An II as one PHI-free key (`root` or `root|extension`), for message ids, senders and resend checks. */
export function instanceKey(el: XmlElement | undefined): string | undefined {
  if (!el || attr(el, 'nullFlavor')) return undefined;
  const root = attr(el, 'root');
  if (!root) return undefined;
  const extension = attr(el, 'extension');
  return extension ? `${root}|${extension}` : root;
}

/** An II's short form for logs and `source.messageId`: its extension, else its root (like MSH-10: an id, not PHI). */
export function messageIdOf(el: XmlElement | undefined): string | undefined {
  return attr(el, 'extension') ?? attr(el, 'root');
}

const LOINC_OID = '2.16.840.1.113883.6.1';

/** CD/CE → coding; LOINC by its FHIR URI, any other code system as `urn:oid:`. */
export function coding(el: XmlElement | undefined): { system?: string; code: string; display?: string } | undefined {
  const code = attr(el, 'code');
  if (!code || attr(el, 'nullFlavor')) return undefined;
  const cs = attr(el, 'codeSystem');
  const display = attr(el, 'displayName');
  return {
    ...(cs ? { system: cs === LOINC_OID ? 'http://loinc.org' : rootUri(cs) } : {}),
    code,
    ...(display ? { display } : {}),
  };
}

/** TS → `YYYY[-MM[-DD]]` (a birth time's date; any time of day dropped). */
export function v3Date(el: XmlElement | undefined): string | undefined {
  const v = attr(el, 'value');
  return v ? hl7Date(v) : undefined;
}

/** TS → an instant with an offset; a value without one is the practice's local time. */
export function v3Instant(el: XmlElement | undefined, timezone: string): string | undefined {
  const v = attr(el, 'value');
  return v ? compactInstant(v, timezone) : undefined;
}

/** AdministrativeGender (2.16.840.1.113883.5.1): M, F, UN. */
const GENDER: Record<string, NonNullable<PatientData['sex']>> = { M: 'male', F: 'female', UN: 'unknown' };

export function gender(el: XmlElement | undefined): PatientData['sex'] | 'invalid' {
  const code = attr(el, 'code');
  if (!code || attr(el, 'nullFlavor')) return undefined;
  return GENDER[code.toUpperCase()] ?? 'invalid';
}

/** The parts of one kind of a name, in order; `CL` ("call me") parts are nicknames, not names of record. */
function parts(name: XmlElement, kind: string): string[] {
  return elements(name, kind)
    .filter((p) => attr(p, 'qualifier') !== 'CL')
    .map(textOf)
    .filter((x): x is string => x !== undefined);
}

/**
 * PN → name: the legal name (`use` L) where one is marked, else the first. A name given only as
 * text (no parts) cannot be split into family and given names, so it is left out.
 */
export function personName(names: XmlElement[]): PatientData['name'] {
  const usable = names.filter((n) => !attr(n, 'nullFlavor'));
  const n = usable.find((x) => (attr(x, 'use') ?? '').split(/\s+/).includes('L')) ?? usable[0];
  if (!n) return undefined;
  const out: NonNullable<PatientData['name']> = {};
  const family = parts(n, 'family').join(' ');
  const given = parts(n, 'given');
  const prefix = parts(n, 'prefix').join(' ');
  const suffix = parts(n, 'suffix').join(' ');
  if (family) out.family = family;
  if (given.length) out.given = given;
  if (prefix) out.prefix = prefix;
  if (suffix) out.suffix = suffix;
  return Object.keys(out).length ? out : undefined;
}

/** PostalAddressUse / TelecommunicationAddressUse (2.16.840.1.113883.5.1119) → the canonical use words the HL7 v2 mappers write. */
const USE: Record<string, string> = {
  H: 'home',
  HP: 'home',
  HV: 'vacation',
  WP: 'work',
  DIR: 'work',
  PUB: 'work',
  PST: 'mailing',
  TMP: 'temporary',
  MC: 'mobile',
  PG: 'pager',
  EC: 'emergency',
  AS: 'answering-service',
};

function useOf(el: XmlElement): string | undefined {
  for (const code of (attr(el, 'use') ?? '').split(/\s+/)) if (USE[code]) return USE[code];
  return undefined;
}

type Address = NonNullable<PatientData['addresses']>[number];

/** AD → address: street lines (or house number and street name), city, state, postal code, country. */
export function address(el: XmlElement): Address | undefined {
  if (attr(el, 'nullFlavor')) return undefined;
  const one = (k: string) =>
    elements(el, k)
      .map(textOf)
      .find((x) => x !== undefined);
  let lines = elements(el, 'streetAddressLine')
    .map(textOf)
    .filter((x): x is string => x !== undefined);
  if (lines.length === 0) {
    const line = [one('houseNumber'), one('streetName')].filter(Boolean).join(' ');
    lines = line ? [line] : [];
  }
  const a: Address = {};
  const use = useOf(el);
  if (use) a.use = use;
  if (lines.length) a.lines = lines;
  for (const k of ['city', 'state', 'postalCode', 'country'] as const) {
    const v = one(k);
    if (v) a[k] = v;
  }
  return Object.keys(a).filter((k) => k !== 'use').length ? a : undefined;
}

/** TEL → phones (`tel:`, and `fax:` as use `fax`) and e-mail addresses (`mailto:`); other schemes are not contact points here. */
export function telecoms(els: XmlElement[]): { phones: NonNullable<PatientData['phones']>; emails: string[] } {
  const phones: NonNullable<PatientData['phones']> = [];
  const emails: string[] = [];
  for (const t of els) {
    const value = attr(t, 'value');
    if (!value || attr(t, 'nullFlavor')) continue;
    const m = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(value);
    const scheme = m ? m[1].toLowerCase() : '';
    const rest = (m ? m[2] : value).trim();
    if (!rest) continue;
    if (scheme === 'mailto') emails.push(rest);
    else if (scheme === 'tel' || scheme === 'fax' || (!m && /^\+?[\d\s().-]+$/.test(rest))) {
      const use = scheme === 'fax' ? 'fax' : useOf(t);
      phones.push(use ? { use, value: rest } : { value: rest });
    }
  }
  return { phones, emails };
}
