/**
 * The sync scheduler under the real agent runner, supervisors, event bus and poll-schedule
 * registry, on a manual clock, with one source (`pms`) whose schedule a test consults as the
 * poller would after each cycle (`cycle`). For the model and its state file without a whole
 * gateway; the end-to-end test (sync-gateway.test.ts) runs a real one with a real database.
 */
import { Writable } from 'node:stream';
import { validateConfig } from '../../../config/load.ts';
import type { PollCycle } from '../../../adapters/contracts.ts';
import { createSyncAgent, type SyncAgent } from '../../../agents/sync/sync-agent.ts';
import { createAgentRunner, type AgentRunner } from '../../../agents/runner.ts';
import { createManualClock, type ManualClock } from '../../../gateway/clock.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { createPollScheduleRegistry, type PollScheduleRegistry } from '../../../gateway/poll-schedule.ts';
import { createSupervisor, type Supervisor } from '../../../gateway/supervisor.ts';

/** Monday 2 March 2026, 00:00 UTC. */
export const MONDAY = Date.UTC(2026, 2, 2);

export interface SyncRig {
  clock: ManualClock;
  agent: SyncAgent;
  runner: AgentRunner;
  services: Supervisor;
  schedules: PollScheduleRegistry;
  logs: Array<Record<string, unknown>>;
  /** What the poller of `pms` waits after a cycle that saw `changes`. */
  cycle(changes: number, o?: Partial<PollCycle>): number;
  stop(): Promise<void>;
}

export async function startSyncRig(dataDir: string, sync: Record<string, unknown> = {}, start = MONDAY): Promise<SyncRig> {
  const v = validateConfig({ gateway: { dataDir, timezone: 'UTC' }, agents: { sync: { enabled: true, ...sync } } });
  if (!v.ok) throw new Error(`bad test config: ${JSON.stringify(v.problems)}`);
  const logs: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] });
  const clock = createManualClock(start);
  const bus = createEventBus();
  const sources = createSupervisor({ clock, logger, bus });
  await sources.add({ id: 'pms', start: async () => {}, stop: async () => {} });
  await sources.startAll();
  const services = createSupervisor({ clock, logger, bus });
  const schedules = createPollScheduleRegistry({ logger });
  const agent = createSyncAgent(v.config.agents.sync);
  const runner = createAgentRunner([{ kind: 'sync', create: () => agent }], {
    config: v.config,
    clock,
    logger,
    bus,
    supervisor: services,
    sourceSupervisor: sources,
    outboxStats: () => {
      throw new Error('not used');
    },
    sources: () => [{ id: 'pms', state: 'running', health: { status: 'up' } }],
    dataDir,
    pollSchedules: schedules,
  });
  await services.startAll();
  const schedule = schedules.forSource('pms');
  return {
    clock,
    agent,
    runner,
    services,
    schedules,
    logs,
    cycle: (changes, o = {}) => schedule.next({ configuredMs: 60_000, changes, ...o }),
    stop: async () => {
      await services.stopAll();
      await sources.stopAll();
    },
  };
}

/** Polls `pms` through `hours` hours from now, a cycle per `waitMs` answered, with changes where `changed(t)` says. */
export function pollThrough(rig: SyncRig, hours: number, changed: (t: number) => number): number {
  const end = rig.clock.now() + hours * 3_600_000;
  let polls = 0;
  while (rig.clock.now() < end) {
    const wait = rig.cycle(changed(rig.clock.now()));
    polls++;
    rig.clock.advance(wait);
  }
  return polls;
}
