/**
 * Loading: YAML file (optional) → secret references → environment overrides → defaults →
 * validation. Every bad field is reported with its path, what was expected and what was found,
 * before anything starts.
 */
import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema, SECRET_PATHS, type GatewayConfig } from './schema.ts';

export interface ConfigProblem {
  readonly path: string;
  readonly expected: string;
  readonly found: string;
}

/** Thrown (as a value, not a GatewayError: config imports nothing) when the config is unusable. */
export class ConfigError extends Error {
  readonly code: 'GW_CONFIG_INVALID' | 'GW_CONFIG_UNREADABLE' | 'GW_SECRET_MISSING';
  readonly problems: readonly ConfigProblem[];
  constructor(code: ConfigError['code'], message: string, problems: readonly ConfigProblem[] = [], cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ConfigError';
    this.code = code;
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** Path of a YAML file; absent means embedded defaults only. */
  readonly file?: string;
  /** Environment (for `${env:…}` and `EWML__…` overrides). */
  readonly env?: NodeJS.ProcessEnv;
  /** Extra values merged over the file (tests, CLI flags). */
  readonly overrides?: Record<string, unknown>;
}

const REF = /\$\{(env|file):([^}]+)\}/g;

/** Replace `${env:NAME}` and `${file:PATH}` in every string; collects what cannot be resolved. */
function resolveRefs(node: unknown, path: string, ctx: { env: NodeJS.ProcessEnv; baseDir: string; problems: ConfigProblem[] }): unknown {
  if (typeof node === 'string') {
    return node.replace(REF, (_m, kind: string, ref: string) => {
      if (kind === 'env') {
        const v = ctx.env[ref];
        if (v === undefined) { ctx.problems.push({ path, expected: `environment variable ${ref} to be set`, found: 'unset' }); return ''; }
        return v;
      }
      try {
        return readFileSync(resolve(ctx.baseDir, ref), 'utf8').replace(/\r?\n$/, '');
      } catch (e) {
        ctx.problems.push({ path, expected: `readable file ${ref}`, found: (e as NodeJS.ErrnoException).code ?? 'unreadable' });
        return '';
      }
    });
  }
  if (Array.isArray(node)) return node.map((v, i) => resolveRefs(v, `${path}/${i}`, ctx));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = resolveRefs(v, path === '' ? k : `${path}.${k}`, ctx);
    return out;
  }
  return node;
}

/** `EWML__HL7__PORT=2576` sets `hl7.port` (values are YAML scalars: numbers and booleans convert). */
function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('EWML__') || raw === undefined) continue;
    const keys = name.slice(6).split('__').filter(Boolean).map(envKeyToField);
    if (keys.length === 0) continue;
    let node = out;
    for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[keys[keys.length - 1]] = parseYaml(raw);
  }
  return out;
}

/** MAX_FRAME_BYTES → maxFrameBytes; FILE_SINK → fileSink. */
function envKeyToField(k: string): string {
  return k.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(out[k], v);
    return out;
  }
  return over;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Validate an already-merged object; returns the defaulted config or every problem. */
export function validateConfig(input: unknown): { ok: true; config: GatewayConfig } | { ok: false; problems: ConfigProblem[] } {
  const withDefaults = Value.Default(ConfigSchema, structuredClone(input ?? {}));
  const problems: ConfigProblem[] = [];
  for (const err of Value.Errors(ConfigSchema, withDefaults)) {
    const path = err.path.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    const secret = SECRET_PATHS.includes(path.replace(/\.\d+(?=\.|$)/g, '[]'));
    problems.push({ path, expected: expectedOf(err.schema, err.message), found: secret ? '(secret, not shown)' : describe(err.value) });
  }
  if (problems.length) return { ok: false, problems: dedupeProblems(problems) };
  return { ok: true, config: withDefaults as GatewayConfig };
}

function expectedOf(schema: TSchema, message: string): string {
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((b: TSchema) => b.const !== undefined)) {
    return `one of ${schema.anyOf.map((b: TSchema) => JSON.stringify(b.const)).join(', ')}`;
  }
  if (message === 'Unexpected property') return 'no such field (check the spelling against config/REFERENCE.md)';
  const bounds = [schema.minimum !== undefined ? `>= ${schema.minimum}` : '', schema.maximum !== undefined ? `<= ${schema.maximum}` : '', schema.pattern ? `matching ${schema.pattern}` : ''].filter(Boolean).join(', ');
  return `${message.replace(/^Expected /, '')}${bounds && !message.includes('Expected') ? '' : bounds ? ` (${bounds})` : ''}`;
}

/** TypeBox reports a union failure once per branch; keep the first per path. */
function dedupeProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => (seen.has(p.path) ? false : (seen.add(p.path), true)));
}

/** Load, resolve, override, default and validate. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadOptions = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  let fromFile: unknown = {};
  let baseDir = process.cwd();
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError('GW_CONFIG_UNREADABLE', `cannot read config file ${opts.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, [], e);
    }
    try {
      fromFile = parseYaml(text) ?? {};
    } catch (e) {
      throw new ConfigError('GW_CONFIG_UNREADABLE', `config file ${opts.file} is not valid YAML: ${(e as Error).message}`, [], e);
    }
    if (typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw new ConfigError('GW_CONFIG_INVALID', `config file ${opts.file} must hold a mapping at the top level`, [{ path: '(root)', expected: 'a mapping', found: describe(fromFile) }]);
    }
    baseDir = dirname(resolve(opts.file));
  }
  const merged = deepMerge(deepMerge(fromFile, envOverrides(env)), opts.overrides);
  const refProblems: ConfigProblem[] = [];
  const resolved = resolveRefs(merged, '', { env, baseDir, problems: refProblems });
  if (refProblems.length) throw new ConfigError('GW_SECRET_MISSING', 'config references that could not be resolved', refProblems);
  const result = validateConfig(resolved);
  if (!result.ok) throw new ConfigError('GW_CONFIG_INVALID', 'config is invalid', result.problems);
  const cfg = result.config;
  const cross: ConfigProblem[] = [];
  if (cfg.relay.sink !== 'file' && !cfg.cloud.publicKey) cross.push({ path: 'cloud.publicKey', expected: `the cloud public key (PEM) when relay.sink is ${cfg.relay.sink}`, found: 'nothing' });
  if (cross.length) throw new ConfigError('GW_CONFIG_INVALID', 'config is invalid', cross);
  return cfg;
}

/** Human-readable listing for the CLI. */
export function formatConfigError(e: ConfigError): string {
  const lines = [`${e.code}: ${e.message}`];
  for (const p of e.problems) lines.push(`  - ${p.path}: expected ${p.expected}; found ${p.found}`);
  return lines.join('\n');
}
