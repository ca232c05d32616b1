/**
 * Loading: YAML file (optional) → migration to the current version → environment overrides →
 * secret references → defaults → schema validation → rules (config/rules.ts). Every bad field is
 * reported with its path, what was expected, what was found and (for rules) what to do, before
 * anything starts. `start` and `check-config` both load through here, so they refuse the same configs.
 */
import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { applyEnvOverrides } from './env-overrides.ts';
import { ConfigVersionError, migrateDocument, migrateValue } from './migrate.ts';
import { checkRules } from './rules.ts';
import { schemaPathOf } from './schema-walk.ts';
import { ConfigSchema, SECRET_PATHS, type GatewayConfig } from './schema.ts';

export interface ConfigProblem {
  /** `hl7.port`, `databases[0].host`, `files[1].sftp.hostKeySha256`, or `environment EWML__…`. */
  readonly path: string;
  readonly expected: string;
  readonly found: string;
  /** What to do about it, where the fix is not obvious from `expected`. */
  readonly todo?: string;
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
  /**
   * Check structure and rules without resolving `${env:…}`/`${file:…}` (no secret file is read):
   * a reference stays in place and is listed in `unchecked`. The result is for checking, not running.
   */
  readonly offline?: boolean;
  /** Told of what loaded but deserves attention (an old version upgraded in memory). Default: a process warning. */
  readonly onWarning?: (w: ConfigProblem) => void;
}

/** A loaded config and what was said about it. */
export interface ConfigReport {
  readonly config: GatewayConfig;
  /** Loaded, but say so (e.g. an old version upgraded in memory). */
  readonly warnings: readonly ConfigProblem[];
  /** Offline: the fields holding references that were not resolved, so not checked. */
  readonly unchecked: readonly string[];
}

const REF = /\$\{(env|file):([^}]+)\}/g;

