/**
 * The MLLP outbound sink (cloud commands → HL7 to the PMS) against the Sink contract: a real
 * MLLP sender to a local "PMS" (the gateway's own MLLP listener on loopback, whose intake answers
 * AA, refuses chosen messages permanently — AE — or holds its answer).
 */
import pino from 'pino';
import type { IntakeContext, IntakeResult } from '../../adapters/contracts.ts';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { createMllpListener } from '../../adapters/hl7v2/mllp-listener.ts';
import { createMllpOutboundSink } from '../../adapters/hl7v2/mllp-outbound-sink.ts';
import { createMllpSender } from '../../adapters/hl7v2/mllp-sender.ts';
import type { RecordBatch } from '../../gateway/sinks/sink.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { freePort } from '../support/net.ts';
import { sinkContract } from './sink-contract.ts';

let made = 0;
/** MSH-10 of each record's message: the PMS answers per control id, the suite counts per record id. */
const recordOf = new Map<string, string>();
const controlOf = (id: string) => `C${id.replace(/[^A-Za-z0-9]/g, '').slice(0, 18)}`;

sinkContract({
  name: 'MLLP outbound sink (to a local MLLP PMS)',
  kind: 'mllp-outbound',
  beforeStart: 'opens',
  atStop: 'rejects',
  restartable: true,
  batch(n) {
    const ids = Array.from({ length: n }, (_, i) => deterministicId('sink-contract', 'mllp', String(++made), String(i)));
    for (const id of ids) recordOf.set(controlOf(id), id);
    return {
      batchId: deterministicId('batch', ...ids),
      ids,
      json: ids.map((id) => JSON.stringify({ commandId: `cmd-${id}`, hl7: adtA04({ id: controlOf(id) }) })),
    } satisfies RecordBatch;
  },
  async make() {
    const port = await freePort();
    const received = new Set<string>();
    const refused = new Set<string>();
    let hold: Promise<void> | undefined;
    const pms = createMllpListener({
      id: 'pms',
      host: '127.0.0.1',
      port,
      maxFrameBytes: 1 << 20,
      idleTimeoutMs: 30_000,
      maxConnections: 8,
    });
    const ctx: IntakeContext = {
      logger: pino({ level: 'silent' }),
      cursor: () => undefined,
      knownRows: () => [],
      intakePage: async () => ({ status: 'rejected', code: 'GW_CONFIG_INVALID', retry: 'transient', reason: 'no pages here' }),
      async intake(raw): Promise<IntakeResult> {
        if (hold) await hold;
        const control = /^MSH\|[^\r]*/.exec(raw.text)?.[0].split('|')[9] ?? '';
        if (refused.has(control))
          return { status: 'rejected', code: 'GW_MAP_FAILED', retry: 'permanent', reason: 'refused by the test PMS', hl7ErrorCode: '207' };
        received.add(control);
        return { status: 'accepted', recordIds: [] };
      },
    };
    await pms.start(ctx);
    // a factory: the sink opens a new sender when started again after a stop
    const sink = createMllpOutboundSink({
      sender: () => createMllpSender({ host: '127.0.0.1', port, poolSize: 2, ackTimeoutMs: 30_000 }),
      retryOn: ['CE'],
      onOutcome: () => undefined,
    });
    let release: (() => void) | undefined;
    return {
      sink,
      async received() {
        return new Set([...received].map((c) => recordOf.get(c) ?? c));
      },
      stall() {
        hold = new Promise<void>((r) => {
          release = () => {
            hold = undefined;
            r();
          };
        });
        return { release: () => release?.() };
      },
      refuse(ids) {
        for (const id of ids) refused.add(controlOf(id));
      },
      async cleanup() {
        release?.();
        await sink.stop();
        await pms.stop();
      },
    };
  },
});
