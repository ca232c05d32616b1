/**
 * Config reload: validate → plan → apply. `prepareReload` loads the proposed config through the
 * same load as `start` (schema and rules) and, only if it is valid, plans it against the running
 * one; a config that fails validation yields its problems and no plan, so nothing changes.
 *
 * The plan comes from the schema's metadata (config/schema.ts `FieldMeta`): a field marked
 * `restart` waits for a restart (and says so); a change inside a source section marked
 * `reload: 'adapter'` (`hl7`, `databases[]`, `files[]`) re-creates that one source, matched by its
 * `id` so a reordered list changes nothing; any other change applies live. Paths name fields only,
 * never values: a plan is safe to log and to show on the admin API (secrets change unseen).
 */
import { ConfigError, type ConfigProblem } from './load.ts';
import { schemaPathOf, walkSchema, type SchemaField } from './schema-walk.ts';
import { ConfigSchema, type GatewayConfig } from './schema.ts';

export interface ReloadChange {
  /** The field as it is in the new config (`hl7.port`, `databases[1].host`); a removed source: its old path. */
  readonly path: string;
  readonly kind: 'changed' | 'added' | 'removed';
  /** The gateway must restart for this change to take effect. */
  readonly restart: boolean;
  /** The source this change re-creates (its adapter id), when it is inside a source section. */
  readonly adapter?: string;
}

export interface ReloadPlan {
  readonly changes: readonly ReloadChange[];
  /** Some change waits for a restart (`apply.restart` lists which). */
  readonly restartRequired: boolean;
  readonly apply: {
    /** Fields applied in place (e.g. `log.level`). */
    readonly live: readonly string[];
    /** Sources by adapter id: start the added, stop the removed, stop and re-create the changed (with their codec). */
    readonly adapters: { readonly add: readonly string[]; readonly remove: readonly string[]; readonly recreate: readonly string[] };
    /** Fields whose change waits for a restart: the running gateway keeps the old value until then. */
    readonly restart: readonly string[];
  };
}

/** The MLLP listener's adapter id (adapters/hl7v2/mllp-listener.ts). */
const HL7_ADAPTER_ID = 'hl7v2';

let fieldIndex: Map<string, SchemaField> | undefined;
function fieldAt(valuePath: string): SchemaField | undefined {
  fieldIndex ??= new Map(walkSchema(ConfigSchema).map((f) => [f.path, f]));
  return fieldIndex.get(schemaPathOf(valuePath));
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'undefined';
}

/** Leaf paths that differ: objects of named fields (and list entries) are walked; lists, maps and scalars compare whole. */
function diff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (same(a, b)) return;
  const f = fieldAt(path);
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const named = f === undefined || (f.schema.type === 'object' && f.schema.properties !== undefined);
  if (named && isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const k of keys) diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
    return;
  }
  out.push(path);
}

