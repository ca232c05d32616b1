/**
 * Every agent kind the gateway has. A new agent is a folder here whose `index.ts` exports an
 * `AgentKind`, and one line in this list. None is built yet (issues 17–18: health and healing,
 * PMS detection, mapping suggestions, sync scheduling).
 */
import type { AgentKind } from './contract.ts';
import { healthAgentKind } from './health/index.ts';
import { syncAgentKind } from './sync/index.ts';

export const agentKinds: readonly AgentKind[] = [healthAgentKind, syncAgentKind];

export type { Agent, AgentContext, AgentHealth, AgentKind, ConfigProposal, Finding, SourceView } from './contract.ts';
