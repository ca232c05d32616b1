/**
 * The cloud side of a staged rollout (issue 16 point 8), as the cloud team's tooling does it: the
 * release is offered stage by stage, each stage a cohort (the gateways it names, cumulative), with
 * a manifest naming that cohort, so a gateway outside it refuses the release even if asked; each
 * gateway of the stage gets a signed `gateway.update`; the next stage starts only once every one
 * of them reported `updated` on its up/status. The first gateway that reports anything else (rolled
 * back, refused, failed) or nothing within the timeout stops the rollout: later stages never hear
 * of the release.
 */
import type { MqttReferenceCloud } from './reference-cloud.ts';

export interface RolloutOptions {
  cloud: MqttReferenceCloud;
  /** Each gateway's tenant (its topics are `ewml/v1/{tenant}/{gateway}/…`). */
  tenantOf(gatewayId: string): string;
  /** The gateways of each stage, in order. */
  stages: readonly (readonly string[])[];
  /** Publishes the signed manifest for a cohort (the gateways of this and earlier stages); returns its URL. */
  manifestFor(cohort: readonly string[]): string;
  /** Signs a command for a gateway (the cloud's command key). */
  signCommand(payload: Record<string, unknown>): Promise<string>;
  /** How long a stage's gateways have to report (default 180 s). */
  stageTimeoutMs?: number;
  /** Progress lines (the tooling prints them). */
  onProgress?(line: string): void;
}

export interface RolloutResult {
  /** The gateways that reported `updated`, stage by stage. */
  updated: string[][];
  /** The stage and gateway that stopped the rollout, with what it reported. */
  stoppedAt?: { stage: number; gatewayId: string; outcome: string; reason?: string };
}

export async function rollout(o: RolloutOptions): Promise<RolloutResult> {
  const seen = new Map<string, { outcome: string; reason?: string }>();
  const onMessage = (topic: string, payload: Buffer) => {
    if (!topic.endsWith('/up/status')) return;
    try {
      const m = JSON.parse(payload.toString('utf8')) as { type?: string; commandId?: string; outcome?: string; reason?: string };
      if (m.type === 'update-outcome' && m.commandId && m.outcome)
        seen.set(m.commandId, { outcome: m.outcome, ...(m.reason ? { reason: m.reason } : {}) });
    } catch {
      // not a status message of ours
    }
  };
  o.cloud.client.on('message', onMessage);
  await o.cloud.client.subscribeAsync('ewml/v1/+/+/up/status', { qos: 1 });
  const result: RolloutResult = { updated: [] };
  const run = Date.now().toString(36);
  try {
    const cohort: string[] = [];
    for (const [k, stage] of o.stages.entries()) {
      cohort.push(...stage);
      const manifestUrl = o.manifestFor([...cohort]);
      o.onProgress?.(`stage ${k + 1}/${o.stages.length}: ${stage.join(', ')}`);
      const ids = new Map(stage.map((g) => [g, `rollout-${run}-${k}-${g}`]));
      for (const [g, id] of ids) {
        const now = Math.floor(Date.now() / 1000);
        const jws = await o.signCommand({ id, type: 'gateway.update', gatewayId: g, iat: now, exp: now + 600, manifestUrl });
        await o.cloud.client.publishAsync(`ewml/v1/${o.tenantOf(g)}/${g}/down/commands`, jws, { qos: 1 });
      }
      const deadline = Date.now() + (o.stageTimeoutMs ?? 180_000);
      const done: string[] = [];
      while (done.length < stage.length) {
        for (const [g, id] of ids) {
          if (done.includes(g)) continue;
          const s = seen.get(id);
          if (!s) continue;
          if (s.outcome !== 'updated') {
            result.stoppedAt = { stage: k + 1, gatewayId: g, ...s };
            o.onProgress?.(`stopped: ${g} reported ${s.outcome}${s.reason ? ` (${s.reason})` : ''}`);
            result.updated.push(stage.filter((g) => done.includes(g)));
            return result;
          }
          done.push(g);
        }
        if (done.length === stage.length) break;
        if (Date.now() > deadline) {
          const silent = stage.find((g) => !done.includes(g))!;
          result.stoppedAt = { stage: k + 1, gatewayId: silent, outcome: 'no answer' };
          result.updated.push(stage.filter((g) => done.includes(g)));
          return result;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      result.updated.push(stage.filter((g) => done.includes(g)));
    }
    return result;
  } finally {
    o.cloud.client.removeListener('message', onMessage);
  }
}
