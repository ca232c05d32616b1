/** Reload: validate → plan (from the schema's restart/reload metadata) → apply; nothing changes when validation fails. */
import { describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '../../config/load.ts';
import { planReload, prepareReload } from '../../config/reload-plan.ts';
import type { GatewayConfig } from '../../config/schema.ts';

const cfg = (v: Record<string, unknown>): GatewayConfig => {
  const r = validateConfig(v);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
};
const db = (id: string, more: Record<string, unknown> = {}) => ({
  id,
  engine: 'sqlite',
  file: `/srv/${id}.db`,
  streams: [{ name: 'p', table: 'patient', key: 'id', records: [{ type: 'patient', fields: { 'name.family': 'last' } }] }],
  ...more,
});

describe('reload plan', () => {
  it('an unchanged config plans nothing', () => {
    const a = cfg({ databases: [db('a')] });
    expect(planReload(a, cfg({ databases: [db('a')] }))).toEqual({
      changes: [],
      restartRequired: false,
      apply: { live: [], adapters: { add: [], remove: [], recreate: [] }, restart: [] },
    });
  });

  it('log.level applies live', () => {
    const p = planReload(cfg({}), cfg({ log: { level: 'debug' } }));
    expect(p.changes).toEqual([{ path: 'log.level', kind: 'changed', restart: false }]);
    expect(p.apply.live).toEqual(['log.level']);
    expect(p.restartRequired).toBe(false);
  });

  it('a field marked restart says the gateway must restart', () => {
    const p = planReload(cfg({}), cfg({ admin: { port: 9000 }, outbox: { maxBytes: 2 * 1024 * 1024 * 1024 } }));
    expect(p.changes).toEqual([
      { path: 'outbox.maxBytes', kind: 'changed', restart: true },
      { path: 'admin.port', kind: 'changed', restart: true },
    ]);
    expect(p.restartRequired).toBe(true);
    expect(p.apply).toEqual({ live: [], adapters: { add: [], remove: [], recreate: [] }, restart: ['outbox.maxBytes', 'admin.port'] });
  });

  it('sources are matched by id: added, removed and changed ones; a reordered list changes nothing', () => {
    const a = cfg({ databases: [db('a'), db('b'), db('c')] });
    expect(planReload(a, cfg({ databases: [db('c'), db('a'), db('b')] })).changes).toEqual([]);
    const p = planReload(a, cfg({ databases: [db('b', { pollIntervalMs: 1000 }), db('c'), db('d')] }));
    expect(p.changes).toEqual([
      { path: 'databases[0].pollIntervalMs', kind: 'changed', restart: false, adapter: 'b' },
      { path: 'databases[2]', kind: 'added', restart: false, adapter: 'd' },
      { path: 'databases[0]', kind: 'removed', restart: false, adapter: 'a' },
    ]);
    expect(p.apply.adapters).toEqual({ add: ['d'], remove: ['a'], recreate: ['b'] });
    expect(p.restartRequired).toBe(false);
  });

  it('inside a source, a field marked restart (write-back) waits for a restart while the rest re-creates the source', () => {
    const p = planReload(
      cfg({ databases: [db('a')] }),
      cfg({ databases: [db('a', { writeBack: { enabled: true, statements: { s: { sql: 'UPDATE x SET y = ?', params: ['y'] } } } })] }),
    );
    expect(p.changes.map((c) => [c.path, c.restart])).toEqual([
      ['databases[0].writeBack.enabled', true],
      ['databases[0].writeBack.statements', true],
    ]);
    expect(p.apply.adapters.recreate).toEqual([]);
    expect(p.apply.restart).toEqual(['databases[0].writeBack.enabled', 'databases[0].writeBack.statements']);
  });

  it('the HL7 listener is re-created for its port; stopped when switched off; its profile waits for a restart', () => {
    expect(planReload(cfg({}), cfg({ hl7: { port: 2600 } })).apply.adapters).toEqual({ add: [], remove: [], recreate: ['hl7v2'] });
    expect(planReload(cfg({}), cfg({ hl7: { enabled: false } })).apply.adapters).toEqual({ add: [], remove: ['hl7v2'], recreate: [] });
    const p = planReload(cfg({}), cfg({ hl7: { profile: 'epic' } }));
    expect(p.changes).toEqual([{ path: 'hl7.profile', kind: 'changed', restart: true, adapter: 'hl7v2' }]);
  });

  it("a secret's change is planned by path only, never its value", () => {
    const p = planReload(cfg({ mqtt: { password: 'old-pw-1' } }), cfg({ mqtt: { password: 'new-pw-2' } }));
    expect(p.changes).toEqual([{ path: 'mqtt.password', kind: 'changed', restart: true }]);
    expect(JSON.stringify(p)).not.toMatch(/pw-/);
  });

  it('a proposed config that fails validation gives its problems and no plan', () => {
    const current = cfg({});
    const r = prepareReload(current, () => loadConfig({ env: {}, overrides: { gateway: { timezone: 'Mars/Olympus' } } }));
    expect(r).toEqual({ ok: false, code: 'GW_CONFIG_INVALID', problems: [expect.objectContaining({ path: 'gateway.timezone' })] });
    const ok = prepareReload(current, () => loadConfig({ env: {}, overrides: { log: { level: 'warn' } } }));
    expect(ok.ok && ok.plan.apply.live).toEqual(['log.level']);
  });
});
