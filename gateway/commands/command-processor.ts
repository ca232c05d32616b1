/**
 * Carries out verified cloud commands. `hl7.send` (HL7 given), `appointment.book|update|cancel`
 * (SIU built from a canonical appointment), `charge.post` (DFT built from a charge) and `lens.order`
 * (ORM^O01 from a spectacle Rx and frame/lens notes) queue an HL7
 * message for the PMS in the outbound outbox (durably, before the command is reported accepted); the outbound relay then
 * reports `done` or `failed`. `db.write`, `file.write` and `fhir.write` are carried out here (the
 * JOBS table), journalled first so a restart finishes them. A command id is taken once: the outbox's resend check on the id
 * refuses a replay. Every outcome — including refusals — goes on the event bus (the MQTT sink
 * reports it on `up/status`) and to the audit log, with ids and reasons only.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { CodecError } from '../../adapters/contracts.ts';
import { parseHl7 } from '../../adapters/hl7v2/hl7-message.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { sleepOn, systemClock, type Clock } from '../clock.ts';
import { isGatewayError } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import type { CommandJournal, RecordQueue } from '../outbox/outbox.ts';
import type { CloudCommand, CommandVerifier } from './command-verifier.ts';
import {
  buildDft,
  buildLensOrder,
  buildSiu,
  type ChargeData,
  type LensOrderData,
  type OutboundHeader,
} from '../../adapters/hl7v2/build-outbound.ts';
import type { AppointmentData } from '../../adapters/canonical/types.ts';
import { WriteBackRefused, type WriteBack } from '../../adapters/sql/write-back.ts';
import { FileWriteRefused, renderFile, type FileWriter, type FileWriteRequest } from '../../adapters/file/file-output.ts';
import { FhirWriteRefused, type FhirWriteBack } from '../../adapters/fhir/write-back.ts';

export interface CommandProcessor {
  handle(jws: string): Promise<{ commandId?: string; status: 'accepted' | 'refused'; detail: string }>;
  /** Carries out the direct commands a previous run accepted and did not finish. */
  resumePending(): Promise<number>;
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
  if (
    !o ||
    !o.orderId ||
    !o.patient?.system ||
    !o.patient?.value ||
    typeof o.rx?.right?.sphere !== 'number' ||
    typeof o.rx?.left?.sphere !== 'number'
  )
    throw new Error('lens order needs orderId, patient and an Rx with a sphere for each eye');
  return o;
}

function appointmentOf(c: CloudCommand): AppointmentData {
  const a = c.appointment as AppointmentData | undefined;
  if (!a || !a.patient?.system || !a.patient?.value || !a.appointmentId?.value || !a.start || !a.visitType?.code)
    throw new Error('appointment needs patient, appointmentId, start and visitType');
  return { ...a, appointmentId: { system: a.appointmentId.system ?? 'EWML', value: a.appointmentId.value }, status: a.status ?? 'booked' };
}

function chargeOf(c: CloudCommand): ChargeData {
  const ch = c.charge as ChargeData | undefined;
  if (!ch || !ch.patient?.system || !ch.patient?.value || !ch.code?.code) throw new Error('charge needs patient and code');
  return ch;
}

/** A failure's error code, where it carries one (FhirWriteRefused, ApiError, GatewayError): `GW_…`. */
function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code ?? (e as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof code === 'string' && code.startsWith('GW_') ? code : undefined;
}

export interface OutboundIdentity {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
}

export interface DirectCommandOptions {
  /** The write-back of a configured database, when it is enabled there. */
  writeBackFor(database: string): WriteBack | undefined;
  /** A configured file output target. */
  fileWriterFor(target: string): FileWriter | undefined;
  /** The write-back of a `fhir[]` source, when it is enabled there. */
  fhirWriteBackFor?(source: string): FhirWriteBack | undefined;
  /** Durable record of command ids taken (the main outbox's resend log; a replay is refused) and of commands not yet finished. */
  outbox: Pick<RecordQueue, 'enqueue'> & CommandJournal;
  sealer: RecordSealer;
  /** Attempts and first delay when the database cannot be reached. */
  attempts?: number;
  retryDelayMs?: number;
}