/** The plan from the running config to the proposed one (both validated and defaulted). */
export function planReload(current: GatewayConfig, next: GatewayConfig): ReloadPlan {
  const changes: ReloadChange[] = [];
  const restartOf = (p: string) => fieldAt(p)?.restart ?? false;
  for (const section of Object.keys(ConfigSchema.properties) as Array<keyof GatewayConfig>) {
    const meta = fieldAt(section);
    const a = current[section];
    const b = next[section];
    if (same(a, b)) continue;
    if (meta?.reload === 'adapter' && Array.isArray(a) && Array.isArray(b)) {
      const before = new Map((a as Array<{ id: string }>).map((e, i) => [e.id, { e, i }]));
      const after = new Map((b as Array<{ id: string }>).map((e, i) => [e.id, { e, i }]));
      for (const [id, { e, i }] of after) {
        const old = before.get(id);
        if (!old) {
          changes.push({ path: `${section}[${i}]`, kind: 'added', restart: false, adapter: id });
          continue;
        }
        const paths: string[] = [];
        diff(old.e, e, `${section}[${i}]`, paths);
        for (const p of paths) changes.push({ path: p, kind: 'changed', restart: restartOf(p), adapter: id });
      }
      for (const [id, { i }] of before)
        if (!after.has(id)) changes.push({ path: `${section}[${i}]`, kind: 'removed', restart: false, adapter: id });
      continue;
    }
    const paths: string[] = [];
    diff(a, b, section, paths);
    const adapter = meta?.reload === 'adapter' ? HL7_ADAPTER_ID : undefined;
    for (const p of paths) changes.push({ path: p, kind: 'changed', restart: restartOf(p), ...(adapter ? { adapter } : {}) });
  }
  const add = new Set<string>();
  const remove = new Set<string>();
  const recreate = new Set<string>();
  for (const c of changes) {
    if (!c.adapter) continue;
    if (c.kind === 'added') add.add(c.adapter);
    else if (c.kind === 'removed') remove.add(c.adapter);
    else if (!c.restart) recreate.add(c.adapter);
  }
  // a source switched off (hl7.enabled false) is stopped, switched on is started, not re-created
  if (recreate.has(HL7_ADAPTER_ID) && current.hl7.enabled !== next.hl7.enabled) {
    recreate.delete(HL7_ADAPTER_ID);
    (next.hl7.enabled ? add : remove).add(HL7_ADAPTER_ID);
  }
  return {
    changes,
    restartRequired: changes.some((c) => c.restart),
    apply: {
      live: changes.filter((c) => !c.restart && !c.adapter).map((c) => c.path),
      adapters: { add: [...add], remove: [...remove], recreate: [...recreate].filter((id) => !add.has(id) && !remove.has(id)) },
      restart: changes.filter((c) => c.restart).map((c) => c.path),
    },
  };
}

/**
 * Validate, then plan: `load` is the same load as `start` (loadConfig with the running gateway's
 * file and environment). A config that does not load gives its problems and no plan.
 */
export function prepareReload(
  current: GatewayConfig,
  load: () => GatewayConfig,
): { ok: true; config: GatewayConfig; plan: ReloadPlan } | { ok: false; code: ConfigError['code']; problems: readonly ConfigProblem[] } {
  let config: GatewayConfig;
  try {
    config = load();
  } catch (e) {
    if (e instanceof ConfigError)
      return {
        ok: false,
        code: e.code,
        problems: e.problems.length ? e.problems : [{ path: '(file)', expected: 'a readable config', found: e.message }],
      };
    throw e;
  }
  return { ok: true, config, plan: planReload(current, config) };
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * What a reload puts into effect: `next` with each of `paths` (the plan's `apply.restart`:
 * `hl7.profile`, `databases[1].host`) set back to its value in `current`; a list entry is matched
 * by its `id`, so a reordered list keeps each source's own old value.
 */
export function keepFields(next: GatewayConfig, current: GatewayConfig, paths: readonly string[]): GatewayConfig {
  if (paths.length === 0) return next;
  const out = structuredClone(next);
  for (const path of paths) {
    let d: unknown = out;
    let s: unknown = current;
    const parts = path.split('.');
    for (const [k, part] of parts.entries()) {
      const m = /^([^[\]]+)\[(\d+)\]$/.exec(part);
      const key = m ? m[1] : part;
      if (!isTree(d)) break;
      const last = k === parts.length - 1;
      if (m) {
        const list = d[key];
        const entry = Array.isArray(list) ? list[Number(m[2])] : undefined;
        const id = isTree(entry) ? entry.id : undefined;
        const olds = isTree(s) ? s[key] : undefined;
        const old = Array.isArray(olds) ? olds.find((e) => isTree(e) && e.id === id) : undefined;
        if (last || old === undefined) break; // a whole entry is never a restart field
        d = entry;
        s = old;
        continue;
      }
      if (last) {
        if (isTree(s) && key in s) d[key] = structuredClone(s[key]);
        else delete d[key];
        break;
      }
      d = d[key];
      s = isTree(s) ? s[key] : undefined;
    }
  }
  return out;
}
