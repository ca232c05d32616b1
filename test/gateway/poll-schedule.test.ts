/**
 * The poll schedule the polled sources consult after each cycle: without a policy it answers the
 * configured interval exactly; a server's Retry-After is a floor no policy goes under; a source's
 * own sooner need caps it; a policy's owner removes it; a policy that fails is logged (once) and the
 * configured interval is used.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pollWait } from '../../adapters/contracts.ts';
import { createLogger } from '../../gateway/logger.ts';
import { createPollScheduleRegistry } from '../../gateway/poll-schedule.ts';

function registry() {
  const logs: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] });
  return { r: createPollScheduleRegistry({ logger }), logs };
}

describe('pollWait', () => {
  it('is the configured interval without a schedule, and a Retry-After longer than it wins', () => {
    expect(pollWait(undefined, { configuredMs: 5000, changes: 3 })).toBe(5000);
    expect(pollWait({}, { configuredMs: 5000, changes: 0, serverMinMs: 120_000 })).toBe(120_000);
    expect(pollWait({}, { configuredMs: 5000, changes: 0, serverMinMs: 1000 })).toBe(5000);
    expect(pollWait({}, { configuredMs: 60_000, changes: 0, soonerMs: 2000 })).toBe(2000);
  });

  it('takes the schedule’s answer, never under the server’s floor, and the configured one for nonsense', () => {
    const says = (ms: number) => ({ pollSchedule: { next: () => ms } });
    expect(pollWait(says(600_000), { configuredMs: 5000, changes: 0 })).toBe(600_000);
    expect(pollWait(says(30_000), { configuredMs: 5000, changes: 0, serverMinMs: 90_000 })).toBe(90_000);
    expect(pollWait(says(600_000), { configuredMs: 5000, changes: 0, soonerMs: 10_000, serverMinMs: 20_000 })).toBe(20_000);
    expect(pollWait(says(Number.NaN), { configuredMs: 5000, changes: 0 })).toBe(5000);
    expect(pollWait(says(-1), { configuredMs: 5000, changes: 0 })).toBe(5000);
  });
});

describe('poll schedule registry', () => {
  it('answers the configured interval until a policy is set, and again once its owner drops it', () => {
    const { r } = registry();
    const pms = r.forSource('pms');
    expect(pms.next({ configuredMs: 5000, changes: 0 })).toBe(5000);
    const seen: Array<[string, number]> = [];
    r.set('pms', 'agent:sync', {
      next: (id, c) => {
        seen.push([id, c.changes]);
        return c.changes > 0 ? 30_000 : 600_000;
      },
    });
    expect(pms.next({ configuredMs: 5000, changes: 0 })).toBe(600_000);
    expect(pms.next({ configuredMs: 5000, changes: 4 })).toBe(30_000);
    expect(seen).toEqual([
      ['pms', 0],
      ['pms', 4],
    ]);
    expect(r.view()).toEqual([{ sourceId: 'pms', owner: 'agent:sync', lastWaitMs: 30_000, lastConfiguredMs: 5000 }]);
    // another owner cannot remove it; its own can
    r.set('pms', 'agent:other', undefined);
    expect(pms.next({ configuredMs: 5000, changes: 0 })).toBe(600_000);
    r.dropOwner('agent:sync');
    expect(pms.next({ configuredMs: 5000, changes: 0 })).toBe(5000);
    expect(r.view()).toEqual([{ sourceId: 'pms', lastWaitMs: 5000, lastConfiguredMs: 5000 }]);
  });

  it('a policy that throws or answers nonsense is logged with its code and the configured interval used', () => {
    const { r, logs } = registry();
    r.set('fhir', 'agent:sync', {
      next: () => {
        throw new TypeError('boom');
      },
    });
    r.set('api', 'agent:sync', { next: () => Number.POSITIVE_INFINITY });
    expect(r.forSource('fhir').next({ configuredMs: 7000, changes: 1 })).toBe(7000);
    expect(r.forSource('api').next({ configuredMs: 9000, changes: 0 })).toBe(9000);
    expect(logs.filter((l) => l.code === 'GW_POLL_POLICY_FAILED').map((l) => [l.sourceId, l.cause])).toEqual([
      ['fhir', 'TypeError'],
      ['api', 'Error'],
    ]);
  });
});
