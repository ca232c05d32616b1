/**
 * The composition root holds no per-kind code: a new source kind and a new agent kind plug in through
 * the registries alone (here: the built-in lists plus one entry each, as a kind's folder and its
 * registry line would), and are started, isolated on failure and stopped like the built-in ones.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../config/load.ts';
import { defineSource, type IntakeContext, type IntakeResult, type SourceAdapter, type SourceCodec } from '../../../adapters/contracts.ts';
import { sourceKinds } from '../../../adapters/registry.ts';
import { withoutSecrets } from '../../../agents/runner.ts';
import type { Agent, AgentContext, AgentKind } from '../../../agents/contract.ts';
import { createGateway, type Gateway } from '../../../gateway/create-gateway.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';

const quiet = createLogger({ level: 'silent' });

interface ToyAdapter extends SourceAdapter {
  results: IntakeResult[];
  starts: number;
  stops: number;
  running: boolean;
}

function toyAdapter(id: string, o: { failStarts?: number; send?: string[] } = {}): ToyAdapter {
  let failures = o.failStarts ?? 0;
  const a: ToyAdapter = {
    id,
    results: [],
    starts: 0,
    stops: 0,
    running: false,
    async start(ctx: IntakeContext) {
      a.starts++;
      if (failures-- > 0) throw Object.assign(new Error('toy source down'), { code: 'TOY_DOWN' });
      a.running = true;
      for (const text of o.send ?? [])
        a.results.push(await ctx.intake({ adapter: id, format: text.startsWith('MSH') ? 'hl7v2' : 'toy', text }));
    },
    async stop() {
      a.stops++;
      a.running = false;
    },
    health: () => ({ status: a.running ? 'up' : 'down' }),
  };
  return a;
}

/** A codec of the toy kind's own format: it maps nothing (every input is a kind it does not map). */
const toyCodec: SourceCodec<string> = {
  format: 'toy',
  parse: (text) => text,
  dedupeKey: () => undefined,
  describe: () => ({ kind: 'toy' }),
  map: () => ({ unsupported: 'toy', records: [], issues: [] }),
};

interface ToyAgent extends Agent {
  seen: number;
  ctx?: AgentContext;
  stops: number;
}

function toyAgent(id: string, o: { failStart?: boolean } = {}): ToyAgent {
  const agent: ToyAgent = {
    id,
    seen: 0,
    stops: 0,
    async start(ctx) {
      if (o.failStart) throw Object.assign(new Error('toy agent broken'), { code: 'TOY_AGENT_BROKEN' });
      agent.ctx = ctx;
      // listeners it never removes itself: the runner drops them at stop
      ctx.events.on('intake.accepted', () => {
        agent.seen++;
      });
      ctx.events.on('intake.ignored', () => {
        agent.seen++;
      });
      ctx.publishFinding({ code: 'TOY_FOUND', severity: 'info', summary: 'the toy agent runs' });
    },
    async stop() {
      agent.stops++;
    },
    health: () => ({ status: 'up', detail: { seen: agent.seen } }),
  };
  return agent;
}

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

