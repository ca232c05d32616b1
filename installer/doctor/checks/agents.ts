/**
 * The agents' view, next to the installer's checks: each agent the running gateway runs (its state),
 * and each finding still active (the health monitor's diagnoses: code, subject, since when, the
 * evidence in one sentence, and what a person must do from the catalogue). Read from `/status`:
 * the agents live inside the gateway, so with no gateway answering there is nothing to ask.
 */
import { HealthCatalogue, type HealthCode } from '../../../agents/health/catalogue.ts';
import type { ActiveFinding } from '../../../agents/runner.ts';
import { needsConfig, type CheckResult, type DoctorCheck } from '../check.ts';

interface AgentsStatus {
  agents: Array<{ id: string; state: string; error?: string; health?: { status: string; detail?: Record<string, unknown> } }>;
  active: ActiveFinding[];
}

const STATUS_OF = { error: 'fail', warning: 'warn', info: 'pass' } as const;

/** The results for `/status`'s `agents` section (exported for the test of a status document). */
export function judgeAgents(a: AgentsStatus | undefined, healthEnabled: boolean): CheckResult[] {
  if (!a)
    return [
      {
        name: 'agents',
        status: 'skip',
        evidence: healthEnabled
          ? 'the running gateway reports no agent (it may be an older version)'
          : 'no agent runs: agents.health.enabled is false in this config (set it to true for the health monitor)',
      },
    ];
  const out: CheckResult[] = [];
  for (const g of a.agents) {
    if (g.state === 'running') continue;
    out.push({
      name: `agent ${g.id}`,
      status: 'warn',
      evidence: `agent ${g.id} is ${g.state}${g.error ? ` (${g.error})` : ''} (from the running gateway)`,
      todo: 'see the gateway log for the agent; the gateway retries it by itself',
      data: { state: g.state, error: g.error ?? null },
    });
  }
  for (const f of a.active) {
    const cause = f.code in HealthCatalogue ? HealthCatalogue[f.code as HealthCode] : undefined;
    const status = STATUS_OF[f.severity];
    out.push({
      name: `finding ${f.code}${f.subject ? ` ${f.subject}` : ''}`,
      status,
      evidence: `${f.summary} (agent ${f.agent}, first seen ${new Date(f.since).toISOString()})`,
      ...(status === 'pass' ? {} : { todo: cause ? cause.person : `see GET /agents/${f.agent} on the admin API` }),
      data: { agent: f.agent, code: f.code, severity: f.severity, subject: f.subject ?? null, since: new Date(f.since).toISOString() },
    });
  }
  if (!a.active.length) {
    const running = a.agents.filter((g) => g.state === 'running').map((g) => g.id);
    out.push({
      name: 'agents',
      status: running.length ? 'pass' : 'warn',
      evidence: running.length
        ? `no active finding; running: ${running.join(', ')} (from the running gateway)`
        : 'no agent is running (see above)',
      ...(running.length ? {} : { todo: 'see the gateway log for the agents' }),
    });
  }
  return out;
}

export const agentsCheck: DoctorCheck = {
  id: 'agents',
  async run(ctx) {
    if (!ctx.config) return [needsConfig('agents', ctx)];
    const g = await ctx.gateway();
    if (g.state !== 'answering')
      return [
        {
          name: 'agents',
          status: 'skip',
          evidence: `the agents run inside the gateway, which is not answering here (${g.reason})`,
        },
      ];
    return judgeAgents(g.status.agents as AgentsStatus | undefined, ctx.config.agents.health.enabled);
  },
};
