/** The health monitor's agent kind: built when `agents.health.enabled`. See health-agent.ts and docs/AGENTS.md. */
import type { AgentKind } from '../contract.ts';
import { createHealthAgent } from './health-agent.ts';

export const healthAgentKind: AgentKind = {
  kind: 'health',
  create: (config) => (config.agents.health.enabled ? createHealthAgent(config.agents.health) : undefined),
};
