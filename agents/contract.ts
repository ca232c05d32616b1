/**
 * The Agent contract. An agent watches the gateway and acts through a narrow control surface (its
 * context) — it never reaches into the gateway's parts. What it may do: read outbox and source
 * stats, restart one source, pause and resume one (a poller), propose a config change (applied only
 * when a person or the cloud accepts it), publish a finding, and listen to events. Every listener it
 * adds through `ctx.events` is dropped when it stops, whether or not its own `stop()` remembered to.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import type { AdapterHealth } from '../adapters/contracts.ts';
import type { Clock } from '../gateway/clock.ts';
import type { OwnedBus } from '../gateway/event-bus.ts';
import type { OutboxStats } from '../gateway/outbox/outbox.ts';
import type { PollPolicy } from '../gateway/poll-schedule.ts';
import type { SupervisedState } from '../gateway/supervisor.ts';

export interface AgentHealth {
  status: 'up' | 'degraded' | 'down';
  /** PHI-free detail: counts, codes, times. */
  detail?: Record<string, number | string | boolean>;
}

export interface SourceView {
  id: string;
  state: SupervisedState;
  health: AdapterHealth;
  /** The error code of its last failed start, while it keeps failing. */
  error?: string;
}

export interface Finding {
  /** A stable code (what was found), e.g. `AGENT_PMS_DETECTED`. */
  code: string;
  severity: 'info' | 'warning' | 'error';
  /** One PHI-free sentence: what was found and what to do. */
  summary: string;
  /** What it is about (a source id, the sink's kind, `disk`), so one code can be active for two sources; none: the gateway. */
  subject?: string;
}

/** Free space on the data volume (statfs of the data folder). */
export interface DiskSpace {
  freeBytes: number;
  totalBytes: number;
  /** `outbox.diskReserveBytes`: below it input is refused (GW_DISK_LOW). */
  reserveBytes: number;
}

/** The sink as the relay sees it: connected or not, and its PHI-free detail (`lastError`: a code). */
export interface SinkView {
  kind: string;
  connected: boolean;
  detail?: Record<string, string | number | boolean>;
}

export interface ConfigProposal {
  /** The config field, as REFERENCE.md names it (`databases[0].pollIntervalMs`). */
  path: string;
  value: unknown;
  /** Why: PHI-free, shown to the person who accepts or refuses it. */
  reason: string;
}

export interface AgentContext {
  readonly agentId: string;
  readonly logger: Logger;
  /** Time and timers: an agent schedules through this clock, so tests drive it by hand. */
  readonly clock: Clock;
  /** The config in effect now (after reloads), without its secret fields (passwords, keys, tokens). */
  config(): Readonly<GatewayConfig>;
  /** Events on the gateway's bus; listeners added here are owned by the agent and dropped at its stop. */
  readonly events: OwnedBus;
  outboxStats(): OutboxStats;
  sources(): SourceView[];
  /** Stops and starts one source adapter. Rejects for an unknown id. */
  restartSource(id: string): Promise<void>;
  /** Stops one source and keeps it stopped (not retried) until `resumeSource`. */
  pauseSource(id: string): Promise<void>;
  resumeSource(id: string): Promise<void>;
  /** Records a proposed config change; returns its id. Nothing is applied here. A secret field cannot be proposed (it throws). */
  proposeConfigChange(p: ConfigProposal): string;
  /** Publishes a finding on the bus (`agent.finding`) and in status, where it stays active until cleared. */
  publishFinding(f: Finding): void;
  /** The cause is gone: the finding leaves the active list in status (`agent.finding.cleared`). Nothing happens when it was not active. */
  clearFinding(code: string, subject?: string): void;
  /** Free space on the data volume now (one statfs). Rejects when it cannot be read. */
  diskSpace(): Promise<DiskSpace>;
  /** The sink's connectivity now. */
  sink(): SinkView;
  /**
   * Sets the policy one polled source's waits follow after each cycle (gateway/poll-schedule.ts),
   * or removes it (`undefined`): the source then waits its configured interval. Dropped when the
   * agent stops. A server's Retry-After is still a floor. Throws for an unknown id.
   */
  setPollPolicy(sourceId: string, policy: PollPolicy | undefined): void;
  /** A folder of the data folder for the agent's own small state (`<data>/agents/<id>`, not yet created); absent: nothing survives a restart. */
  readonly stateDir?: string;
}

export interface Agent {
  readonly id: string;
  start(ctx: AgentContext): Promise<void>;
  stop(): Promise<void>;
  health(): AgentHealth;
  /** Its full PHI-free report for the admin API (`GET /agents/<id>`): what it watches, what it found, what it did. */
  report?(): Record<string, unknown>;
}

/** An agent kind as the registry (agents/index.ts) lists it: it builds its agent from the config, or none when not configured. */
export interface AgentKind {
  readonly kind: string;
  create(config: GatewayConfig): Agent | undefined;
}
