/**
 * Financial messages (HL7 v2 chapter 6). DFT^P03/P11: each FT1 becomes a `charge` (CG, CD, AJ
 * transaction types) or a `payment` (PY). BAR^P01/P05 (add/update account): the patient, PV1
 * providers and IN1 coverages, as an ADT update would give them.
 */
import type { MapResult } from '../contracts.ts';
import type { Hl7Message } from './hl7-message.ts';
import { segmentsNamed } from './hl7-message.ts';
import { hl7Date, hl7Instant } from './hl7-datetime.ts';
import { patientRef } from './map-segments.ts';
import { addPatientBundle, partitionOf } from './map-adt.ts';
import { addRecord, openPatientMessage, required, type Hl7MapContext } from './message-mapper.ts';

/** CE coding systems (HL7 table 0396) as canonical system URIs, where there is one. */
const CODE_SYSTEMS: Record<string, string> = {
  C4: 'http://www.ama-assn.org/go/cpt',
  CPT: 'http://www.ama-assn.org/go/cpt',
  HCPCS: 'urn:oid:2.16.840.1.113883.6.285',
  SCT: 'http://snomed.info/sct',
  I10: 'http://hl7.org/fhir/sid/icd-10',
};

function amountOf(raw: string): number | undefined {
  if (!raw.trim()) return undefined;
  const n = Number(raw.trim());
  return Number.isFinite(n) ? n : undefined;
}

export function mapDft(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent;
  if (event !== 'P03' && event !== 'P11') return { unsupported: `DFT^${event || '?'}`, records: [], issues: [] };
  const opened = openPatientMessage(msg, ctx);
  if (!opened.ok) return opened.result;
  const { scope } = opened;
  const ref = patientRef(opened.patient.primary);
  const ft1s = segmentsNamed(msg, 'FT1');
  if (ft1s.length === 0) {
    required(scope, 'FT1', 0, 'no FT1 segment', 1, '100');
    return { records: [], issues: scope.issues };
  }
  for (const ft1 of ft1s) {
    const type = ft1.get(6).toUpperCase() || 'CG';
    const amount =
      amountOf(ft1.get(11, 1, 1)) ??
      (amountOf(ft1.get(12, 1, 1)) !== undefined ? amountOf(ft1.get(12, 1, 1))! * (amountOf(ft1.get(10)) ?? 1) : undefined);
    const currency = ft1.get(11, 1, 2) || ft1.get(12, 1, 2);
    const sourceId = `${ft1.get(2) || ft1.get(1) || ft1.sequence}`;
    const when = hl7Date(ft1.get(4, 1));
    if (type === 'PY') {
      if (amount === undefined) {
        scope.issues.push({
          severity: 'warning',
          code: 'GW_MAP_FAILED',
          message: `FT1 ${ft1.sequence}: payment without an amount; left out`,
          location: { segment: 'FT1', sequence: ft1.sequence, field: 11 },
        });
        continue;
      }
      const data: Record<string, unknown> = { patient: ref, amount };
      if (currency) data.currency = currency;
      const at = hl7Instant(ft1.get(4, 1), ctx.timezone);
      if (at) data.receivedAt = at;
      addRecord(scope, 'payment', sourceId, partitionOf(ref), data);
      continue;
    }
    const codeRaw = ft1.get(7, 1) || ft1.get(25, 1);
    if (!codeRaw) {
      required(scope, 'FT1', 7, `FT1 ${ft1.sequence}: transaction code (FT1-7 or FT1-25) is missing`, ft1.sequence);
      continue;
    }
    const codeField = ft1.get(7, 1) ? 7 : 25;
    const system = ft1.get(codeField, 3);
    const code: Record<string, string> = { code: codeRaw };
    if (system) code.system = CODE_SYSTEMS[system.toUpperCase()] ?? system;
    const display = ft1.get(codeField, 2) || ft1.get(8);
    if (display) code.display = display;
    const data: Record<string, unknown> = { patient: ref, code, transactionType: type };
    if (amount !== undefined) data.amount = amount;
    if (currency) data.currency = currency;
    const qty = amountOf(ft1.get(10));
    if (qty !== undefined) data.quantity = qty;
    if (when && when.length === 10) data.serviceDate = when;
    addRecord(scope, 'charge', sourceId, partitionOf(ref), data);
  }
  return { records: scope.issues.some((i) => i.severity === 'error') ? [] : scope.records, issues: scope.issues };
}

export function mapBar(msg: Hl7Message, ctx: Hl7MapContext): MapResult {
  const event = msg.header.triggerEvent;
  if (event !== 'P01' && event !== 'P05') return { unsupported: `BAR^${event || '?'}`, records: [], issues: [] };
  const opened = openPatientMessage(msg, ctx);
  if (!opened.ok) return opened.result;
  addPatientBundle(msg, opened.scope, opened.sctx, opened.patient);
  return { records: opened.scope.records, issues: opened.scope.issues };
}
