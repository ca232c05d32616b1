/**
 * The sync agent kind and its config: off by default, built when enabled, bounds checked, a
 * source's own bounds and budgets replacing the defaults; a budget that binds is taken into the
 * history with its reason, and its use is shown.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentKinds } from '../../../agents/index.ts';
import { syncAgentKind } from '../../../agents/sync/index.ts';
import { createSyncAgent } from '../../../agents/sync/sync-agent.ts';
import { validateConfig } from '../../../config/load.ts';
import { MONDAY, startSyncRig, type SyncRig } from './sync-rig.ts';

const configOf = (raw: Record<string, unknown>) => {
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.config;
};

let rig: SyncRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('sync agent kind', () => {
  it('is registered, off by default, and built when enabled', () => {
    expect(agentKinds.map((k) => k.kind)).toContain('sync');
    const off = configOf({});
    expect(off.agents.sync).toEqual({
      enabled: false,
      minIntervalMs: 30_000,
      maxIntervalMs: 600_000,
      learningDays: 14,
      slowdownFactor: 2,
      historySize: 100,
      budgets: { perMinute: 0, perDay: 0 },
      sources: {},
    });
    expect(syncAgentKind.create(off)).toBeUndefined();
    expect(syncAgentKind.create(configOf({ agents: { sync: { enabled: true } } }))?.id).toBe('sync');
    expect(validateConfig({ agents: { sync: { minIntervalMs: 10 } } }).ok).toBe(false);
    expect(validateConfig({ agents: { sync: { maxIntervalMs: 7 * 3600_000 } } }).ok).toBe(false);
    expect(validateConfig({ agents: { sync: { sources: { pms: { every: 5 } } } } }).ok).toBe(false);
  });

  it('a source’s own bounds and budgets replace the defaults, the rest stay', () => {
    const c = configOf({
      agents: {
        sync: { budgets: { perMinute: 10, perDay: 5000 }, sources: { pms: { minIntervalMs: 45_000, budgets: { perDay: 100 } } } },
      },
    });
    const a = createSyncAgent(c.agents.sync);
    expect(a.boundsOf('pms')).toEqual({ minMs: 45_000, maxMs: 600_000, slowdownFactor: 2, perMinute: 10, perDay: 100, learningDays: 14 });
    expect(a.boundsOf('fhir')).toEqual({ minMs: 30_000, maxMs: 600_000, slowdownFactor: 2, perMinute: 10, perDay: 5000, learningDays: 14 });
  });

  it('a budget that binds caps the wait, is in the history with its reason, and its use is shown', async () => {
    rig = await startSyncRig(mkdtempSync(join(tmpdir(), 'ewml-sync-kind-')), { budgets: { perDay: 1440 } }, MONDAY + 10 * 3600_000);
    // learning: the configured 60 s — but 2 queries a poll at 1440 a day is one poll every 2 min
    expect(rig.cycle(0, { requests: 2 })).toBe(120_000);
    rig.clock.advance(120_000);
    expect(rig.cycle(0, { requests: 2 })).toBe(120_000);
    const report = rig.agent.report() as {
      sources: { pms: { intervalMs: number; reason: string; budgets: Record<string, number> } };
      history: Array<{ change: string; reason: string; toMs: number }>;
    };
    expect(report.sources.pms).toMatchObject({
      intervalMs: 120_000,
      reason: 'budget',
      budgets: { perMinute: 0, perDay: 1440, usedLastMinute: 2, usedLastDay: 4, queriesPerPoll: 2, floorMs: 120_000 },
    });
    expect(report.history.map((h) => [h.change, h.toMs, h.reason])).toEqual([
      ['budget', 120_000, 'budget 1440/day at 2 queries a poll caps the interval at ≥ 2 min'],
    ]);
    expect(rig.logs.filter((l) => l.change === 'budget').map((l) => l.msg)).toEqual([
      'schedule: budget 1440/day at 2 queries a poll caps the interval at ≥ 2 min',
    ]);
  });
});