function configFor(dataDir: string) {
  const v = validateConfig({ gateway: { dataDir, timezone: 'UTC' }, hl7: { enabled: false }, admin: { enabled: false } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.config;
}

describe('registries: a toy source kind and a toy agent kind, added by one registry entry each', () => {
  it('are started, a failing one is isolated, and all are stopped with their listeners dropped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-toy-'));
    const good = toyAdapter('toy-good', { send: [adtA04({ id: 'TOY1', mrn: 'M1' }), 'anything'] });
    const bad = toyAdapter('toy-bad', { failStarts: 1000 });
    const toySources = defineSource({ kind: 'toy', section: 'gateway', create: () => ({ adapters: [good, bad], codecs: [toyCodec] }) });
    const agentGood = toyAgent('toy-agent');
    const agentBad = toyAgent('toy-agent-broken', { failStart: true });
    const toyAgents: AgentKind = { kind: 'toy', create: () => agentGood };
    const brokenAgents: AgentKind = { kind: 'toy-broken', create: () => agentBad };

    gw = await createGateway({
      config: configFor(dataDir),
      logger: quiet,
      sources: [...sourceKinds, toySources],
      agents: [toyAgents, brokenAgents],
    });
    await gw.start();

    // the toy source ran: its HL7 input went through the HL7 kind's codec, its own format through its own codec
    expect(good.results.map((r) => r.status)).toEqual(['accepted', 'ignored']);
    expect(gw.parts.adapters.map((a) => a.id)).toEqual(['toy-good', 'toy-bad']);
    // the failing one is isolated: the rest runs, its code is in status, and it is retried (not thrown)
    expect(bad.starts).toBe(1);
    expect(gw.parts.sources.state('toy-bad')).toBe('failed');
    expect(gw.parts.sources.errors.get('toy-bad')).toBe('TOY_DOWN');
    const st = gw.status() as {
      adapters: Record<string, { status: string; error?: string }>;
      agents?: { agents: Array<{ id: string; state: string; error?: string }>; findings: Array<{ code: string; agent: string }> };
    };
    expect(st.adapters['toy-good']?.status).toBe('up');
    expect(st.adapters['toy-bad']).toMatchObject({ status: 'down', error: 'TOY_DOWN' });
    // the agents: one runs and has seen both intakes; the broken one is isolated with its code
    expect(agentGood.seen).toBe(0); // it started after the sources: their intakes came before it listened
    expect(st.agents?.agents.map((a) => [a.id, a.state, a.error])).toEqual([
      ['toy-agent', 'running', undefined],
      ['toy-agent-broken', 'failed', 'TOY_AGENT_BROKEN'],
    ]);
    expect(st.agents?.findings.map((f) => [f.agent, f.code])).toEqual([['toy-agent', 'TOY_FOUND']]);
    expect(gw.parts.bus.listenerCount('agent:toy-agent')).toBe(2);
    expect(gw.parts.bus.listenerCount('agent:toy-agent-broken')).toBe(0);

    // the agent's control surface: pause and resume a source, restart one
    const ctx = agentGood.ctx!;
    expect(ctx.sources().map((s) => [s.id, s.state])).toEqual([
      ['toy-good', 'running'],
      ['toy-bad', 'failed'],
    ]);
    await ctx.pauseSource('toy-good');
    expect([good.running, good.stops, gw.parts.sources.state('toy-good')]).toEqual([false, 1, 'paused']);
    await ctx.resumeSource('toy-good');
    expect([good.running, good.starts, gw.parts.sources.state('toy-good')]).toEqual([true, 2, 'running']);
    expect(agentGood.seen).toBe(1); // the restarted source sent its HL7 again: a duplicate (not counted), and its toy input: ignored
    await expect(ctx.restartSource('no-such')).rejects.toThrow('no source "no-such"');
    // the agent sees the config in effect without secrets, and cannot propose a secret's value
    expect(ctx.config().gateway.dataDir).toBe(dataDir);
    expect(() => ctx.proposeConfigChange({ path: 'mqtt.password', value: 'x', reason: 'r' })).toThrow('mqtt.password is a secret field');
    const pid = ctx.proposeConfigChange({ path: 'databases[0].pollIntervalMs', value: 30_000, reason: 'the PMS is idle at night' });
    expect(
      (gw.status() as { agents: { proposals: Array<{ id: string; path: string }> } }).agents.proposals.map((p) => [p.id, p.path]),
    ).toEqual([[pid, 'databases[0].pollIntervalMs']]);

    await gw.stop();
    gw = undefined;
    expect([good.running, good.stops >= 2, bad.stops >= 1, agentGood.stops]).toEqual([false, true, true, 1]);
  });

  it("drops an agent's listeners at stop even when its own stop throws", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-toy-'));
    const agent = toyAgent('leaky');
    agent.stop = async () => {
      throw new Error('stop failed');
    };
    const g = await createGateway({ config: configFor(dataDir), logger: quiet, agents: [{ kind: 'leaky', create: () => agent }] });
    await g.start();
    expect(g.parts.bus.listenerCount('agent:leaky')).toBe(2);
    await g.stop();
    expect(g.parts.bus.listenerCount('agent:leaky')).toBe(0);
  });
});

describe('a gateway that cannot be built, or is started again', () => {
  it('releases the data folder when a source kind cannot be built, so the next gateway on it starts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-toy-'));
    const broken = defineSource({
      kind: 'broken',
      section: 'gateway',
      create: () => {
        throw new Error('cannot build');
      },
    });
    await expect(createGateway({ config: configFor(dataDir), logger: quiet, sources: [...sourceKinds, broken] })).rejects.toThrow(
      'cannot build',
    );
    gw = await createGateway({ config: configFor(dataDir), logger: quiet });
    await gw.start();
    expect(gw.parts.lease()?.holder.pid).toBe(process.pid);
  });

  it('starts its admin API and sources again after a stop', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-toy-'));
    const v = validateConfig({ gateway: { dataDir, timezone: 'UTC' }, hl7: { port: 0 }, admin: { port: 0 } });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    gw = await createGateway({ config: v.config, logger: quiet });
    await gw.start();
    await gw.stop();
    expect(gw.parts.admin?.address()).toBeUndefined();
    await gw.start();
    expect(gw.startReport()).toMatchObject({
      nothingRunning: false,
      components: [
        { component: 'adapter:hl7v2', state: 'running' },
        { component: 'admin', state: 'running' },
      ],
    });
    const port = gw.parts.admin?.address()?.port;
    expect(typeof port).toBe('number');
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
  });
});

describe('withoutSecrets', () => {
  it('drops every secret field, in lists too, and nothing else', () => {
    const v = validateConfig({
      gateway: { dataDir: '/d' },
      mqtt: { password: 'pw', username: 'u' },
      admin: { token: 'tok' },
      databases: [{ id: 'pms', engine: 'postgres', host: 'h', user: 'u', database: 'db', password: 'dbpw', profile: 'practice-studio' }],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const c = withoutSecrets(v.config);
    expect([c.mqtt.password, c.mqtt.username, c.admin.token, c.databases[0].password, c.databases[0].user]).toEqual([
      undefined,
      'u',
      undefined,
      undefined,
      'u',
    ]);
    expect(v.config.mqtt.password).toBe('pw');
  });
});
