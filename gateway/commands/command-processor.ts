/**
 * Carries out verified cloud commands. `hl7.send` (HL7 given), `appointment.book|update|cancel`
 * (SIU built from a canonical appointment), `charge.post` (DFT built from a charge) and `lens.order`
 * (ORM^O01 from a spectacle Rx and frame/lens notes) queue an HL7
 * message for the PMS in the outbound outbox (durably, before the command is reported accepted); the outbound relay then
 * reports `done` or `failed`. A command id is taken once: the outbox's resend check on the id
 * refuses a replay. Every outcome — including refusals — goes on the event bus (the MQTT sink
 * reports it on `up/status`) and to the audit log, with ids and reasons only.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { CodecError } from '../../adapters/contracts.ts';
import { parseHl7 } from '../../adapters/hl7v2/hl7-message.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { isGatewayError } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import type { Outbox } from '../outbox/outbox.ts';
import type { CloudCommand, CommandVerifier } from './command-verifier.ts';
import { buildDft, buildLensOrder, buildSiu, type ChargeData, type LensOrderData, type OutboundHeader } from '../../adapters/hl7v2/build-outbound.ts';
import type { AppointmentData } from '../../adapters/canonical/types.ts';
import { WriteBackRefused, type WriteBack } from '../../adapters/sql/write-back.ts';

export interface CommandProcessor {
  handle(jws: string): Promise<{ commandId?: string; status: 'accepted' | 'refused'; detail: string }>;
}

/** Commands whose HL7 the gateway builds from canonical data (the rest: `hl7.send` carries it). */
const BUILT: Record<string, (cmd: CloudCommand, h: OutboundHeader) => string> = {
  'appointment.book': (c, h) => buildSiu(h, 'book', appointmentOf(c)),
  'appointment.update': (c, h) => buildSiu(h, 'update', appointmentOf(c)),
  'appointment.cancel': (c, h) => buildSiu(h, 'cancel', appointmentOf(c)),
  'charge.post': (c, h) => buildDft(h, chargeOf(c)),
  'lens.order': (c, h) => buildLensOrder(h, lensOrderOf(c)),
};

function lensOrderOf(c: CloudCommand): LensOrderData {
  const o = c.order as LensOrderData | undefined;
  if (!o || !o.orderId || !o.patient?.system || !o.patient?.value || typeof o.rx?.right?.sphere !== 'number' || typeof o.rx?.left?.sphere !== 'number') throw new Error('lens order needs orderId, patient and an Rx with a sphere for each eye');
  return o;
}

function appointmentOf(c: CloudCommand): AppointmentData {
  const a = c.appointment as AppointmentData | undefined;
  if (!a || !a.patient?.system || !a.patient?.value || !a.appointmentId?.value || !a.start || !a.visitType?.code) throw new Error('appointment needs patient, appointmentId, start and visitType');
  return { ...a, appointmentId: { system: a.appointmentId.system ?? 'EWML', value: a.appointmentId.value }, status: a.status ?? 'booked' };
}

function chargeOf(c: CloudCommand): ChargeData {
  const ch = c.charge as ChargeData | undefined;
  if (!ch || !ch.patient?.system || !ch.patient?.value || !ch.code?.code) throw new Error('charge needs patient and code');
  return ch;
}

export interface OutboundIdentity { sendingApplication: string; sendingFacility: string; receivingApplication: string; receivingFacility: string }

export interface DbWriteOptions {
  /** The write-back of a configured database, when it is enabled there. */
  writeBackFor(database: string): WriteBack | undefined;
  /** Durable record of command ids taken (the main outbox's resend log): a replay is refused. */
  outbox: Outbox;
  /** Attempts and first delay when the database cannot be reached. */
  attempts?: number;
  retryDelayMs?: number;
}

