/**
 * FHIR R4 financial resources: Coverage → `coverage`, ChargeItem → `charge`, Claim → `claim`,
 * Invoice → `invoice`.
 *
 * An Invoice is its own record type rather than a set of charges: its line items point at the
 * ChargeItems (mapped as charges in their own right) or repeat their prices, so charges made from
 * line items would count the same service twice. The invoice record carries the totals, the
 * number of line items and the ChargeItems it bills.
 *
 * A coverage's payer must have a name (the canonical contract, as HL7 IN1 gives it): the payor
 * reference's display, else a contained Organization's name, else `self-pay` for a payor that is
 * the patient or a related person, else the payor's identifier or id, which is what IN1 falls back
 * to as well. The payer's organization is referenced beside it, so the cloud can join the
 * `organization` record for its name.
 */
import type { MapResult } from '../contracts.ts';
import {
  arr,
  codingOf,
  compact,
  conceptText,
  containedOf,
  fhirDate,
  fhirInstant,
  num,
  obj,
  patientRef,
  refId,
  refTo,
  str,
  type Coding,
  type R,
  type Ref,
} from './fhir-refs.ts';
import { identifiersOf } from './map-datatypes.ts';
import { fail, record, type FhirMapContext } from './map-record.ts';

const SELF_PAY_TYPES = ['Patient', 'RelatedPerson'];
const PROVIDER_TYPES = ['Practitioner', 'PractitionerRole'];

/** A full date (`YYYY-MM-DD`) from a FHIR date or dateTime. */
const fullDate = (v: unknown) => {
  const d = fhirDate(v);
  return d?.length === 10 ? d : undefined;
};

function classValue(res: R, type: string, field: 'value' | 'name'): string | undefined {
  const c = arr(res.class).find((x) => codingOf(x.type)?.code === type);
  return c ? str(c[field]) : undefined;
}

function payerOf(res: R, payor: R, ctx: FhirMapContext): { payer: R; selfPay: boolean } | undefined {
  const inner = containedOf(res, payor);
  const identifier = str(obj(payor.identifier)?.value) ?? str(arr(inner?.identifier)[0]?.value);
  const selfPay = SELF_PAY_TYPES.some((t) => refId(payor, t) !== undefined || payor.type === t);
  const organization = selfPay ? undefined : refTo(payor, ['Organization'], ctx);
  const name = str(payor.display) ?? str(inner?.name) ?? (selfPay ? 'self-pay' : undefined) ?? identifier ?? organization?.value;
  return name ? { payer: compact({ id: identifier, name, organization }), selfPay } : undefined;
}

export function mapCoverage(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.beneficiary, ctx);
  if (!patient) return fail('Coverage has no beneficiary');
  const payor = arr(res.payor)[0];
  if (!payor) return fail('Coverage has no payor');
  const payerAndKind = payerOf(res, payor, ctx);
  if (!payerAndKind) return fail('Coverage payor has neither a name, an identifier nor a reference');
  const { payer, selfPay } = payerAndKind;
  const member =
    arr(res.identifier).find((i) => codingOf(i.type)?.code === 'MB') ?? (str(res.subscriberId) ? undefined : arr(res.identifier)[0]);
  const period = obj(res.period);
  const order = num(res.order);
  const data = compact({
    patient,
    payer,
    planName: classValue(res, 'plan', 'name') ?? classValue(res, 'plan', 'value'),
    memberId: str(member?.value) ?? str(res.subscriberId),
    groupNumber: classValue(res, 'group', 'value'),
    subscriberRelationship: codingOf(res.relationship)?.code,
    priority: order !== undefined && Number.isInteger(order) && order > 0 ? order : undefined,
    start: fhirDate(period?.start),
    end: fhirDate(period?.end),
    status: str(res.status),
    coverageType: codingOf(res.type),
    selfPay: selfPay || codingOf(res.type)?.code === 'pay' || undefined,
  });
  return { records: [record(ctx, res, 'coverage', data, patient, hash)], issues: [] };
}

/** A CodeableConcept as the canonical coding: its first coding, else its text as the code. */
function codeOf(cc: unknown): Coding | undefined {
  const text = conceptText(cc);
  return codingOf(cc) ?? (text ? { code: text } : undefined);
}

export function mapChargeItem(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.subject, ctx);
  if (!patient) return fail('ChargeItem has no Patient subject');
  const code = codeOf(res.code);
  if (!code) return fail('ChargeItem has no code');
  const when = res.occurrenceDateTime ?? obj(res.occurrencePeriod)?.start;
  const price = obj(res.priceOverride);
  const data = compact({
    patient,
    code,
    status: str(res.status),
    // R4: priceOverride is the total price overriding the list price; without it the price is the definition's
    amount: num(price?.value),
    currency: str(price?.currency),
    quantity: num(obj(res.quantity)?.value),
    serviceDate: fullDate(when),
    provider: arr(res.performer)
      .map((p) => refTo(p.actor, PROVIDER_TYPES, ctx, true))
      .find(Boolean),
    enteredAt: fhirInstant(res.enteredDate),
  });
  return { records: [record(ctx, res, 'charge', data, patient, hash, fhirInstant(when))], issues: [] };
}

export function mapClaim(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const patient = patientRef(res, res.patient, ctx);
  if (!patient) return fail('Claim has no patient (a reference, or a contained Patient with an identifier)');
  const status = str(res.status);
  if (!status) return fail('Claim has no status');
  const total = obj(res.total);
  const items = arr(res.item);
  const insurer = refTo(res.insurer, ['Organization'], ctx);
  const focal = arr(res.insurance).find((i) => i.focal === true) ?? arr(res.insurance)[0];
  const data = compact({
    patient,
    status,
    identifiers: identifiersOf(res, ctx),
    use: str(res.use),
    claimType: codingOf(res.type),
    createdAt: fhirDate(res.created),
    total: num(total?.value),
    currency: str(total?.currency) ?? items.map((i) => str(obj(i.net)?.currency)).find(Boolean),
    payer: insurer?.display ?? str(containedOf(res, res.insurer)?.name),
    insurer,
    provider: refTo(res.provider, [...PROVIDER_TYPES, 'Organization'], ctx, true),
    coverage: refTo(focal?.coverage, ['Coverage'], ctx),
    priority: codingOf(res.priority)?.code,
    itemCount: items.length || undefined,
  });
  return { records: [record(ctx, res, 'claim', data, patient, hash, fhirInstant(res.created))], issues: [] };
}

export function mapInvoice(res: R, ctx: FhirMapContext, hash: string): MapResult {
  const status = str(res.status);
  if (!status) return fail('Invoice has no status');
  const patient = patientRef(res, res.subject, ctx);
  const net = obj(res.totalNet);
  const gross = obj(res.totalGross);
  const lines = arr(res.lineItem);
  const data = compact({
    patient,
    status,
    identifiers: identifiersOf(res, ctx),
    issuedAt: fhirInstant(res.date),
    totalNet: num(net?.value),
    totalGross: num(gross?.value),
    currency: str(gross?.currency) ?? str(net?.currency),
    issuer: refTo(res.issuer, ['Organization'], ctx),
    account: refTo(res.account, ['Account'], ctx),
    lineItemCount: lines.length || undefined,
    chargeItems: lines.map((l) => refTo(l.chargeItemReference, ['ChargeItem'], ctx)).filter((r): r is Ref => r !== undefined),
  });
  return { records: [record(ctx, res, 'invoice', data, patient, hash, fhirInstant(res.date))], issues: [] };
}
