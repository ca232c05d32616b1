/**
 * FHIR R4 Patient → `patient`. The patient's FHIR id comes first among its identifiers
 * (`<system>/Patient`, type `FHIR`): it is the reference every other FHIR record of this patient
 * carries, so the cloud links them without a lookup.
 */
import type { MapResult } from '../contracts.ts';
import { fhirDate, str, type R } from './fhir-refs.ts';
import { addressesOf, emailsOf, humanNameOf, identifiersOf, phonesOf } from './map-datatypes.ts';
import { fail, record, type FhirMapContext } from './map-record.ts';

const GENDER: Record<string, string> = { male: 'male', female: 'female', other: 'other', unknown: 'unknown' };

export function mapPatient(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const id = str(res.id);
  const identifiers = identifiersOf(res, ctx);
  if (identifiers.length === 0) return fail('Patient has neither id nor identifier');
  const data: R = { identifiers };
  const name = humanNameOf(res.name);
  if (name) data.name = name;
  const birthDate = fhirDate(res.birthDate);
  if (birthDate) data.birthDate = birthDate;
  if (str(res.gender)) data.sex = GENDER[str(res.gender)!] ?? 'unknown';
  const addresses = addressesOf(res.address);
  if (addresses.length) data.addresses = addresses;
  const phones = phonesOf(res.telecom);
  if (phones.length) data.phones = phones;
  const emails = emailsOf(res.telecom);
  if (emails.length) data.emails = emails;
  if (typeof res.deceasedBoolean === 'boolean') data.deceased = res.deceasedBoolean;
  else if (str(res.deceasedDateTime)) data.deceased = true;
  const patient = id ? { system: `${ctx.system}/Patient`, value: id } : undefined;
  return { records: [record(ctx, res, 'patient', data, patient, hash)], issues: [] };
}
