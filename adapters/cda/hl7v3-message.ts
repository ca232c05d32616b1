/**
 * HL7 v3 patient-administration messages (Patient Topic, PRPA; the MFMI_MT700701UV01 registration
 * wrapper, as IHE PIXV3/PDQV3 send them) → canonical patient records:
 *  - PRPA_IN201301UV02 "patient registry record added" and PRPA_IN201302UV02 "…revised": an
 *    `upsert` of each registrationEvent's subject1/patient;
 *  - PRPA_IN201304UV02 "…duplicates resolved": a `merge` naming the surviving patient, with the
 *    retired ids (replacementOf/priorRegistration/subject1/priorRegisteredRole/id) in `mergedFrom`.
 * Other interactions parse and are reported as not mapped.
 */
import { deterministicId } from '../canonical/record-id.ts';
import type { Reference } from '../canonical/types.ts';
import { CodecError, type DraftRecord, type MapIssue, type MapResult, type SourceCodec } from '../contracts.ts';
import { partitionOf } from '../hl7v2/map-adt.ts';
import { instanceId, instanceKey, messageIdOf, v3Instant } from './v3-datatypes.ts';
import { patientRef, readPatient, type V3MapContext } from './v3-patient.ts';
import { element, elements, elementsAt, parseV3Xml, type XmlElement } from './v3-xml.ts';
import { V3_NAMESPACE } from './xml-root.ts';

export const HL7V3_FORMAT = 'hl7v3';

export const Hl7v3Interaction = {
  added: 'PRPA_IN201301UV02',
  revised: 'PRPA_IN201302UV02',
  merged: 'PRPA_IN201304UV02',
} as const;
export type Hl7v3Interaction = (typeof Hl7v3Interaction)[keyof typeof Hl7v3Interaction];
const MAPPED = new Set<string>(Object.values(Hl7v3Interaction));

/** A parsed v3 message: its interaction (the root element's name) and root element. */
export interface Hl7v3Message {
  interaction: string;
  msg: XmlElement;
  /** `root|extension` of the message id. */
  key: string | undefined;
  /** The sending device (`sender/device/id`), `root|extension`. */
  sender: string | undefined;
}

/** An interaction id's shape (HL7 v3 artifact naming: 4 letters, `_IN`, 6 digits, realm, version). */
const INTERACTION = /^[A-Z]{4}_IN\d{6}[A-Z]{2}\d{2}$/;

/** Parses a v3 message; throws a CodecError when it is not well-formed or its root is not an interaction. */
export function parseHl7v3Message(text: string): Hl7v3Message {
  const { root, element: msg } = parseV3Xml(text);
  if (!INTERACTION.test(root.local) || (root.namespace !== undefined && root.namespace !== V3_NAMESPACE))
    throw new CodecError(`not an HL7 v3 message: the root element is not an interaction in ${V3_NAMESPACE}`);
  return {
    interaction: root.local,
    msg,
    key: instanceKey(element(msg, 'id')),
    sender: instanceKey(element(msg, 'sender', 'device', 'id')),
  };
}

/** Maps a parsed v3 message (see {@link mapHl7v3Message}). */
export function mapParsedHl7v3(parsed: Hl7v3Message, ctx: V3MapContext): MapResult {
  const { interaction, msg } = parsed;
  if (!MAPPED.has(interaction)) return { unsupported: interaction, records: [], issues: [] };
  const issues: MapIssue[] = [];
  const fail = (segment: string, message: string): MapResult => {
    issues.push({ severity: 'error', code: 'GW_MAP_FAILED', message, location: { segment } });
    return { records: [], issues };
  };
  const idEl = element(msg, 'id');
  if (!parsed.key) return fail(`${interaction}/id`, 'the message id is missing');
  const system = ctx.system ?? parsed.sender ?? 'HL7V3';
  const adapter = ctx.adapter ?? HL7V3_FORMAT;
  const cap = element(msg, 'controlActProcess');
  const occurredAt =
    v3Instant(element(cap, 'effectiveTime'), ctx.timezone) ??
    v3Instant(element(msg, 'creationTime'), ctx.timezone) ??
    new Date(0).toISOString();
  const events = elementsAt(cap, 'subject', 'registrationEvent');
  if (events.length === 0) return fail('controlActProcess/subject/registrationEvent', 'controlActProcess has no registrationEvent');
  const merge = interaction === Hl7v3Interaction.merged;
  const op = merge ? 'merge' : 'upsert';
  const records: DraftRecord[] = [];
  for (const event of events) {
    const patientEl = element(event, 'subject1', 'patient');
    if (!patientEl) return fail('registrationEvent/subject1/patient', 'registrationEvent/subject1/patient is missing');
    const person = element(patientEl, 'patientPerson');
    const p = readPatient(
      {
        ids: elements(patientEl, 'id'),
        otherIds: elementsAt(person, 'asOtherIDs', 'id'),
        role: patientEl,
        person,
        where: 'subject1/patient',
      },
      issues,
    );
    if (!p) return { records: [], issues };
    const ref = patientRef(p.primary);
    const data: Record<string, unknown> = { ...p.data };
    if (merge) {
      // replacementOf belongs to the registrationEvent; some senders put it in subject1
      const retired: Reference[] = [...elements(event, 'replacementOf'), ...elementsAt(event, 'subject1', 'replacementOf')]
        .flatMap((r) => elementsAt(r, 'priorRegistration', 'subject1', 'priorRegisteredRole', 'id'))
        .map(instanceId)
        .filter((x) => x !== undefined)
        .map(patientRef)
        .filter((x) => x.system !== ref.system || x.value !== ref.value);
      if (retired.length === 0)
        return fail('registrationEvent/replacementOf', 'replacementOf/priorRegistration names no retired patient id');
      data.mergedFrom = retired;
    }
    const sourceId = `${ref.system}|${ref.value}`;
    records.push({
      id: deterministicId(ctx.tenantId, ctx.practiceId, HL7V3_FORMAT, system, parsed.key, 'patient', sourceId, op),
      type: 'patient',
      op,
      occurredAt,
      partitionKey: partitionOf(ref),
      data,
      source: { system, adapter, sourceId, messageId: messageIdOf(idEl) },
    });
  }
  return { records, issues };
}

/**
 * A v3 message's text → patient records (`upsert` for 201301/201302, `merge` for 201304; other
 * interactions: `unsupported`). Throws a CodecError when the text is not a well-formed v3 interaction.
 */
export function mapHl7v3Message(text: string, ctx: V3MapContext): MapResult {
  return mapParsedHl7v3(parseHl7v3Message(text), ctx);
}

/** The `hl7v3` format: one v3 message per input (a file holds one), for files, dead-letter replay and `preview`. */
export function createHl7v3Codec(o: { timezone: string; system?: string }): SourceCodec<Hl7v3Message> {
  return {
    format: HL7V3_FORMAT,
    parse: parseHl7v3Message,
    // the message id is unique per sender (its root is the sender's namespace): the same again is a resend
    dedupeKey: (m) => (m.key ? `hl7v3|${m.sender ?? ''}|${m.key}` : undefined),
    describe: (m) => ({ kind: m.interaction, messageId: messageIdOf(element(m.msg, 'id')) }),
    map: (m, ctx) => mapParsedHl7v3(m, { ...ctx, timezone: o.timezone, system: o.system }),
  };
}
