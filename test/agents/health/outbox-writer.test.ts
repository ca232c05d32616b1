/**
 * A recorded fault in a real component: the outbox's writer thread is killed (as a crash or the OOM
 * killer would) three times in twenty minutes. The outbox restarts it each time by itself; the
 * monitor names the pattern (AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE) once, and clears it when the
 * restarts have left the hour.
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('health monitor: the outbox writer keeps dying', () => {
  it('names three restarts within an hour once, with the counts, and clears an hour later', async () => {
    let thread: Worker | undefined;
    rig = await startHealthRig({}, { onOutboxWriterThread: (w) => (thread = w) });
    const restarts = () => rig!.gw.parts.outbox.stats().writerRestarts;
    for (let k = 1; k <= 3; k++) {
      const before = thread;
      await before!.terminate();
      // the outbox restarts its writer on its own back-off (the manual clock's timers): a few polls
      for (let i = 0; i < 400 && (restarts() !== k || thread === before); i++) {
        if (i % 20 === 0) await rig.step(POLL_MS);
        else await new Promise((r) => setTimeout(r, 5));
      }
      expect(restarts()).toBe(k);
      if (k < 3) {
        await rig.step(POLL_MS);
        expect(rig.findings).toEqual([]);
        for (let m = 0; m < 8; m++) await rig.step(POLL_MS);
      }
    }
    await rig.step(POLL_MS);
    expect(rig.findings.map((f) => [f.code, f.subject, f.severity])).toEqual([['AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE', 'outbox', 'error']]);
    expect(rig.findings[0].summary).toBe(
      'the outbox writer thread died and was restarted 3 times in the last hour (GW_OUTBOX_IO; input is refused while it restarts, nothing committed is lost): check the system log for I/O errors on the data disk or memory pressure',
    );
    const report = rig.gw.parts.agents.report('health') as { findings: Array<{ evidence: Record<string, unknown> }> };
    expect(report.findings[0].evidence).toEqual({ restartsInHour: 3, writerRestarts: 3, writer: 'running' });
    // no more deaths: still one finding while the restarts are within the hour, then it clears
    for (let m = 0; m < 70; m++) await rig.step(POLL_MS);
    expect(rig.findings).toHaveLength(1);
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE', subject: 'outbox' }]);
  });
});
