/**
 * Config file migrations: each upgrades a file of one version to the next, on the YAML document
 * (so a file upgraded on disk keeps its comments and layout). A file without `version` is
 * version 1. Loading an older file upgrades it in memory with a warning; `eyewear-gateway
 * migrate-config FILE` upgrades it on disk after copying it to `<file>.v<from>.bak`.
 *
 * Shipped migrations are never edited: a change of format is a new version and a new migration.
 */
import { constants, copyFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Document, isMap, isScalar, isSeq, parseDocument, YAMLMap } from 'yaml';
import { CONFIG_VERSION } from './schema.ts';

export interface Migration {
  readonly from: number;
  readonly to: number;
  /** What changes, for the warning and the CLI. */
  readonly summary: string;
  /** Changes `doc` in place; returns one line per change made (empty: nothing to change). */
  up(doc: Document): string[];
}

/** The defaults a version 1 `folders[]` entry had, written out so the migrated entry reads exactly the same files. */
const V1_FOLDER_DEFAULTS = { extensions: ['.hl7', '.txt', '.dat'], stableMs: 2000, pollMs: 1000 };

export const MIGRATIONS: readonly Migration[] = [
  {
    from: 1,
    to: 2,
    summary: 'folders[] (HL7 v2 file folders) became files[] entries with profile hl7v2: one file source, one config',
    up(doc) {
      const folders = doc.get('folders');
      doc.delete('folders');
      if (!isSeq(folders)) return [];
      const notes: string[] = [];
      for (const item of folders.items) {
        const f = (isMap(item) ? item.toJSON() : {}) as Record<string, unknown>;
        const entry = {
          id: f.id,
          source: 'folder',
          dir: f.dir,
          profile: 'hl7v2',
          format: 'hl7v2',
          polling: true,
          pollMs: f.pollMs ?? V1_FOLDER_DEFAULTS.pollMs,
          extensions: f.extensions ?? V1_FOLDER_DEFAULTS.extensions,
          stableMs: f.stableMs ?? V1_FOLDER_DEFAULTS.stableMs,
          after: 'move',
        };
        if (!isSeq(doc.get('files'))) doc.set('files', doc.createNode([]));
        (doc.get('files') as { add(v: unknown): void }).add(doc.createNode(entry));
        notes.push(`folders entry ${String(f.id)} → files[] (profile hl7v2, polling every ${String(entry.pollMs)} ms)`);
      }
      return notes;
    },
  },
];

export interface MigrationResult {
  readonly from: number;
  readonly to: number;
  /** One line per change, per migration applied. */
  readonly notes: readonly string[];
}

/** The version a parsed document declares (1 when it has none); NaN when it is not a whole number. */
export function versionOf(doc: Document): number {
  const v = doc.get('version');
  if (v === undefined || v === null) return 1;
  return typeof v === 'number' && Number.isInteger(v) ? v : NaN;
}

/** Thrown for a file this gateway cannot upgrade (written by a newer one, or an unreadable version). */
export class ConfigVersionError extends Error {
  readonly found: string;
  readonly expected: string;
  constructor(found: string, expected: string) {
    super(`config version ${found}: expected ${expected}`);
    this.name = 'ConfigVersionError';
    this.found = found;
    this.expected = expected;
  }
}

/** Upgrades `doc` in place to CONFIG_VERSION. */
export function migrateDocument(doc: Document): MigrationResult {
  const from = versionOf(doc);
  if (Number.isNaN(from) || from < 1)
    throw new ConfigVersionError(JSON.stringify(doc.get('version')), `a whole number from 1 to ${CONFIG_VERSION}`);
  if (from > CONFIG_VERSION)
    throw new ConfigVersionError(
      String(from),
      `at most ${CONFIG_VERSION}: the file was written for a newer gateway; update this gateway, or use a config written for it`,
    );
  const notes: string[] = [];
  for (let v = from; v < CONFIG_VERSION; v++) {
    const m = MIGRATIONS.find((x) => x.from === v);
    if (!m) throw new Error(`no config migration from version ${v}`);
    notes.push(...m.up(doc).map((n) => `v${m.from}→v${m.to}: ${n}`));
  }
  if (from !== CONFIG_VERSION) setVersionFirst(doc, CONFIG_VERSION);
  return { from, to: CONFIG_VERSION, notes };
}

function setVersionFirst(doc: Document, version: number): void {
  if (!isMap(doc.contents)) {
    doc.contents = new YAMLMap();
  }
  const map = doc.contents as YAMLMap;
  map.delete('version');
  const pair = doc.createPair('version', version);
  // a comment above the first field heads the file: it stays at the top, above `version`
  const first = map.items[0];
  if (first && isScalar(first.key) && first.key.commentBefore && isScalar(pair.key)) {
    pair.key.commentBefore = first.key.commentBefore;
    first.key.commentBefore = undefined;
  }
  map.items.unshift(pair);
}

/** Upgrades a config given as a value (tests, the harness, a reload's proposed config) to CONFIG_VERSION. */
export function migrateValue(input: unknown): MigrationResult & { value: unknown } {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    return { from: CONFIG_VERSION, to: CONFIG_VERSION, notes: [], value: input };
  const doc = new Document(input);
  const r = migrateDocument(doc);
  // the YAML round trip only where a migration changed something: a value with nothing to move stays as given
  const value = r.notes.length ? doc.toJS() : r.from === r.to ? input : { ...(input as Record<string, unknown>), version: r.to };
  return { ...r, value };
}

export interface FileMigration extends MigrationResult {
  /** The copy of the file as it was; absent when it was current already (nothing written). */
  readonly backup?: string;
}

/**
 * Upgrades a config file on disk: copies it to `<file>.v<from>.bak` (never over an existing
 * backup), then replaces it (written beside it and renamed, so a crash leaves the old or the new
 * file, never half of one). A current file is left untouched.
 */
export function migrateConfigFile(file: string): FileMigration {
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length) throw doc.errors[0];
  const result = migrateDocument(doc);
  if (result.from === result.to) return result;
  const backup = `${file}.v${result.from}.bak`;
  copyFileSync(file, backup, constants.COPYFILE_EXCL);
  const tmp = `${file}.migrating`;
  writeFileSync(tmp, doc.toString(), { mode: statSync(file).mode & 0o777 });
  renameSync(tmp, file);
  return { ...result, backup };
}
