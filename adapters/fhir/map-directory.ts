/**
 * FHIR R4 directory resources: Practitioner and PractitionerRole → `provider`, Organization →
 * `organization`, Location → `location`.
 *
 * A Practitioner is the person (identifiers, NPI among them, and name); a PractitionerRole is that
 * person's work at one organization and its locations, so it is a provider record of its own
 * (source id `PractitionerRole/<id>`) that references the practitioner. Every record's first
 * identifier is the resource's FHIR id (`<system>/<Type>`), the pair other records' references use.
 */
import type { MapResult } from '../contracts.ts';
import { arr, codingOf, compact, conceptText, conceptsOf, refTo, str, strs, type R, type Ref } from './fhir-refs.ts';
import { addressOf, addressesOf, emailsOf, humanNameOf, identifiersOf, phonesOf } from './map-datatypes.ts';
import { fail, record, type FhirMapContext } from './map-record.ts';

const LOCATION_STATUS = new Set(['active', 'suspended', 'inactive']);

const active = (res: R) => (typeof res.active === 'boolean' ? res.active : undefined);

export function mapPractitioner(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('Practitioner has neither id nor identifier');
  const data = compact({
    identifiers,
    name: humanNameOf(res.name),
    active: active(res),
    phones: phonesOf(res.telecom),
    emails: emailsOf(res.telecom),
    qualifications: conceptsOf(arr(res.qualification).map((q) => q.code)),
  });
  return { records: [record(ctx, res, 'provider', data, undefined, hash)], issues: [] };
}

export function mapPractitionerRole(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('PractitionerRole has neither id nor identifier');
  const data = compact({
    identifiers,
    role: arr(res.code).map(conceptText).find(Boolean),
    roleCodes: conceptsOf(res.code),
    specialties: conceptsOf(res.specialty),
    practitioner: refTo(res.practitioner, ['Practitioner'], ctx),
    organization: refTo(res.organization, ['Organization'], ctx),
    locations: arr(res.location)
      .map((l) => refTo(l, ['Location'], ctx))
      .filter((r): r is Ref => r !== undefined),
    active: active(res),
    phones: phonesOf(res.telecom),
    emails: emailsOf(res.telecom),
  });
  return { records: [record(ctx, res, 'provider', data, undefined, hash)], issues: [] };
}

export function mapOrganization(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('Organization has neither id nor identifier');
  const data = compact({
    identifiers,
    name: str(res.name),
    aliases: strs(res.alias),
    types: conceptsOf(res.type),
    active: active(res),
    phones: phonesOf(res.telecom),
    emails: emailsOf(res.telecom),
    addresses: addressesOf(res.address),
    partOf: refTo(res.partOf, ['Organization'], ctx),
  });
  return { records: [record(ctx, res, 'organization', data, undefined, hash)], issues: [] };
}

export function mapLocation(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('Location has neither id nor identifier');
  const status = str(res.status);
  const mode = str(res.mode);
  const data = compact({
    identifiers,
    name: str(res.name),
    aliases: strs(res.alias),
    status: status && LOCATION_STATUS.has(status) ? status : undefined,
    mode: mode === 'instance' || mode === 'kind' ? mode : undefined,
    types: conceptsOf(res.type),
    physicalType: codingOf(res.physicalType),
    phones: phonesOf(res.telecom),
    emails: emailsOf(res.telecom),
    address: addressOf(res.address),
    managingOrganization: refTo(res.managingOrganization, ['Organization'], ctx),
    partOf: refTo(res.partOf, ['Location'], ctx),
  });
  return { records: [record(ctx, res, 'location', data, undefined, hash)], issues: [] };
}
