/**
 * Runs the configured agents under the gateway's supervisor: each is started with its own context,
 * isolated (one that throws at start is reported and retried; one that throws later in a listener
 * is logged by the bus), and on stop every listener it added is dropped. Findings and proposals are
 * kept (bounded) for status.
 */
import { randomUUID } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { schemaPathOf } from '../config/schema-walk.ts';
import { SECRET_PATHS, type GatewayConfig } from '../config/schema.ts';
import type { Clock } from '../gateway/clock.ts';
import { ownedBus, type EventBus } from '../gateway/event-bus.ts';
import type { PollScheduleRegistry } from '../gateway/poll-schedule.ts';
import type { Supervisor } from '../gateway/supervisor.ts';
import type { Agent, AgentContext, AgentHealth, AgentKind, ConfigProposal, Finding, SinkView, SourceView } from './contract.ts';

/** Findings and proposals kept for status, newest last; older ones are dropped (they were on the bus and in the log). */
const KEEP = 100;

export interface AgentRunnerDeps {
  /** The config the agents are built from. */
  config: GatewayConfig;
  /** The config in effect now (after reloads). */
  current?: () => GatewayConfig;
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  /** Where the agents themselves run (beside the admin API). */
  supervisor: Supervisor;
  /** The source adapters' supervisor: what `restartSource` and friends act on, by adapter id. */
  sourceSupervisor: Supervisor;
  outboxStats: AgentContext['outboxStats'];
  sources(): SourceView[];
  /** The data folder: `diskSpace()` reads its volume (absent: agents are told it is not available). */
  dataDir?: string;
  sink?: () => SinkView;
  /** The polled sources' schedule (`setPollPolicy`); absent: agents are told it is not available. */
  pollSchedules?: PollScheduleRegistry;
}

/** A finding still true: since when, and when last published. */
export type ActiveFinding = Finding & { agent: string; since: number; at: number };

export interface AgentRunner {
  readonly agents: readonly Agent[];
  status(): {
    agents: Array<{ id: string; state: string; health: AgentHealth; error?: string }>;
    findings: Array<Finding & { agent: string; at: number }>;
    /** Findings whose cause is not gone yet (an agent clears them), oldest first. */
    active: ActiveFinding[];
    proposals: Array<ConfigProposal & { id: string; agent: string; at: number }>;
  };
  /** One agent's state, health, active findings and its own report (`GET /agents/<id>`); undefined for an unknown id. */
  report(id: string): Record<string, unknown> | undefined;
}

export const agentOwner = (id: string) => `agent:${id}`;