/** Replace `${env:NAME}` and `${file:PATH}` in every string; collects what cannot be resolved. */
function resolveRefs(
  node: unknown,
  path: string,
  ctx: { env: NodeJS.ProcessEnv; baseDir: string; problems: ConfigProblem[]; offline?: string[] },
): unknown {
  if (typeof node === 'string') {
    if (ctx.offline) {
      if (new RegExp(REF.source).test(node)) ctx.offline.push(path);
      return node;
    }
    return node.replace(REF, (_m, kind: string, ref: string) => {
      if (kind === 'env') {
        const v = ctx.env[ref];
        if (v === undefined) {
          ctx.problems.push({ path, expected: `environment variable ${ref} to be set`, found: 'unset' });
          return '';
        }
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
  if (Array.isArray(node)) return node.map((v, i) => resolveRefs(v, `${path}[${i}]`, ctx));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = resolveRefs(v, path === '' ? k : `${path}.${k}`, ctx);
    return out;
  }
  return node;
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
  let migrated: unknown;
  try {
    migrated = migrateValue(input ?? {}).value;
  } catch (e) {
    if (!(e instanceof ConfigVersionError)) throw e;
    return { ok: false, problems: [{ path: 'version', expected: e.expected, found: e.found }] };
  }
  const withDefaults = Value.Default(ConfigSchema, structuredClone(migrated));
  const problems: ConfigProblem[] = [];
  for (const err of Value.Errors(ConfigSchema, withDefaults)) {
    const path = valuePath(err.path);
    const secret = SECRET_PATHS.includes(schemaPathOf(path));
    problems.push({ path, expected: expectedOf(err.schema, err.message), found: secret ? '(secret, not shown)' : describe(err.value) });
  }
  if (problems.length) return { ok: false, problems: dedupeProblems(problems) };
  return { ok: true, config: withDefaults as GatewayConfig };
}

/** `/databases/0/host` (a JSON pointer, as validation reports it) → `databases[0].host`. */
function valuePath(pointer: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '') || '(root)';
}

function expectedOf(schema: TSchema, message: string): string {
  if (Array.isArray(schema.anyOf) && schema.anyOf.every((b: TSchema) => b.const !== undefined)) {
    return `one of ${schema.anyOf.map((b: TSchema) => JSON.stringify(b.const)).join(', ')}`;
  }
  if (message === 'Unexpected property') return 'no such field (check the spelling against config/REFERENCE.md)';
  const bounds = [
    schema.minimum !== undefined ? `>= ${schema.minimum}` : '',
    schema.maximum !== undefined ? `<= ${schema.maximum}` : '',
    schema.pattern ? `matching ${schema.pattern}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${message.replace(/^Expected /, '')}${bounds && !message.includes('Expected') ? '' : bounds ? ` (${bounds})` : ''}`;
}

/** TypeBox reports a union failure once per branch; keep the first per path. */
function dedupeProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => (seen.has(p.path) ? false : (seen.add(p.path), true)));
}

/** Load, migrate, override, resolve, default, validate and check the rules. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadOptions = {}): GatewayConfig {
  const report = loadConfigReport(opts);
  const warn =
    opts.onWarning ??
    ((w: ConfigProblem) => process.emitWarning(`${w.path}: ${w.found}${w.todo ? `; what to do: ${w.todo}` : ''}`, 'ConfigWarning'));
  for (const w of report.warnings) warn(w);
  return report.config;
}

/** As loadConfig, returning the warnings (and, offline, the fields not checked) instead of emitting them. */
export function loadConfigReport(opts: LoadOptions = {}): ConfigReport {
  const env = opts.env ?? process.env;
  let fromFile: Record<string, unknown> = {};
  let baseDir = process.cwd();
  const warnings: ConfigProblem[] = [];
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(
        'GW_CONFIG_UNREADABLE',
        `cannot read config file ${opts.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        [],
        e,
      );
    }
    const doc = parseDocument(text);
    if (doc.errors.length) {
      throw new ConfigError(
        'GW_CONFIG_UNREADABLE',
        `config file ${opts.file} is not valid YAML: ${doc.errors[0].message}`,
        [],
        doc.errors[0],
      );
    }
    const top: unknown = doc.toJS() ?? {};
    if (typeof top !== 'object' || Array.isArray(top)) {
      throw new ConfigError('GW_CONFIG_INVALID', `config file ${opts.file} must hold a mapping at the top level`, [
        { path: '(root)', expected: 'a mapping', found: describe(top) },
      ]);
    }
    try {
      const m = migrateDocument(doc);
      if (m.notes.length) {
        warnings.push({
          path: 'version',
          expected: `version ${m.to}`,
          found: `version ${m.from}, upgraded in memory (${m.notes.join('; ')})`,
          todo: `run \`eyewear-gateway migrate-config ${opts.file}\` to upgrade the file (it keeps a backup)`,
        });
      }
    } catch (e) {
      if (!(e instanceof ConfigVersionError)) throw e;
      throw new ConfigError('GW_CONFIG_INVALID', 'config is invalid', [{ path: 'version', expected: e.expected, found: e.found }]);
    }
    fromFile = (doc.toJS() ?? {}) as Record<string, unknown>;
    baseDir = dirname(resolve(opts.file));
  }
  const envProblems = applyEnvOverrides(fromFile, env, ConfigSchema);
  if (envProblems.length) throw new ConfigError('GW_CONFIG_INVALID', 'environment overrides name no config field', envProblems);
  const merged = deepMerge(fromFile, opts.overrides);
  const refProblems: ConfigProblem[] = [];
  const unchecked: string[] = [];
  const resolved = resolveRefs(merged, '', { env, baseDir, problems: refProblems, offline: opts.offline ? unchecked : undefined });
  if (refProblems.length) throw new ConfigError('GW_SECRET_MISSING', 'config references that could not be resolved', refProblems);
  const result = validateConfig(resolved);
  if (!result.ok) throw new ConfigError('GW_CONFIG_INVALID', 'config is invalid', result.problems);
  const rules = checkRules(result.config, { offline: opts.offline });
  if (rules.length) throw new ConfigError('GW_CONFIG_INVALID', 'config is invalid', rules);
  return { config: result.config, warnings, unchecked };
}

/** Human-readable listing for the CLI. */
export function formatConfigError(e: ConfigError): string {
  const lines = [`${e.code}: ${e.message}`];
  for (const p of e.problems)
    lines.push(`  - ${p.path}: expected ${p.expected}; found ${p.found}${p.todo ? `\n    what to do: ${p.todo}` : ''}`);
  return lines.join('\n');
}
