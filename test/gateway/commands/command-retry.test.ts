/**
 * The command processor's retries run on the injected clock: a write-back whose database cannot
 * be reached is tried again after 1 s, 2 s, 4 s … of the clock's time, so the schedule is seen
 * exactly without waiting for it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { CompactSign } from 'jose';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { WriteBack } from '../../../adapters/sql/write-back.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { createCommandProcessor } from '../../../gateway/commands/command-processor.ts';
import { createCommandVerifier } from '../../../gateway/commands/command-verifier.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { waitFor } from '../../support/net.ts';

const keys = generateKeyPairSync('ed25519');

describe('command retries on the clock', () => {
  it('retries an unreachable write-back after 1 s, 2 s and 4 s of clock time, then reports done', async () => {
    const clock = createManualClock(Date.UTC(2026, 11, 2, 9, 0, 0));
    const attemptsAt: number[] = [];
    const wb: WriteBack = {
      async run() {
        attemptsAt.push(clock.now());
        if (attemptsAt.length < 4) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 1;
      },
      async close() {
        /* nothing held */
      },
    };
    const outcomes: Array<{ commandId: string; status: string }> = [];
    const bus = createEventBus(() => undefined);
    bus.on('command.outcome', (e) => outcomes.push(e));
    const outbox = createMemoryOutbox({ maxBytes: 10_000_000, clock });
    await outbox.open();
    const processor = createCommandProcessor({
      verifier: createCommandVerifier({
        publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        gatewayId: 'gw-retry',
        now: () => clock.now(),
      }),
      direct: {
        outbox,
        sealer: createRecordSealer(randomBytes(32)),
        writeBackFor: (db) => (db === 'pms' ? wb : undefined),
        fileWriterFor: () => undefined,
        attempts: 5,
        retryDelayMs: 1000,
      },
      bus,
      logger: pino({ level: 'silent' }),
      clock,
    });
    const iat = Math.floor(clock.now() / 1000);
    const jws = await new CompactSign(
      Buffer.from(
        JSON.stringify({
          id: 'wb-1',
          type: 'db.write',
          gatewayId: 'gw-retry',
          iat,
          exp: iat + 600,
          database: 'pms',
          statement: 'status',
          values: {},
        }),
      ),
    )
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(keys.privateKey);
    const start = clock.now();
    expect((await processor.handle(jws)).status).toBe('accepted');
    await waitFor(() => attemptsAt.length === 1 && clock.pending() === 1, 5000, 'the first attempt and its retry timer');
    expect(clock.nextDue()).toBe(start + 1000);
    for (const [n, wait] of [
      [2, 1000],
      [3, 2000],
      [4, 4000],
    ] as const) {
      clock.advance(wait - 1);
      expect(attemptsAt.length).toBe(n - 1);
      clock.advance(1);
      await waitFor(() => attemptsAt.length === n, 5000, `attempt ${n}`);
      if (n < 4) await waitFor(() => clock.pending() === 1, 5000, `the timer before attempt ${n + 1}`);
    }
    expect(attemptsAt.map((t) => t - start)).toEqual([0, 1000, 3000, 7000]);
    await waitFor(() => outcomes.some((o) => o.commandId === 'wb-1' && o.status === 'done'), 5000, 'done');
    expect(outcomes.filter((o) => o.commandId === 'wb-1').map((o) => o.status)).toEqual(['accepted', 'done']);
    expect(clock.pending()).toBe(0);
  });
});
