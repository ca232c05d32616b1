/**
 * Environment overrides named after the schema's fields: `EWML__` then the path, one segment per
 * level, separated by `__`. A segment is the field's name in SCREAMING_SNAKE (`dataDir` →
 * `DATA_DIR`) or spelt as in the schema (`dataDir`); a list entry is its index. So
 * `EWML__GATEWAY__DATA_DIR`, `EWML__gateway__dataDir` and `EWML__DATABASES__0__PASSWORD` set
 * `gateway.dataDir` and `databases[0].password`.
 *
 * A name that matches no field is an error naming the variable, not a warning: a misspelt override
 * would otherwise be ignored and the gateway would run a config the technician did not mean (the
 * file's unknown fields are errors for the same reason).
 */
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import type { ConfigProblem } from './load.ts';
import { childOf, objectBranches } from './schema-walk.ts';

export const ENV_PREFIX = 'EWML__';

/** `dataDir` → `DATA_DIR`, `hostKeySha256` → `HOST_KEY_SHA256`, `fileSink` → `FILE_SINK`. */
export function envSegmentOf(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The variable that sets a field: `gateway.dataDir` → `EWML__GATEWAY__DATA_DIR`, `files[0].dir` → `EWML__FILES__0__DIR`. */
export function envNameOf(path: string): string {
  return (
    ENV_PREFIX +
    path
      .replace(/\[(\d+)\]/g, '.$1')
      .split('.')
      .map((s) => (/^\d+$/.test(s) ? s : envSegmentOf(s)))
      .join('__')
  );
}

function fieldFor(s: TSchema, segment: string): { key: string; schema: TSchema } | undefined {
  for (const b of objectBranches(s)) {
    for (const [key, f] of Object.entries(b.properties as Record<string, TSchema>)) {
      if (segment === key || segment === envSegmentOf(key) || segment.toLowerCase() === key.toLowerCase()) return { key, schema: f };
    }
  }
  return undefined;
}

/** The value a variable's text stands for, by the field's type (an id `0001` stays text; `2576` is a number). */
function valueFor(s: TSchema, raw: string): unknown {
  if (s.type === 'string') return raw;
  if (s.type === 'integer' || s.type === 'number') return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  if (s.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  return parseYaml(raw);
}

/**
 * Sets each `EWML__…` variable's field in `doc` (the file's content, already migrated), in name
 * order. Values are never shown in a problem: an override is often a secret.
 */
export function applyEnvOverrides(
  doc: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  root: TSchema,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const name of Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX))
    .sort()) {
    const raw = env[name];
    if (raw === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    const fail = (found: string) =>
      problems.push({
        path: `environment ${name}`,
        expected:
          'EWML__ and a config field path, one segment per level in SCREAMING_SNAKE or as spelt in config/REFERENCE.md (e.g. EWML__GATEWAY__DATA_DIR sets gateway.dataDir; EWML__FILES__0__DIR sets files[0].dir)',
        found,
        todo: 'correct the name, or unset the variable',
      });
    let schema = root;
    let node: Record<string, unknown> | unknown[] = doc;
    let path = '';
    let bad = false;
    for (let i = 0; i < segments.length && !bad; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      const child = childOf(schema);
      let key: string | number;
      let next: TSchema;
      if (child?.kind === 'array') {
        const list = node as unknown[];
        const n = /^\d+$/.test(seg) ? Number(seg) : NaN;
        if (!Array.isArray(list) || !(n < list.length)) {
          fail(`${path} has no entry ${seg}${Array.isArray(list) ? ` (it has ${list.length})` : ''}`);
          bad = true;
          break;
        }
        key = n;
        next = child.schema;
        path += `[${n}]`;
      } else if (child?.kind === 'record') {
        key = seg;
        next = child.schema;
        path += `.${seg}`;
      } else {
        const f = seg === '' ? undefined : fieldFor(schema, seg);
        if (!f) {
          fail(`no field "${seg}"${path ? ` in ${path}` : ' at the top level'}`);
          bad = true;
          break;
        }
        key = f.key;
        next = f.schema;
        path += path ? `.${f.key}` : f.key;
      }
      const container = node as Record<string | number, unknown>;
      if (last) {
        container[key] = valueFor(next, raw);
        break;
      }
      const existing = container[key];
      if (existing === undefined || existing === null || typeof existing !== 'object')
        container[key] = childOf(next)?.kind === 'array' ? [] : {};
      node = container[key] as Record<string, unknown> | unknown[];
      schema = next;
    }
  }
  return problems;
}
