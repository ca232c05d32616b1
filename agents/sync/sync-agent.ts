/**
 * The sync scheduler: it sets a poll policy on every source through its context
 * (`setPollPolicy`); the polled ones (databases, FHIR servers, APIs) ask it after each cycle how
 * long to wait, telling it what the cycle saw changed and how many queries it made. The answer
 * comes from the source's learned week (model.ts), its bounds and its budgets. Every change of a
 * source's learned plan, every burst that speeds a slow hour up and every budget cap taken or
 * lifted is logged with its reason and kept in a bounded history, shown in `GET /agents/sync`.
 * What it learned is written to `<data>/agents/sync/sync-state.json` at each half hour's end and at
 * stop (state-file.ts). When it stops the runner removes its policies: the sources go back to
 * their configured intervals.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import type { PollCycle } from '../../adapters/contracts.ts';
import type { Agent, AgentContext, AgentHealth } from '../contract.ts';
import { formatMs as fmt, localClock, type LocalSlot } from './local-time.ts';
import { type Bounds, budgetFloor, decide, emptyState, usageOf, type SourceModelState } from './model.ts';
import { freshState, loadState, MAX_SOURCES, type ScheduleChange, saveState, type SyncState } from './state-file.ts';

export type SyncConfig = GatewayConfig['agents']['sync'];

export interface SyncAgent extends Agent {
  report(): Record<string, unknown>;
  /** The bounds and budgets one source is held to. */
  boundsOf(sourceId: string): Bounds;
}

interface Live {
  lastWaitMs?: number;
  lastReason?: string;
  budgetCapped: boolean;
  decisions: number;
}

const iso = (t: number) => new Date(t).toISOString();
const codeOf = (e: unknown) => String((e as NodeJS.ErrnoException | undefined)?.code ?? (e instanceof Error ? e.name : 'unknown'));

