/**
 * A walk of the config schema's tree: every field at every depth (objects, array items, record
 * values, the object branches of unions), with the metadata it carries or inherits (`secret`,
 * `restart`, `reload`; config/schema.ts `FieldMeta`). The secret list, the reference doc and the
 * reload planner all read the schema through this one walk, so none of them keeps a hand list.
 *
 * Paths: `hl7.port`, `files[].sftp.host` (an array's item), `hl7.profileOverrides.eyeCodes.<key>.display`
 * (a record's value). `concretePathPattern` turns one into the path of a real value (`files.0.sftp.host`).
 */
import type { TSchema } from '@sinclair/typebox';

export interface SchemaField {
  /** `section.field`, `list[].field`, `record.<key>.field`. */
  readonly path: string;
  readonly schema: TSchema;
  /** Nesting below the root (a section is depth 1). */
  readonly depth: number;
  readonly secret: boolean;
  /** A change needs a gateway restart (marked here or on an ancestor). */
  readonly restart: boolean;
  /** A change re-creates one source (marked on the source section). */
  readonly reload?: 'adapter';
}

/** The properties that make up an object-like node: its own, or those of its union's object branches. */
export function objectBranches(s: TSchema): TSchema[] {
  if (s.type === 'object' && s.properties) return [s];
  if (Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).flatMap(objectBranches);
  return [];
}

/** The schema of an array's item, or a record's value, when the node is one. */
export function childOf(s: TSchema): { kind: 'array' | 'record'; schema: TSchema } | undefined {
  if (s.type === 'array' && s.items && !Array.isArray(s.items)) return { kind: 'array', schema: s.items as TSchema };
  if (s.type === 'object' && s.patternProperties) {
    const v = Object.values(s.patternProperties as Record<string, TSchema>)[0];
    if (v) return { kind: 'record', schema: v };
  }
  return undefined;
}

/** Every field under `root` in document order, parents before their children. */
export function walkSchema(root: TSchema): SchemaField[] {
  const out: SchemaField[] = [];
  const seen = new Set<string>();
  const visit = (s: TSchema, path: string, depth: number, inherited: { secret: boolean; restart: boolean; reload?: 'adapter' }) => {
    const meta = {
      secret: inherited.secret || s.secret === true,
      restart: inherited.restart || s.restart === true,
      reload: (s.reload as 'adapter' | undefined) ?? inherited.reload,
    };
    if (path !== '') {
      // a union of two object branches names a field once
      if (seen.has(path)) return;
      seen.add(path);
      out.push({ path, schema: s, depth, ...meta });
    }
    const child = childOf(s);
    if (child) {
      // array items and record values: the item's own fields, and any union branches among them
      const itemPath = child.kind === 'array' ? `${path}[]` : `${path}.<key>`;
      for (const b of objectBranches(child.schema))
        for (const [k, f] of Object.entries(b.properties as Record<string, TSchema>)) visit(f, `${itemPath}.${k}`, depth + 1, meta);
      if (child.kind === 'record' && objectBranches(child.schema).length === 0) visit(child.schema, itemPath, depth + 1, meta);
      return;
    }
    for (const b of objectBranches(s)) {
      for (const [k, f] of Object.entries(b.properties as Record<string, TSchema>))
        visit(f, path === '' ? k : `${path}.${k}`, depth + 1, meta);
    }
  };
  visit(root, '', 0, { secret: false, restart: false });
  return out;
}

/** The paths of every `secret: true` field (`mqtt.password`, `databases[].writeBack.password`). */
export function secretPaths(root: TSchema): string[] {
  return walkSchema(root)
    .filter((f) => f.schema.secret === true)
    .map((f) => f.path);
}

/** `files.0.sftp.password` (a value's path, as validation reports it) → `files[].sftp.password` (its schema path). */
export function schemaPathOf(valuePath: string): string {
  return valuePath.replace(/\.\d+(?=\.|$)/g, '[]').replace(/\[(\d+)\]/g, '[]');
}
