/**
 * Renders config/REFERENCE.md from the schema's descriptions, defaults and metadata, at every
 * depth (config/schema-walk.ts): nested objects, list entries (`files[].sftp.host`), record values
 * (`hl7.profileOverrides.eyeCodes.<key>.display`) and the object branches of unions.
 */
import type { TSchema } from '@sinclair/typebox';
import { envNameOf } from './env-overrides.ts';
import { walkSchema, type SchemaField } from './schema-walk.ts';
import { ConfigSchema } from './schema.ts';

function typeOf(s: TSchema): string {
  if (s.anyOf)
    return (s.anyOf as TSchema[]).map((b) => (b.const !== undefined ? `\`${JSON.stringify(b.const)}\`` : typeOf(b))).join(' \\| ');
  if (s.type === 'array') {
    const item = s.items ? typeOf(s.items as TSchema) : 'any';
    return `list of ${item.includes(' \\| ') ? `(${item})` : item}`;
  }
  if (s.type === 'object' && s.patternProperties) return 'map';
  const bits = [String(s.type ?? 'any')];
  if (s.minimum !== undefined) bits.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bits.push(`≤ ${s.maximum}`);
  return bits.join(' ');
}

const cell = (t: string) => t.replaceAll('|', '\\|').replaceAll('\n', ' ');

function meaningOf(f: SchemaField, sectionRestart: boolean): string {
  const tags = [f.secret ? '**Secret.**' : '', f.restart && !sectionRestart ? '**Needs restart.**' : ''].filter(Boolean);
  const description = String(f.schema.description ?? '').replaceAll('\n', ' ');
  return [...tags, description].filter(Boolean).join(' ');
}

function defaultOf(f: SchemaField): string {
  if (f.schema.default === undefined) return '—';
  const d = JSON.stringify(f.schema.default);
  // an object section's `{}` default says nothing its fields do not say
  return d === '{}' ? '—' : `\`${cell(d)}\``;
}

function reloadNote(section: SchemaField): string {
  if (section.restart) return 'A change takes effect when the gateway restarts.';
  if (section.reload === 'adapter')
    return 'A change on reload re-creates the source it belongs to (fields marked **Needs restart.** wait for a restart).';
  return 'A change takes effect on reload.';
}

export function renderConfigReference(): string {
  const out = [
    '# Configuration reference',
    '',
    'Generated from `config/schema.ts` by `npm run docs`. Every field is optional unless a rule below needs it: the defaults',
    'are what `npm start` runs with. Any string may hold `${env:NAME}` or `${file:PATH}` (resolved at load; use them for secrets;',
    '`check-config --offline` leaves them unresolved). Fields are named by path: `files[].sftp.host` is the `host` of the',
    '`sftp` of each `files` entry; `<key>` stands for a name you choose.',
    '',
    'Environment overrides: `EWML__` and the path, one segment per level in SCREAMING_SNAKE (or spelt as here), list entries',
    `by index: \`${envNameOf('gateway.dataDir')}\` (or \`EWML__gateway__dataDir\`) sets \`gateway.dataDir\`, \`${envNameOf('files[0].dir')}\` sets`,
    '`files[0].dir`. A variable that names no field stops the load (GW_CONFIG_INVALID), naming it.',
    '',
    'Reload (validate → plan → apply): each section says when its changes take effect.',
    '',
  ];
  const fields = walkSchema(ConfigSchema);
  for (const section of fields.filter((f) => f.depth === 1)) {
    out.push(
      `## \`${section.path}\``,
      '',
      cell(String(section.schema.description ?? '')),
      '',
      reloadNote(section),
      '',
      '| field | type | default | meaning |',
      '|---|---|---|---|',
    );
    const rows = section.schema.type === 'object' && section.schema.properties ? [] : [section];
    rows.push(...fields.filter((f) => f.path.startsWith(`${section.path}.`) || f.path.startsWith(`${section.path}[]`)));
    for (const f of rows) out.push(`| \`${f.path}\` | ${typeOf(f.schema)} | ${defaultOf(f)} | ${cell(meaningOf(f, section.restart))} |`);
    out.push('');
  }
  return out.join('\n');
}
