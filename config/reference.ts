/** Renders config/REFERENCE.md from the schema's descriptions and defaults. */
import type { TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './schema.ts';

function typeOf(s: TSchema): string {
  if (s.anyOf) return (s.anyOf as TSchema[]).map((b) => (b.const !== undefined ? `\`${JSON.stringify(b.const)}\`` : typeOf(b))).join(' \\| ');
  const bits = [String(s.type ?? 'any')];
  if (s.minimum !== undefined) bits.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bits.push(`≤ ${s.maximum}`);
  return bits.join(' ');
}

export function renderConfigReference(): string {
  const out = ['# Configuration reference', '', 'Generated from `config/schema.ts` by `npm run docs`. Every field is optional: the defaults below are what', '`npm start` runs with. Any string may hold `${env:NAME}` or `${file:PATH}` (resolved at load; use them for secrets).', 'Any field may be overridden from the environment: `EWML__HL7__PORT=2576` sets `hl7.port`.', ''];
  for (const [section, schema] of Object.entries(ConfigSchema.properties as Record<string, TSchema>)) {
    out.push(`## \`${section}\``, '', String(schema.description ?? ''), '', '| field | type | default | meaning |', '|---|---|---|---|');
    // a list section (e.g. folders) documents the fields of one entry as `section[].field`
    const isList = schema.type === 'array';
    const props = (isList ? (schema.items as TSchema).properties : schema.properties) ?? {};
    for (const [field, f] of Object.entries(props as Record<string, TSchema>)) {
      const def = f.default === undefined ? '—' : `\`${JSON.stringify(f.default)}\``;
      out.push(`| \`${section}${isList ? '[]' : ''}.${field}\` | ${typeOf(f)} | ${def} | ${String(f.description ?? '')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
