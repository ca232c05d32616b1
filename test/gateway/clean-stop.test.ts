/**
 * A clean stop (what SIGTERM runs) must not be reported as the outbox writer thread dying.
 *
 * The writer thread answers `close` and then exits. Under load the main thread can take the
 * thread's exit before the answer: Node then delivers the held answer synchronously, just before
 * the `exit` event, in the same turn — before the outbox has seen that its close was answered.
 * The case below forces that order (it holds the real answer to `close` and hands it over right
 * before the real `exit`, as Node's drain does); the fault seen before was the log line
 * "outbox writer thread died; restarting it" and a restart timer on a closed outbox.
 */
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { startHarness } from '../support/gateway-harness.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { readAck } from '../../adapters/hl7v2/mllp-client.ts';

/** Delivers the writer's answer to `close` at its exit, the order Node uses when the exit is taken first. */
function answerCloseAtExit(w: Worker, seen: { held: number }): void {
  const post = w.postMessage.bind(w);
  const emit = w.emit.bind(w);
  let closeSent = false;
  let held: unknown[] | undefined;
  w.postMessage = ((message: unknown, transfer?: readonly import('node:worker_threads').Transferable[]) => {
    if ((message as { op?: string }).op === 'close') closeSent = true;
    post(message, transfer as never);
  }) as Worker['postMessage'];
  w.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'message' && closeSent && !held) {
      held = args;
      seen.held++;
      return true;
    }
    if (event === 'exit' && held) emit('message', ...held);
    return emit(event, ...args);
  }) as Worker['emit'];
}

describe('a clean stop', () => {
  for (const writer of ['thread', 'auto'] as const) {
    it(`logs no writer death and schedules no restart when the writer's exit is taken before its answer to close (${writer} writer)`, async () => {
      const seen = { held: 0 };
      const h = await startHarness({ outbox: { writer } }, { logLevel: 'info', onOutboxWriterThread: (w) => answerCloseAtExit(w, seen) });
      const c = await h.client();
      for (let i = 0; i < 5; i++) expect(readAck(await c.send(adtA04({ mrn: `CS${i}` }))).code).toBe('AA');
      await h.stop();
      expect(seen.held).toBe(1);
      const lines = h.logs.map((l) => JSON.parse(l) as { msg: string; level: string });
      expect(lines.filter((l) => l.msg.includes('writer thread died'))).toEqual([]);
      expect(lines.filter((l) => l.level === 'error')).toEqual([]);
      expect(lines.at(-1)?.msg).toBe('gateway stopped');
      // a restart scheduled on the closed outbox would run after this and write its own lines
      await new Promise((r) => setTimeout(r, 400));
      expect(h.logs.length).toBe(lines.length);
    });
  }
});
