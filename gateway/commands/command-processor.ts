/**
 * Carries out verified cloud commands. `hl7.send` queues an HL7 message for the PMS in the
 * outbound outbox (durably, before the command is reported accepted); the outbound relay then
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
import type { CommandVerifier } from './command-verifier.ts';

export interface CommandProcessor {
  handle(jws: string): Promise<{ commandId?: string; status: 'accepted' | 'refused'; detail: string }>;
}

export function createCommandProcessor(o: { verifier: CommandVerifier; outbound?: { outbox: Outbox; sealer: RecordSealer; notify: () => void }; bus: EventBus; logger: Logger }): CommandProcessor {
  const outcome = (commandId: string | undefined, status: 'accepted' | 'refused', detail: string) => {
    o.bus.emit('command.outcome', { commandId: commandId ?? '(unknown)', status, detail });
    (status === 'refused' ? o.logger.warn.bind(o.logger) : o.logger.info.bind(o.logger))({ commandId, status, detail }, 'cloud command');
    return { commandId, status, detail };
  };
  return {
    async handle(jws) {
      let cmd;
      try { cmd = await o.verifier.verify(jws); } catch (e) {
        return outcome(undefined, 'refused', isGatewayError(e) ? e.message : 'unverifiable');
      }
      switch (cmd.type) {
        case 'hl7.send': {
          if (!o.outbound) return outcome(cmd.id, 'refused', 'outbound HL7 is disabled (outbound.enabled)');
          const hl7 = typeof cmd.hl7 === 'string' ? cmd.hl7 : '';
          try { parseHl7(hl7); } catch (e) { return outcome(cmd.id, 'refused', `hl7 is not a well-formed message: ${e instanceof CodecError ? e.message : 'parse error'}`); }
          const id = deterministicId('outbound', cmd.id);
          const partitionKey = typeof cmd.partition === 'string' ? cmd.partition : 'outbound';
          const sealed = o.outbound.sealer.seal(id, Buffer.from(JSON.stringify({ commandId: cmd.id, hl7 })));
          const r = await o.outbound.outbox.enqueue({ records: [{ id, type: 'outbound-hl7', partitionKey, sealed }], dedupe: { key: `command|${cmd.id}`, hash: createHash('sha256').update(jws).digest('hex') } });
          if (r === 'duplicate' || r === 'conflict') return outcome(cmd.id, 'refused', 'replayed command id');
          if (r === 'full') return outcome(cmd.id, 'refused', 'outbound queue full; send again later');
          o.outbound.notify();
          return outcome(cmd.id, 'accepted', 'queued for the PMS');
        }
        default:
          return outcome(cmd.id, 'refused', `unknown command type ${cmd.type}`);
      }
    },
  };
}