/** Builds the agents the kinds make from the config and adds each to the supervisor. */
export function createAgentRunner(kinds: readonly AgentKind[], d: AgentRunnerDeps): AgentRunner {
  const agents = kinds.map((k) => k.create(d.config)).filter((a): a is Agent => a !== undefined);
  const findings: Array<Finding & { agent: string; at: number }> = [];
  const proposals: Array<ConfigProposal & { id: string; agent: string; at: number }> = [];
  const active = new Map<string, ActiveFinding>();
  const activeKey = (agent: string, code: string, subject?: string) => JSON.stringify([agent, code, subject ?? null]);
  const keep = <T>(list: T[], x: T) => {
    list.push(x);
    if (list.length > KEEP) list.shift();
  };
  const known = (id: string) => {
    const ids = d.sourceSupervisor.ids();
    if (!ids.includes(id)) throw new Error(`no source "${id}" (sources: ${ids.join(', ') || 'none'})`);
  };

  for (const agent of agents) {
    const owner = agentOwner(agent.id);
    const logger = d.logger.child({ component: owner });
    const control = (action: 'restart' | 'pause' | 'resume', id: string, run: () => Promise<void>) => async () => {
      known(id);
      try {
        await run();
        d.bus.emit('component.control', { component: `adapter:${id}`, action, by: owner, outcome: 'done' });
      } catch (err) {
        d.bus.emit('component.control', {
          component: `adapter:${id}`,
          action,
          by: owner,
          outcome: 'failed',
          code: (err as NodeJS.ErrnoException).code ?? 'unknown',
        });
        throw err;
      }
    };
    const ctx: AgentContext = {
      agentId: agent.id,
      logger,
      clock: d.clock,
      config: () => withoutSecrets((d.current ?? (() => d.config))()),
      events: ownedBus(d.bus, owner),
      outboxStats: d.outboxStats,
      sources: d.sources,
      restartSource: (id) => control('restart', id, () => d.sourceSupervisor.restart(id))(),
      pauseSource: (id) => control('pause', id, () => d.sourceSupervisor.pause(id))(),
      resumeSource: (id) => control('resume', id, () => d.sourceSupervisor.resume(id))(),
      proposeConfigChange(p) {
        if (SECRET_PATHS.includes(schemaPathOf(p.path))) throw new Error(`${p.path} is a secret field: an agent cannot propose its value`);
        const id = randomUUID();
        keep(proposals, { ...p, id, agent: agent.id, at: d.clock.now() });
        d.bus.emit('agent.proposal', { agent: agent.id, id, path: p.path, value: p.value, reason: p.reason });
        logger.info({ proposal: id, path: p.path }, 'config change proposed; nothing is applied until it is accepted');
        return id;
      },
      publishFinding(f) {
        const at = d.clock.now();
        keep(findings, { ...f, agent: agent.id, at });
        const k = activeKey(agent.id, f.code, f.subject);
        active.set(k, { ...f, agent: agent.id, since: active.get(k)?.since ?? at, at });
        d.bus.emit('agent.finding', { agent: agent.id, ...f });
      },
      clearFinding(code, subject) {
        if (!active.delete(activeKey(agent.id, code, subject))) return;
        d.bus.emit('agent.finding.cleared', { agent: agent.id, code, ...(subject !== undefined ? { subject } : {}) });
      },
      async diskSpace() {
        if (d.dataDir === undefined) throw new Error('free disk space is not available to agents here (no data folder)');
        const s = await statfs(d.dataDir);
        return {
          freeBytes: Number(s.bavail) * Number(s.bsize),
          totalBytes: Number(s.blocks) * Number(s.bsize),
          reserveBytes: (d.current ?? (() => d.config))().outbox.diskReserveBytes,
        };
      },
      sink: () => d.sink?.() ?? { kind: 'none', connected: false, detail: { lastError: 'not available to agents here' } },
      setPollPolicy(id, policy) {
        known(id);
        if (!d.pollSchedules) throw new Error('poll schedules are not available to agents here');
        d.pollSchedules.set(id, owner, policy);
      },
      ...(d.dataDir !== undefined ? { stateDir: join(d.dataDir, 'agents', agent.id) } : {}),
    };
    const release = () => {
      d.bus.dropOwner(owner);
      d.pollSchedules?.dropOwner(owner);
    };
    void d.supervisor.add({
      id: owner,
      start: async () => {
        try {
          await agent.start(ctx);
        } catch (err) {
          release();
          throw err;
        }
      },
      stop: async () => {
        try {
          await agent.stop();
        } finally {
          release();
        }
      },
    });
  }

  return {
    agents,
    status: () => ({
      agents: agents.map((a) => {
        const id = agentOwner(a.id);
        const error = d.supervisor.errors.get(id);
        let health: AgentHealth;
        try {
          health = a.health();
        } catch {
          health = { status: 'down', detail: { code: 'GW_AGENT_HEALTH_FAILED' } };
        }
        return { id: a.id, state: d.supervisor.state(id) ?? 'stopped', health, ...(error ? { error } : {}) };
      }),
      findings: [...findings],
      active: [...active.values()],
      proposals: [...proposals],
    }),
    report(id) {
      const a = agents.find((x) => x.id === id);
      if (!a) return undefined;
      const owner = agentOwner(id);
      const error = d.supervisor.errors.get(owner);
      let health: AgentHealth;
      let own: Record<string, unknown> = {};
      try {
        health = a.health();
        own = a.report?.() ?? {};
      } catch {
        health = { status: 'down', detail: { code: 'GW_AGENT_HEALTH_FAILED' } };
      }
      return {
        id,
        state: d.supervisor.state(owner) ?? 'stopped',
        health,
        ...(error ? { error } : {}),
        active: [...active.values()].filter((f) => f.agent === id),
        ...own,
      };
    },
  };
}

/** The config without its secret fields (SECRET_PATHS: `mqtt.password`, `databases[].password`…), for agents. */
export function withoutSecrets(c: GatewayConfig): GatewayConfig {
  const out = structuredClone(c);
  const drop = (node: unknown, parts: readonly string[]): void => {
    if (typeof node !== 'object' || node === null || parts.length === 0) return;
    const [head, ...rest] = parts;
    const list = head.endsWith('[]');
    const key = list ? head.slice(0, -2) : head;
    const tree = node as Record<string, unknown>;
    if (list) {
      const items = tree[key];
      if (Array.isArray(items)) for (const item of items) drop(item, rest);
    } else if (rest.length === 0) delete tree[key];
    else drop(tree[key], rest);
  };
  for (const p of SECRET_PATHS) drop(out, p.split('.'));
  return out;
}
