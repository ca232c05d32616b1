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

export interface OutboundOutcome {
  commandId: string;
  status: 'done' | 'failed';
  detail: string;
}

/**
 * `sender` is one sender (closed for good by stop(); the sink then refuses sends) or a factory:
 * with a factory, start() after stop() opens a new sender, so the sink can be restarted.
 */
export function createMllpOutboundSink(o: {
  sender: MllpSender | (() => MllpSender);
  retryOn: readonly string[];
  onOutcome: (x: OutboundOutcome) => void;
}): Sink {
  const make = typeof o.sender === 'function' ? o.sender : undefined;
  let sender: MllpSender | undefined = typeof o.sender === 'function' ? undefined : o.sender;
  let stopped = false;
  let lastError = '';
  let sent = 0;
  /** The sends waiting for the PMS: stop() cuts each (even one whose connection is still opening). */
  const cutters = new Set<(e: Error) => void>();
  /** The sender in use; a factory's first one is made on demand (connections open on demand too). */
  const current = (): MllpSender => {
    if (!sender) sender = make!();
    return sender;
  };
  return {
    kind: 'mllp-outbound',
    async start() {
      if (stopped && make) sender = make();
      stopped = false;
    },
    async stop() {
      stopped = true;
      // the sends waiting for the PMS's answer are not delivered: the relay resends them, and the
      // PMS sees the same MSH-10 (the control id is fixed by the command id)
      const cut = new GatewayError('GW_SINK_UNREACHABLE', 'MLLP outbound sink stopped before the PMS answered; the message is resent', {
        retry: 'ambiguous',
      });
      for (const c of cutters) c(cut);
      cutters.clear();
      await sender?.close();
    },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      if (stopped)
        throw new GatewayError(
          'GW_SINK_UNREACHABLE',
          'MLLP outbound sink stopped; the messages stay queued and are sent after the next start',
        );
      const s = current();
      const rejected: DeliveryResult['rejected'] = [];
      for (let i = 0; i < batch.json.length; i++) {
        if (stopped)
          throw new GatewayError('GW_SINK_UNREACHABLE', 'MLLP outbound sink stopped; the rest of the batch is resent', {
            retry: 'ambiguous',
          });
        const msg = JSON.parse(batch.json[i]) as OutboundMessage;
        let cutter: ((e: Error) => void) | undefined;
        const stoppedBefore = new Promise<never>((_, reject) => {
          cutter = reject;
          cutters.add(reject);
        });
        const r = await Promise.race([s.send(msg.hl7), stoppedBefore])
          .catch((e: unknown) => {
            lastError = e instanceof GatewayError ? e.code : 'error';
            throw e;
          })
          .finally(() => {
            if (cutter) cutters.delete(cutter);
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
    health: () => ({
      connected: !stopped && lastError === '',
      detail: { sent, ...(sender?.stats() ?? {}), ...(lastError ? { lastError } : {}) },
    }),
  };
}
