/**
 * A v3 patient (a CDA recordTarget's patientRole with its patient, or a v3 message's patient with
 * its patientPerson) → canonical patient data. Shared by the CDA and the PRPA mappers, so the same
 * person reads the same from either.
 */
import type { Identifier, PatientData, Reference } from '../canonical/types.ts';
import type { MapContext, MapIssue } from '../contracts.ts';
import { address, gender, instanceId, personName, telecoms, v3Date } from './v3-datatypes.ts';
import { attr, elements, element, type XmlElement } from './v3-xml.ts';

/** What mapping a v3 document needs besides the pipeline's identity. */
export interface V3MapContext extends MapContext {
  /** IANA zone for v3 times without an offset (the practice's). */
  timezone: string;
  /** `source.adapter` of the records; by default the format (`cda`, `hl7v3`); e.g. `fhir` for an attachment. */
  adapter?: string;
  /** `source.system` of the records; by default the document's custodian or the message's sending device. */
  system?: string;
}

/** The US SSN's OID: carried as an identifier (sealed like the rest), never the chart identifier. */
const SSN_OID = 'urn:oid:2.16.840.1.113883.4.1';

export interface V3Patient {
  data: PatientData;
  /** The chart identifier records refer to the patient by: the first id that is not an SSN. */
  primary: Identifier;
}

export interface V3PatientParts {
  /** The role's ids (patientRole/id, patient/id), in order. */
  ids: XmlElement[];
  /** More ids of the same person (patientPerson/asOtherIDs/id). */
  otherIds?: XmlElement[];
  /** The role (addr, telecom) and the person (name, gender, birth time, addr, telecom, deceased). */
  role: XmlElement;
  person: XmlElement | undefined;
  /** Element path for issues (`recordTarget/patientRole`). */
  where: string;
}

export function patientRef(id: Identifier): Reference {
  return { system: id.system, value: id.value };
}

/** The patient, or undefined (with an error issue) when it has no usable identifier. */
export function readPatient(p: V3PatientParts, issues: MapIssue[]): V3Patient | undefined {
  const identifiers: Identifier[] = [];
  for (const el of [...p.ids, ...(p.otherIds ?? [])]) {
    const id = instanceId(el);
    if (!id || identifiers.some((x) => x.system === id.system && x.value === id.value)) continue;
    identifiers.push(id.system === SSN_OID ? { ...id, type: 'SS' } : id);
  }
  const own = p.ids.map(instanceId).filter((x): x is Identifier => x !== undefined);
  const primary = own.find((x) => x.system !== SSN_OID) ?? own[0];
  if (!primary) {
    issues.push({
      severity: 'error',
      code: 'GW_MAP_FAILED',
      message: `${p.where} has no usable id (root and extension)`,
      location: { segment: `${p.where}/id` },
    });
    return undefined;
  }
  const data: PatientData = { identifiers };
  const name = personName(elements(p.person, 'name'));
  if (name) data.name = name;
  const birthEl = element(p.person, 'birthTime');
  const birth = v3Date(birthEl);
  if (birth) data.birthDate = birth;
  else if (attr(birthEl, 'value'))
    issues.push({
      severity: 'warning',
      code: 'GW_MAP_FAILED',
      message: 'birthTime is not a date; left out',
      location: { segment: `${p.where}/birthTime` },
    });
  const sex = gender(element(p.person, 'administrativeGenderCode'));
  if (sex === 'invalid')
    issues.push({
      severity: 'warning',
      code: 'GW_MAP_FAILED',
      message: 'administrativeGenderCode is not M, F or UN; left out',
      location: { segment: `${p.where}/administrativeGenderCode` },
    });
  else if (sex) data.sex = sex;
  const addresses = [...elements(p.role, 'addr'), ...elements(p.person, 'addr')].map(address).filter((a) => a !== undefined);
  if (addresses.length) data.addresses = addresses;
  const { phones, emails } = telecoms([...elements(p.role, 'telecom'), ...elements(p.person, 'telecom')]);
  if (phones.length) data.phones = phones;
  if (emails.length) data.emails = emails;
  const deceased = attr(element(p.person, 'deceasedInd'), 'value');
  if (deceased === 'true') data.deceased = true;
  else if (deceased === 'false') data.deceased = false;
  else if (attr(element(p.person, 'deceasedTime'), 'value')) data.deceased = true;
  return { data, primary };
}
