/** The sync scheduler's agent kind: built when `agents.sync.enabled`. See sync-agent.ts and agents/README.md. */
import type { AgentKind } from '../contract.ts';
import { createSyncAgent } from './sync-agent.ts';

export const syncAgentKind: AgentKind = {
  kind: 'sync',
  create: (config) => (config.agents.sync.enabled ? createSyncAgent(config.agents.sync) : undefined),
};
