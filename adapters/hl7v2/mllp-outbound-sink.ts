/**
 * The outbound direction reuses the record path's machinery: an outbox of HL7 messages the cloud
 * asked us to send (`hl7.send` commands), drained by a relay worker into this sink, which sends
 * each over MLLP and reads the PMS's answer. AA/CA: done. An answer in `retryOn`, or a timeout:
 * retried with backoff. Any other answer: dead letters, with the PMS's ERR as the reason.
 */
import { GatewayError } from '../../gateway/errors.ts';
import type { DeliveryResult, RecordBatch, Sink } from '../../gateway/sinks/sink.ts';
import type { MllpSender } from './mllp-sender.ts';

/** One queued outbound message, as the outbox keeps it (sealed). */
export interface OutboundMessage {
  commandId: string;
  hl7: string;
}

export interface OutboundOutcome { commandId: string; status: 'done' | 'failed'; detail: string }

export function createMllpOutboundSink(o: { sender: MllpSender; retryOn: readonly string[]; onOutcome: (x: OutboundOutcome) => void }): Sink {
  let lastError = '';
  let sent = 0;
  return {
    kind: 'mllp-outbound',
    async start() { /* connections open on demand */ },
    async stop() { await o.sender.close(); },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      const rejected: DeliveryResult['rejected'] = [];
      for (let i = 0; i < batch.json.length; i++) {
        const msg = JSON.parse(batch.json[i]) as OutboundMessage;
        const r = await o.sender.send(msg.hl7).catch((e: unknown) => {
          lastError = e instanceof GatewayError ? e.code : 'error';
          throw e;
        });
        if (r.code === 'AA' || r.code === 'CA') {
          sent++;
          lastError = '';
          o.onOutcome({ commandId: msg.commandId, status: 'done', detail: `${r.code} ${r.controlId}` });
          continue;
        }
        if (o.retryOn.includes(r.code)) {
          lastError = r.code;
          throw new GatewayError('GW_SINK_RETRY_LATER', `PMS answered ${r.code} for ${r.controlId}`);
        }
        const reason = `PMS answered ${r.code}${r.error ? `: ${r.error.slice(0, 200)}` : ''}`;
        rejected.push({ id: batch.ids[i], reason });
        o.onOutcome({ commandId: msg.commandId, status: 'failed', detail: reason });
      }
      return { rejected };
    },
    health: () => ({ connected: lastError === '', detail: { sent, ...o.sender.stats(), ...(lastError ? { lastError } : {}) } }),
  };
}
