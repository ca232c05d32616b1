/**
 * The poll schedule the polled sources consult after each cycle (`IntakeContext.pollSchedule`,
 * adapters/contracts.ts): how long to wait before the next one. With no policy set it answers the
 * source's configured interval exactly (the behaviour before agents). An agent (the sync scheduler,
 * agents/sync/) sets a per-source policy through its context; when the agent stops the runner drops
 * its policies and the sources go back to their configured intervals at their next cycle. A policy
 * that throws or answers nonsense is logged and the configured interval is used: an agent's fault
 * never stops a poller. A server's Retry-After stays a floor no policy goes under (`pollWait`).
 */
import type { Logger } from 'pino';
import type { PollCycle, PollSchedule } from '../adapters/contracts.ts';

/** An agent's answer for one source's cycle. */
export interface PollPolicy {
  /** The wait (ms) after this cycle of `sourceId`. */
  next(sourceId: string, c: PollCycle): number;
}

export interface PollScheduleView {
  sourceId: string;
  /** Who set the policy in effect (`agent:sync`); absent: the configured interval. */
  owner?: string;
  lastWaitMs?: number;
  lastConfiguredMs?: number;
}

export interface PollScheduleRegistry {
  /** What one source's intake context carries. */
  forSource(sourceId: string): PollSchedule;
  /** Sets `owner`'s policy on a source (replacing any other), or removes it (`undefined`, only when `owner` set it). */
  set(sourceId: string, owner: string, policy: PollPolicy | undefined): void;
  /** Removes every policy `owner` set (its agent stopped). */
  dropOwner(owner: string): void;
  /** The sources that consulted the schedule or have a policy, with the last wait each was given. */
  view(): PollScheduleView[];
}

export function createPollScheduleRegistry(o: { logger: Logger }): PollScheduleRegistry {
  const policies = new Map<string, { owner: string; policy: PollPolicy }>();
  const last = new Map<string, { waitMs: number; configuredMs: number }>();
  let failuresLogged = 0;
  return {
    forSource: (sourceId) => ({
      next(c) {
        const p = policies.get(sourceId);
        let wait = c.configuredMs;
        if (p) {
          try {
            const asked = p.policy.next(sourceId, c);
            if (Number.isFinite(asked) && asked >= 0) wait = asked;
            else throw Object.assign(new Error('not a wait'), { code: 'GW_POLL_POLICY_FAILED' });
          } catch (e) {
            // bounded: a policy that always throws would otherwise log once a cycle for ever
            if (failuresLogged++ < 20)
              o.logger.warn(
                { code: 'GW_POLL_POLICY_FAILED', sourceId, owner: p.owner, cause: e instanceof Error ? e.name : 'unknown' },
                'the poll policy failed; this cycle waits the configured interval',
              );
          }
        }
        last.set(sourceId, { waitMs: wait, configuredMs: c.configuredMs });
        return wait;
      },
    }),
    set(sourceId, owner, policy) {
      if (policy) policies.set(sourceId, { owner, policy });
      else if (policies.get(sourceId)?.owner === owner) policies.delete(sourceId);
    },
    dropOwner(owner) {
      for (const [id, p] of policies) if (p.owner === owner) policies.delete(id);
    },
    view: () =>
      [...new Set([...last.keys(), ...policies.keys()])].sort().map((sourceId) => {
        const l = last.get(sourceId);
        const p = policies.get(sourceId);
        return {
          sourceId,
          ...(p ? { owner: p.owner } : {}),
          ...(l ? { lastWaitMs: l.waitMs, lastConfiguredMs: l.configuredMs } : {}),
        };
      }),
  };
}
