/**
 * Which acknowledgements a message gets (HL7 v2 chapter 2, "Acknowledgment messages").
 *
 * Original mode (MSH-15 and MSH-16 both empty): one application ACK, AA/AE/AR.
 * Enhanced mode (either valued): an accept ACK — CA once the message is safely committed (mapping
 * errors included: the message is kept in dead letters), CE when it could not be committed
 * (outbox full, disk low), CR when it is rejected (not well-formed, reused control id) — sent as MSH-15 asks;
 * then, after a CA, the application ACK as MSH-16 asks, on the same connection. HL7 table 0155:
 * AL always, NE never, ER only on error or reject, SU only on success. An empty MSH-15 in enhanced
 * mode is taken as AL (a sender in enhanced mode waits for the accept), an empty MSH-16 as NE.
 */
import type { IntakeResult } from '../contracts.ts';
import type { AckCode, AckError } from './ack-builder.ts';
import type { Hl7Header } from './hl7-message.ts';

export type AckCondition = 'AL' | 'NE' | 'ER' | 'SU';

/** Refusals that mean "nothing was written, send it again later": a full outbox, a failed write, a disk below its reserve. */
const BUSY_CODES: ReadonlySet<string> = new Set(['GW_OUTBOX_FULL', 'GW_OUTBOX_IO', 'GW_DISK_LOW']);
export type AckAnswer = { code: AckCode; error?: AckError };

/** The original-mode answer to an intake outcome. `unmapped: 'AE'` answers unmapped types AE (ERR 200). */
export function ackFor(result: IntakeResult, unmapped: 'AA' | 'AE' = 'AA'): AckAnswer {
  switch (result.status) {
    case 'accepted':
    case 'duplicate':
      return { code: 'AA' };
    case 'ignored':
      return unmapped === 'AA' ? { code: 'AA' } : { code: 'AE', error: { code: '200', text: `GW_UNSUPPORTED_MESSAGE: ${result.reason}` } };
    case 'rejected': {
      const error: AckError = { code: result.hl7ErrorCode ?? '207', text: `${result.code}: ${result.reason}`, location: result.location };
      if (BUSY_CODES.has(result.code)) return { code: 'AR', error: { ...error, code: '207', text: `${result.code}: busy, retry later` } };
      if (result.code === 'GW_PARSE_FAILED' || result.code === 'GW_SEQUENCE_GAP') return { code: 'AR', error };
      if (result.code === 'GW_CONTROL_ID_CONFLICT') return { code: 'AR', error: { ...error, code: '205' } };
      return { code: 'AE', error };
    }
    default:
      return result satisfies never;
  }
}

/** The enhanced-mode accept answer: was the message safely received? */
export function acceptFor(result: IntakeResult): AckAnswer {
  if (result.status !== 'rejected') return { code: 'CA' };
  const app = ackFor(result);
  if (BUSY_CODES.has(result.code)) return { code: 'CE', error: app.error };
  if (result.code === 'GW_PARSE_FAILED' || result.code === 'GW_CONTROL_ID_CONFLICT' || result.code === 'GW_SEQUENCE_GAP')
    return { code: 'CR', error: app.error };
  return { code: 'CA' }; // kept in dead letters: received safely; the application ACK says AE
}

function condition(v: string | undefined, empty: AckCondition): AckCondition {
  const c = (v ?? '').trim().toUpperCase();
  return c === 'AL' || c === 'NE' || c === 'ER' || c === 'SU' ? c : empty;
}

function wanted(c: AckCondition, success: boolean): boolean {
  return c === 'AL' || (c === 'ER' && !success) || (c === 'SU' && success);
}

/**
 * The answers to send, in order: one (original mode), or zero to two (enhanced mode).
 * `mode: 'original'` (config `hl7.acknowledgements`) ignores MSH-15/16 for senders that set them
 * but expect original-mode ACKs.
 */
export function answersFor(
  result: IntakeResult,
  header: Hl7Header | undefined,
  mode: 'as-requested' | 'original',
  unmapped: 'AA' | 'AE' = 'AA',
): AckAnswer[] {
  const enhanced =
    mode === 'as-requested' && header !== undefined && (header.acceptAckType !== undefined || header.applicationAckType !== undefined);
  if (!enhanced) return [ackFor(result, unmapped)];
  const out: AckAnswer[] = [];
  const accept = acceptFor(result);
  if (wanted(condition(header.acceptAckType, 'AL'), accept.code === 'CA')) out.push(accept);
  if (accept.code === 'CA') {
    const app = ackFor(result, unmapped);
    if (wanted(condition(header.applicationAckType, 'NE'), app.code === 'AA')) out.push(app);
  }
  return out;
}
