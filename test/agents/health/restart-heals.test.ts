/**
 * The healing path, on a real gateway: a source that runs but whose connection got stuck (its
 * health `down` with ECONNRESET, which no retry of the supervisor's touches, since its start
 * succeeded). The source here is a small one of the test's own (a real adapter would need its peer
 * to wedge on cue); a restart gives it a new connection. The monitor restarts it, records it healed
 * with the state before and after, clears the finding at once, and starts its back-off afresh.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { defineSource, type SourceAdapter } from '../../../adapters/contracts.ts';
import { sourceKinds } from '../../../adapters/registry.ts';
import type { RemedyRecord } from '../../../agents/health/health-agent.ts';
import { POLL_MS, START, startHealthRig, type HealthRig } from './health-gateway.ts';

const MIN = 60_000;
const at = (minutes: number) => new Date(START + minutes * MIN).toISOString();

interface StuckSource extends SourceAdapter {
  stuck: boolean;
  /** Restarts do not help while set (the peer is really gone). */
  sticky: boolean;
  starts: number;
}

function stuckSource(): StuckSource {
  const s: StuckSource = {
    id: 'pms-link',
    stuck: false,
    sticky: false,
    starts: 0,
    async start() {
      s.starts++;
      if (!s.sticky) s.stuck = false;
    },
    async stop() {},
    health: () => (s.stuck ? { status: 'down', detail: { error: 'ECONNRESET' } } : { status: 'up' }),
  };
  return s;
}

let rig: HealthRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('health monitor: a restart heals a stuck source', () => {
  it('heals it, clears at once, and heals it again later without back-off; a restart that cannot help is counted', async () => {
    const src = stuckSource();
    const kind = defineSource({ kind: 'stuck', section: 'gateway', create: () => ({ adapters: [src], codecs: [] }) });
    rig = await startHealthRig({ hl7: { enabled: false } }, { sources: [...sourceKinds, kind] });
    expect(src.starts).toBe(1);
    src.stuck = true;
    for (let m = 1; m <= 3; m++) await rig.step(POLL_MS);
    // down since the poll at 1; restarted at 3 (failingAfterMs 2 min)
    const remedies = () => (rig!.gw.parts.agents.report('health') as { remedies: RemedyRecord[] }).remedies;
    expect(remedies()).toEqual([
      {
        at: at(3),
        code: 'AGENT_HEALTH_SOURCE_FAILING',
        subject: 'pms-link',
        action: 'restartSource',
        before: { state: 'running', status: 'down', error: 'ECONNRESET' },
        after: { state: 'running', status: 'up' },
        outcome: 'healed',
        usedInHour: 1,
      },
    ]);
    expect(src.starts).toBe(2);
    expect(rig.findings.map((f) => [f.code, f.subject])).toEqual([['AGENT_HEALTH_SOURCE_FAILING', 'pms-link']]);
    expect(rig.findings[0].summary).toBe(
      `source pms-link is failing (ECONNRESET) since ${at(1)}; restarting it now; what to do: the PMS server or database is down or unreachable: start it, check its address and the firewall (\`eyewear-gateway db check\` for a database)`,
    );
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_SOURCE_FAILING', subject: 'pms-link' }]);

    // stuck again 2 minutes later: healed at once again (a healed fault resets the back-off)
    await rig.step(POLL_MS);
    src.stuck = true;
    for (let m = 0; m < 3; m++) await rig.step(POLL_MS);
    expect(remedies().map((r) => [r.at, r.outcome, r.usedInHour])).toEqual([
      [at(3), 'healed', 1],
      [at(7), 'healed', 2],
    ]);

    // now the peer is really gone: the third restart of the hour does not help, and there is no fourth
    await rig.step(POLL_MS);
    src.sticky = true;
    src.stuck = true;
    for (let m = 0; m < 50; m++) await rig.step(POLL_MS);
    expect(remedies().map((r) => [r.at, r.outcome, r.usedInHour])).toEqual([
      [at(3), 'healed', 1],
      [at(7), 'healed', 2],
      [at(11), 'not-healed', 3],
    ]);
    expect(remedies()[2].after).toEqual({ state: 'running', status: 'down', error: 'ECONNRESET' });
    expect(src.starts).toBe(4);
    expect(rig.findings).toHaveLength(3);
    expect(rig.cleared).toHaveLength(2);
    // the budget frees up an hour after the first restart (3 → 63 min): one more try then
    for (let m = 0; m < 10; m++) await rig.step(POLL_MS);
    expect(remedies().map((r) => [r.at, r.outcome])).toEqual([
      [at(3), 'healed'],
      [at(7), 'healed'],
      [at(11), 'not-healed'],
      [at(63), 'not-healed'],
    ]);
  });
});