export function createSyncAgent(cfg: SyncConfig, id = 'sync'): SyncAgent {
  let ctx: AgentContext | undefined;
  let state: SyncState = freshState();
  let local: ((t: number) => LocalSlot) | undefined;
  let persist = false;
  let stateError: string | undefined;
  let damaged: { movedTo: string; why: string } | undefined;
  let dirty = false;
  let policed: string[] = [];
  const live = new Map<string, Live>();
  const cost = { decisions: 0, cpuMicros: 0, maxCpuMicros: 0, saves: 0, saveFailures: 0, saveCpuMicros: 0 };

  const boundsOf = (sourceId: string): Bounds => {
    const o = cfg.sources[sourceId];
    const minMs = o?.minIntervalMs ?? cfg.minIntervalMs;
    return {
      minMs,
      maxMs: Math.max(minMs, o?.maxIntervalMs ?? cfg.maxIntervalMs),
      slowdownFactor: cfg.slowdownFactor,
      perMinute: o?.budgets?.perMinute ?? cfg.budgets.perMinute,
      perDay: o?.budgets?.perDay ?? cfg.budgets.perDay,
      learningDays: cfg.learningDays,
    };
  };

  function record(c: AgentContext, e: Omit<ScheduleChange, 'at'>): void {
    state.history.push({ at: iso(c.clock.now()), ...e });
    while (state.history.length > cfg.historySize) state.history.shift();
    dirty = true;
    c.logger.info({ sourceId: e.sourceId, change: e.change, fromMs: e.fromMs, toMs: e.toMs }, `schedule: ${e.reason}`);
  }

  function save(c: AgentContext): void {
    if (!persist || !c.stateDir) return;
    try {
      saveState(c.stateDir, state);
      cost.saves++;
      dirty = false;
      if (stateError) c.logger.info({ code: 'AGENT_SYNC_STATE_WRITE_FAILED' }, 'learned state written again');
      stateError = undefined;
    } catch (e) {
      cost.saveFailures++;
      // logged once per failing stretch; what was learned stays in memory and is written at the next half hour's end
      if (!stateError)
        c.logger.warn(
          { code: 'AGENT_SYNC_STATE_WRITE_FAILED', cause: codeOf(e) },
          'learned state not written (kept in memory, tried again at the next half hour’s end); the previous file is untouched',
        );
      stateError = `AGENT_SYNC_STATE_WRITE_FAILED: ${codeOf(e)}`;
    }
  }

  function next(sourceId: string, cycle: PollCycle): number {
    const c = ctx;
    if (!c || !local) return cycle.configuredMs;
    const started = process.cpuUsage();
    let s: SourceModelState | undefined = state.sources[sourceId];
    if (!s) {
      // bounded: a gateway has a handful of polled sources; past the bound a source keeps its configured interval
      if (Object.keys(state.sources).length >= MAX_SOURCES) return cycle.configuredMs;
      s = emptyState();
      state.sources[sourceId] = s;
    }
    let l = live.get(sourceId);
    if (!l) {
      l = { budgetCapped: false, decisions: 0 };
      live.set(sourceId, l);
    }
    const b = boundsOf(sourceId);
    const now = c.clock.now();
    const here = local(now);
    const slotBefore = s.slot?.key;
    const d = decide(
      s,
      {
        now,
        local: here,
        next: local(now + here.msToNextSlot),
        changes: Math.max(0, cycle.changes),
        requests: Math.max(1, cycle.requests ?? 1),
        configuredMs: cycle.configuredMs,
        ...(l.lastWaitMs !== undefined ? { lastWaitMs: l.lastWaitMs } : {}),
      },
      b,
    );
    if (d.planChanged) record(c, { sourceId, change: 'plan', fromMs: l.lastWaitMs, toMs: d.learnedMs, reason: d.planChanged });
    if (d.burst && l.lastWaitMs !== undefined && l.lastWaitMs > b.minMs)
      record(c, {
        sourceId,
        change: 'burst',
        fromMs: l.lastWaitMs,
        toMs: d.waitMs,
        reason: `${cycle.changes} change${cycle.changes === 1 ? '' : 's'} in a half hour learned as quiet; interval ${fmt(l.lastWaitMs)} → ${fmt(d.waitMs)}, slowing again by ×${b.slowdownFactor} a quiet poll`,
      });
    const capped = d.reason === 'budget';
    if (capped !== l.budgetCapped) {
      l.budgetCapped = capped;
      record(c, {
        sourceId,
        change: capped ? 'budget' : 'budget-lifted',
        fromMs: l.lastWaitMs,
        toMs: d.waitMs,
        reason: capped
          ? `budget ${budgetText(b)} at ${round1(s.requestsPerCycle ?? 1)} queries a poll caps the interval at ≥ ${fmt(d.budgetFloorMs)}`
          : `the budget no longer binds; interval ${fmt(d.waitMs)}`,
      });
    }
    l.lastWaitMs = d.waitMs;
    l.lastReason = d.reason;
    l.decisions++;
    const used = process.cpuUsage(started);
    const micros = used.user + used.system;
    cost.decisions++;
    cost.cpuMicros += micros;
    cost.maxCpuMicros = Math.max(cost.maxCpuMicros, micros);
    if (slotBefore !== undefined && slotBefore !== s.slot?.key) {
      dirty = true;
      const t = process.cpuUsage();
      save(c);
      const u = process.cpuUsage(t);
      cost.saveCpuMicros += u.user + u.system;
    }
    return d.waitMs;
  }

  const policy = { next };

  return {
    id,
    boundsOf,
    async start(c) {
      ctx = c;
      local = localClock(c.config().gateway.timezone);
      persist = c.stateDir !== undefined;
      damaged = undefined;
      if (c.stateDir) {
        try {
          const r = loadState(c.stateDir, c.clock.now());
          state = r.state;
          if (r.kind === 'damaged') {
            damaged = { movedTo: r.movedTo, why: r.why };
            c.logger.error(
              { code: 'AGENT_SYNC_STATE_DAMAGED', movedTo: r.movedTo, why: r.why },
              'learned state file damaged: moved aside, learning starts fresh',
            );
            record(c, {
              sourceId: '*',
              change: 'reset',
              toMs: cfg.minIntervalMs,
              reason: `state file damaged (${r.why}); learning starts fresh`,
            });
          } else if (r.kind === 'loaded')
            c.logger.info({ sources: Object.keys(state.sources).length, history: state.history.length }, 'learned state read');
        } catch (e) {
          // neither readable nor movable aside: learn in memory, and never write over it
          persist = false;
          stateError = `AGENT_SYNC_STATE_DAMAGED: ${codeOf(e)}`;
          state = freshState();
          c.logger.error(
            { code: 'AGENT_SYNC_STATE_DAMAGED', cause: codeOf(e) },
            'learned state file unreadable and could not be moved aside: learning in memory only, the file is left as it is',
          );
        }
      }
      policed = c.sources().map((s) => s.id);
      for (const sid of policed) c.setPollPolicy(sid, policy);
    },
    async stop() {
      const c = ctx;
      if (!c) return;
      for (const sid of policed) {
        try {
          c.setPollPolicy(sid, undefined);
        } catch {
          // a source gone in a reload: nothing to remove
        }
      }
      policed = [];
      if (dirty || state.history.length > 0) save(c);
      ctx = undefined;
      live.clear();
    },
    health(): AgentHealth {
      const sources = Object.keys(state.sources).length;
      return {
        status: stateError ? 'degraded' : 'up',
        detail: {
          sources,
          decisions: cost.decisions,
          changes: state.history.length,
          ...(state.history.length ? { last: state.history.at(-1)!.reason.slice(0, 200) } : {}),
          ...(stateError ? { stateError } : {}),
        },
      };
    },
    report() {
      const now = ctx?.clock.now() ?? Date.now();
      return {
        sources: Object.fromEntries(
          Object.entries(state.sources).map(([sid, s]) => {
            const b = boundsOf(sid);
            const l = live.get(sid);
            const use = usageOf(s, now);
            return [
              sid,
              {
                plan: s.summary ?? 'learning',
                intervalMs: l?.lastWaitMs,
                reason: l?.lastReason,
                bounds: { minMs: b.minMs, maxMs: b.maxMs },
                budgets: {
                  perMinute: b.perMinute,
                  perDay: b.perDay,
                  usedLastMinute: use.lastMinute,
                  usedLastDay: use.lastDay,
                  queriesPerPoll: round1(s.requestsPerCycle ?? 0),
                  floorMs: budgetFloor(s.requestsPerCycle ?? 1, b),
                },
                cycles: s.cycles,
                changes: s.changes,
                changeDays: s.changeDays,
                ...(s.firstAt !== undefined ? { learningSince: iso(s.firstAt) } : {}),
              },
            ];
          }),
        ),
        history: [...state.history],
        cost: {
          decisions: cost.decisions,
          cpuMicrosPerDecision: cost.decisions ? Math.round(cost.cpuMicros / cost.decisions) : 0,
          maxCpuMicros: cost.maxCpuMicros,
          saves: cost.saves,
          saveFailures: cost.saveFailures,
          cpuMicrosPerSave: cost.saves ? Math.round(cost.saveCpuMicros / cost.saves) : 0,
        },
        ...(stateError ? { stateError } : {}),
        ...(damaged ? { damagedStateMovedTo: damaged.movedTo } : {}),
      };
    },
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const budgetText = (b: Bounds) => [b.perMinute ? `${b.perMinute}/min` : '', b.perDay ? `${b.perDay}/day` : ''].filter(Boolean).join(', ');