export function createCommandProcessor(o: {
  verifier: CommandVerifier;
  outbound?: {
    outbox: Pick<RecordQueue, 'enqueue'>;
    sealer: RecordSealer;
    notify: () => void;
    identity: OutboundIdentity /** Partition keys as stored (a keyed hash: they name the patient). */;
    partitionKeyer?: (key: string) => string;
  };
  direct?: DirectCommandOptions;
  /**
   * `gateway.update` {manifestUrl?}: hands the request to the updater, which checks the signed
   * manifest and switches over (updater/update-runner.ts); returns why it cannot, or undefined once
   * it took the request (its outcome follows as done/failed). Absent: updates are refused.
   */
  onUpdate?: (req: { commandId: string; manifestUrl?: string }) => string | undefined;
  bus: EventBus;
  logger: Logger;
  now?: () => number /** Timers of the retries (and the time, when `now` is not given); default systemClock. */;
  clock?: Clock;
}): CommandProcessor {
  const clock = o.clock ?? systemClock;
  const now = o.now ?? (() => clock.now());
  /** MSH-10 fixed by the command id: a resend of the queued message is a duplicate to the PMS. */
  const header = (commandId: string): OutboundHeader => ({
    ...o.outbound!.identity,
    controlId: `EW${createHash('sha256').update(commandId).digest('hex').slice(0, 18).toUpperCase()}`,
    nowMs: now(),
  });
  const outcome = (commandId: string | undefined, status: 'accepted' | 'refused', detail: string) => {
    o.bus.emit('command.outcome', { commandId: commandId ?? '(unknown)', status, detail });
    (status === 'refused' ? o.logger.warn.bind(o.logger) : o.logger.info.bind(o.logger))({ commandId, status, detail }, 'cloud command');
    return { commandId, status, detail };
  };
  /** What a direct command does, built from the command alone (so a restart can build it again). */
  interface Job {
    what: string;
    /** The outcome's detail, or the detail with what the command left (`result`). */
    run: () => Promise<string | { detail: string; result: Record<string, string> }>;
    refusal: (e: unknown) => boolean;
  }

  /** `db.write` {database, statement, values}: a configured statement run with the values bound. */
  function dbWriteJob(cmd: CloudCommand): Job | string {
    const database = typeof cmd.database === 'string' ? cmd.database : '';
    const wb = o.direct?.writeBackFor(database);
    if (!wb) return `write-back is not enabled for database "${database}" (databases[].writeBack.enabled)`;
    const statement = typeof cmd.statement === 'string' ? cmd.statement : '';
    const values = (cmd.values && typeof cmd.values === 'object' ? cmd.values : {}) as Record<string, unknown>;
    return {
      what: `write-back ${statement} on ${database}`,
      run: async () => `${statement}: ${await wb.run(statement, values)} row(s) changed`,
      refusal: (e) => e instanceof WriteBackRefused,
    };
  }

  /** `file.write` {target, file: {name, format, rows|hl7, …}}: a file for the PMS, written atomically. */
  function fileWriteJob(cmd: CloudCommand): Job | string {
    const target = typeof cmd.target === 'string' ? cmd.target : '';
    const writer = o.direct?.fileWriterFor(target);
    if (!writer) return `no file output "${target}" (fileOutputs)`;
    const req = (cmd.file && typeof cmd.file === 'object' ? cmd.file : {}) as FileWriteRequest;
    try {
      renderFile(req);
    } catch (e) {
      if (e instanceof FileWriteRefused) return e.message;
      throw e;
    }
    return {
      what: `file ${req.name} to ${target}`,
      run: async () => {
        const w = await writer.write(req);
        return `${req.name}: ${w.bytes} bytes written`;
      },
      refusal: (e) => e instanceof FileWriteRefused,
    };
  }

  /**
   * `fhir.write` {source, resourceType, operation: create|update, resource, conditional | ifMatch}:
   * a resource created (If-None-Exist) or updated (If-Match) on a FHIR server (adapters/fhir/write-back.ts).
   */
  function fhirWriteJob(cmd: CloudCommand): Job | string {
    const source = typeof cmd.source === 'string' ? cmd.source : '';
    const wb = o.direct?.fhirWriteBackFor?.(source);
    if (!wb) return `write-back is not enabled for FHIR source "${source}" (fhir[].writeBack.enabled)`;
    const req = wb.check(cmd);
    if (typeof req === 'string') return req;
    return {
      what: `fhir ${req.operation} of ${req.resourceType} on ${source}`,
      run: async () => {
        const r = await wb.write(req);
        const result: Record<string, string> = {
          outcome: r.outcome,
          resource: r.resource,
          ...(r.versionId ? { versionId: r.versionId } : {}),
        };
        return { detail: `${r.resource}${r.versionId ? ` version ${r.versionId}` : ''} ${r.outcome}`, result };
      },
      refusal: (e) => e instanceof FhirWriteRefused,
    };
  }

  const JOBS: Record<string, (cmd: CloudCommand) => Job | string> = {
    'db.write': dbWriteJob,
    'file.write': fileWriteJob,
    'fhir.write': fhirWriteJob,
  };

  /** Runs a taken job to done or failed (retried while the target cannot be reached), then lets it go. */
  async function carryOut(cmd: CloudCommand, job: Job): Promise<void> {
    const attempts = o.direct!.attempts ?? 5;
    const first = o.direct!.retryDelayMs ?? 1000;
    for (let i = 1; ; i++) {
      try {
        const done = await job.run();
        o.bus.emit('command.outcome', { commandId: cmd.id, status: 'done', ...(typeof done === 'string' ? { detail: done } : done) });
        o.logger.info({ commandId: cmd.id, what: job.what }, 'command done');
        break;
      } catch (e) {
        const refused = job.refusal(e);
        if (refused || i >= attempts) {
          const detail = refused ? (e as Error).message : `${job.what} failed after ${i} attempt(s): ${(e as Error).message.slice(0, 200)}`;
          const code = codeOf(e);
          o.bus.emit('command.outcome', { commandId: cmd.id, status: 'failed', detail, ...(code ? { code } : {}) });
          o.logger.warn({ commandId: cmd.id, what: job.what, detail }, 'command failed');
          break;
        }
        await sleepOn(clock, first * 2 ** (i - 1));
      }
    }
    await o
      .direct!.outbox.finishCommand(cmd.id)
      .catch((err: unknown) =>
        o.logger.error({ err, commandId: cmd.id }, 'could not mark the command finished; it runs again after a restart'),
      );
  }

  /**
   * A command carried out here (not queued for the PMS over MLLP): taken once by its id (the main
   * outbox's resend log) and kept, sealed, until done or failed — in one transaction — so what was
   * reported accepted is finished after a restart too.
   */
  async function direct(cmd: CloudCommand, jws: string) {
    const job = JOBS[cmd.type](cmd);
    if (typeof job === 'string') return outcome(cmd.id, 'refused', job);
    const sealed = o.direct!.sealer.seal(`command:${cmd.id}`, Buffer.from(JSON.stringify(cmd)));
    const taken = await o.direct!.outbox.enqueue({
      records: [],
      dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') },
      command: { id: cmd.id, sealed },
    });
    if (taken === 'duplicate' || taken === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
    if (taken === 'full') return outcome(cmd.id, 'refused', 'outbox full; send again later');
    const r = outcome(cmd.id, 'accepted', job.what);
    void carryOut(cmd, job);
    return r;
  }

  /** `gateway.update`: its id taken once (a replay is refused), then the updater's. Not journalled: the updater's state.json carries it across the switch-over. */
  async function update(cmd: CloudCommand, jws: string) {
    if (!o.onUpdate) return outcome(cmd.id, 'refused', 'this gateway process does not run updates (started without the updater)');
    if (cmd.manifestUrl !== undefined && typeof cmd.manifestUrl !== 'string')
      return outcome(cmd.id, 'refused', 'manifestUrl must be a string');
    if (o.direct) {
      const taken = await o.direct.outbox.enqueue({
        records: [],
        dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') },
      });
      if (taken === 'duplicate' || taken === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
      if (taken === 'full') return outcome(cmd.id, 'refused', 'outbox full; send again later');
    }
    const why = o.onUpdate({ commandId: cmd.id, ...(typeof cmd.manifestUrl === 'string' ? { manifestUrl: cmd.manifestUrl } : {}) });
    if (why) return outcome(cmd.id, 'refused', why);
    return outcome(cmd.id, 'accepted', 'update check');
  }

  return {
    async resumePending() {
      if (!o.direct) return 0;
      const pending = o.direct.outbox.pendingCommands();
      for (const p of pending) {
        let cmd: CloudCommand;
        try {
          cmd = JSON.parse(o.direct.sealer.open(`command:${p.id}`, p.sealed).toString('utf8')) as CloudCommand;
        } catch {
          o.logger.error({ commandId: p.id }, 'a pending command cannot be opened (key changed?); dropped');
          await o.direct.outbox.finishCommand(p.id);
          continue;
        }
        const job = JOBS[cmd.type]?.(cmd);
        if (!job || typeof job === 'string') {
          o.bus.emit('command.outcome', {
            commandId: cmd.id,
            status: 'failed',
            detail: typeof job === 'string' ? job : `unknown command type ${cmd.type}`,
          });
          await o.direct.outbox.finishCommand(p.id);
          continue;
        }
        o.logger.info({ commandId: cmd.id, what: job.what }, 'carrying out a command accepted before the restart');
        void carryOut(cmd, job);
      }
      return pending.length;
    },
    async handle(jws) {
      let cmd;
      try {
        cmd = await o.verifier.verify(jws);
      } catch (e) {
        return outcome(undefined, 'refused', isGatewayError(e) ? e.message : 'unverifiable');
      }
      if (JOBS[cmd.type]) return direct(cmd, jws);
      if (cmd.type === 'gateway.update') return update(cmd, jws);
      if (cmd.type !== 'hl7.send' && !BUILT[cmd.type]) return outcome(cmd.id, 'refused', `unknown command type ${cmd.type}`);
      if (!o.outbound) return outcome(cmd.id, 'refused', 'outbound HL7 is disabled (outbound.enabled)');
      let hl7: string;
      try {
        hl7 = cmd.type === 'hl7.send' ? (typeof cmd.hl7 === 'string' ? cmd.hl7 : '') : BUILT[cmd.type](cmd, header(cmd.id));
        parseHl7(hl7);
      } catch (e) {
        return outcome(
          cmd.id,
          'refused',
          `cannot make an HL7 message of it: ${e instanceof CodecError || e instanceof Error ? e.message : 'invalid'}`,
        );
      }
      const id = deterministicId('outbound', cmd.id);
      // one patient's messages reach the PMS in the order the cloud sent them
      const who = ((cmd.appointment ?? cmd.charge ?? cmd.order) as { patient?: { system?: string; value?: string } } | undefined)?.patient;
      const partitionKey =
        typeof cmd.partition === 'string' ? cmd.partition : who?.system && who.value ? `patient:${who.system}|${who.value}` : 'outbound';
      const sealed = o.outbound.sealer.seal(id, Buffer.from(JSON.stringify({ commandId: cmd.id, hl7 })));
      const r = await o.outbound.outbox.enqueue({
        records: [{ id, type: 'outbound-hl7', partitionKey: o.outbound.partitionKeyer?.(partitionKey) ?? partitionKey, sealed }],
        dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') },
      });
      if (r === 'duplicate' || r === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
      if (r === 'full') return outcome(cmd.id, 'refused', 'outbound queue full; send again later');
      o.outbound.notify();
      return outcome(cmd.id, 'accepted', 'queued for the PMS');
    },
  };
}