export function createCommandProcessor(o: { verifier: CommandVerifier; outbound?: { outbox: Outbox; sealer: RecordSealer; notify: () => void; identity: OutboundIdentity }; dbWrite?: DbWriteOptions; bus: EventBus; logger: Logger; now: () => number }): CommandProcessor {
  /** MSH-10 fixed by the command id: a resend of the queued message is a duplicate to the PMS. */
  const header = (commandId: string): OutboundHeader => ({ ...o.outbound!.identity, controlId: `EW${createHash('sha256').update(commandId).digest('hex').slice(0, 18).toUpperCase()}`, nowMs: o.now() });
  const outcome = (commandId: string | undefined, status: 'accepted' | 'refused', detail: string) => {
    o.bus.emit('command.outcome', { commandId: commandId ?? '(unknown)', status, detail });
    (status === 'refused' ? o.logger.warn.bind(o.logger) : o.logger.info.bind(o.logger))({ commandId, status, detail }, 'cloud command');
    return { commandId, status, detail };
  };
  /**
   * `db.write` {database, statement, values}: a configured statement run with the values bound.
   * Reported accepted, then done (rows changed) or failed; retried while the database is unreachable.
   */
  async function dbWrite(cmd: CloudCommand, jws: string) {
    const database = typeof cmd.database === 'string' ? cmd.database : '';
    const wb = o.dbWrite?.writeBackFor(database);
    if (!wb) return outcome(cmd.id, 'refused', `write-back is not enabled for database "${database}" (databases[].writeBack.enabled)`);
    const statement = typeof cmd.statement === 'string' ? cmd.statement : '';
    const values = (cmd.values && typeof cmd.values === 'object' ? cmd.values : {}) as Record<string, unknown>;
    const taken = await o.dbWrite!.outbox.enqueue({ records: [], dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') } });
    if (taken === 'duplicate' || taken === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
    if (taken === 'full') return outcome(cmd.id, 'refused', 'outbox full; send again later');
    const attempts = o.dbWrite!.attempts ?? 5;
    const first = o.dbWrite!.retryDelayMs ?? 1000;
    const run = async (): Promise<void> => {
      for (let i = 1; ; i++) {
        try {
          const rows = await wb.run(statement, values);
          o.bus.emit('command.outcome', { commandId: cmd.id, status: 'done', detail: `${statement}: ${rows} row(s) changed` });
          o.logger.info({ commandId: cmd.id, statement, rows }, 'write-back done');
          return;
        } catch (e) {
          const refused = e instanceof WriteBackRefused;
          if (refused || i >= attempts) {
            const detail = refused ? e.message : `database write failed after ${i} attempt(s): ${(e as Error).message.slice(0, 200)}`;
            o.bus.emit('command.outcome', { commandId: cmd.id, status: 'failed', detail });
            o.logger.warn({ commandId: cmd.id, statement, detail }, 'write-back failed');
            return;
          }
          await new Promise((r) => setTimeout(r, first * 2 ** (i - 1)));
        }
      }
    };
    const r = outcome(cmd.id, 'accepted', `write-back ${statement} on ${database}`);
    void run();
    return r;
  }

  return {
    async handle(jws) {
      let cmd;
      try { cmd = await o.verifier.verify(jws); } catch (e) {
        return outcome(undefined, 'refused', isGatewayError(e) ? e.message : 'unverifiable');
      }
      if (cmd.type === 'db.write') return dbWrite(cmd, jws);
      if (cmd.type !== 'hl7.send' && !BUILT[cmd.type]) return outcome(cmd.id, 'refused', `unknown command type ${cmd.type}`);
      if (!o.outbound) return outcome(cmd.id, 'refused', 'outbound HL7 is disabled (outbound.enabled)');
      let hl7: string;
      try {
        hl7 = cmd.type === 'hl7.send' ? (typeof cmd.hl7 === 'string' ? cmd.hl7 : '') : BUILT[cmd.type](cmd, header(cmd.id));
        parseHl7(hl7);
      } catch (e) {
        return outcome(cmd.id, 'refused', `cannot make an HL7 message of it: ${e instanceof CodecError || e instanceof Error ? e.message : 'invalid'}`);
      }
      const id = deterministicId('outbound', cmd.id);
      // one patient's messages reach the PMS in the order the cloud sent them
      const who = ((cmd.appointment ?? cmd.charge ?? cmd.order) as { patient?: { system?: string; value?: string } } | undefined)?.patient;
      const partitionKey = typeof cmd.partition === 'string' ? cmd.partition : who?.system && who.value ? `patient:${who.system}|${who.value}` : 'outbound';
      const sealed = o.outbound.sealer.seal(id, Buffer.from(JSON.stringify({ commandId: cmd.id, hl7 })));
      const r = await o.outbound.outbox.enqueue({ records: [{ id, type: 'outbound-hl7', partitionKey, sealed }], dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') } });
      if (r === 'duplicate' || r === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
      if (r === 'full') return outcome(cmd.id, 'refused', 'outbound queue full; send again later');
      o.outbound.notify();
      return outcome(cmd.id, 'accepted', 'queued for the PMS');
    },
  };
}
