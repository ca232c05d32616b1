/** Config version 1 → 2: folders[] become files[] entries (one file source); on disk with a backup, in memory with a warning. */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, validateConfig, type ConfigProblem } from '../../config/load.ts';
import { migrateConfigFile } from '../../config/migrate.ts';

const V1 = `# the practice's drop folders
gateway:
  id: gw-7   # keep this comment
folders:
  - id: drop
    dir: /srv/hl7-drop
  - id: lab
    dir: /srv/lab
    extensions: [.hl7]
    stableMs: 500
    pollMs: 250
`;

const expectedFiles = [
  {
    id: 'drop',
    source: 'folder',
    dir: '/srv/hl7-drop',
    profile: 'hl7v2',
    format: 'hl7v2',
    polling: true,
    pollMs: 1000,
    extensions: ['.hl7', '.txt', '.dat'],
    stableMs: 2000,
    after: 'move',
  },
  {
    id: 'lab',
    source: 'folder',
    dir: '/srv/lab',
    profile: 'hl7v2',
    format: 'hl7v2',
    polling: true,
    pollMs: 250,
    extensions: ['.hl7'],
    stableMs: 500,
    after: 'move',
  },
];

const fresh = (text: string) => {
  const d = mkdtempSync(join(tmpdir(), 'ewml-mig-'));
  const f = join(d, 'gateway.yaml');
  writeFileSync(f, text);
  return f;
};

describe('config migrations', () => {
  it('loads a version 1 file in memory: folders[] read as files[], folders empty, with one warning', () => {
    const warnings: ConfigProblem[] = [];
    const c = loadConfig({ file: fresh(V1), env: {}, onWarning: (w) => warnings.push(w) });
    expect(c.version).toBe(2);
    expect(c.folders).toEqual([]);
    expect(c.files).toEqual(expectedFiles.map((f) => expect.objectContaining(f)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].path).toBe('version');
    expect(warnings[0].todo).toContain('eyewear-gateway migrate-config');
  });

  it('a current file loads without a warning', () => {
    const warnings: ConfigProblem[] = [];
    loadConfig({ file: fresh('version: 2\ngateway:\n  id: gw-8\n'), env: {}, onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
  });

  it('upgrades the file on disk after a backup of it, keeping its comments', () => {
    const f = fresh(V1);
    const r = migrateConfigFile(f);
    expect(r).toMatchObject({ from: 1, to: 2, backup: `${f}.v1.bak` });
    expect(r.notes).toHaveLength(2);
    expect(readFileSync(`${f}.v1.bak`, 'utf8')).toBe(V1);
    const text = readFileSync(f, 'utf8');
    expect(text.startsWith("# the practice's drop folders\nversion: 2\n")).toBe(true);
    expect(text).toContain('# keep this comment');
    expect(text).not.toMatch(/^folders:/m);
    const warnings: ConfigProblem[] = [];
    const c = loadConfig({ file: f, env: {}, onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    expect(c.files).toEqual(expectedFiles.map((x) => expect.objectContaining(x)));
  });

  it('leaves a current file untouched and never overwrites a backup', () => {
    const cur = fresh('version: 2\n');
    expect(migrateConfigFile(cur).backup).toBeUndefined();
    expect(existsSync(`${cur}.v2.bak`)).toBe(false);
    const f = fresh(V1);
    writeFileSync(`${f}.v1.bak`, 'an older backup');
    expect(() => migrateConfigFile(f)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(f, 'utf8')).toBe(V1);
    expect(readFileSync(`${f}.v1.bak`, 'utf8')).toBe('an older backup');
  });

  it('keeps the files[] entries a version 1 file already had, the folders after them', () => {
    const c = loadConfig({
      file: fresh(`${V1}files:\n  - id: csv\n    dir: /srv/csv\n    profile: optical-csv\n`),
      env: {},
      onWarning: () => undefined,
    });
    expect(c.files.map((f) => f.id)).toEqual(['csv', 'drop', 'lab']);
  });

  it('a version 2 file with folders[] is refused, saying how to fix it', () => {
    try {
      loadConfig({ file: fresh('version: 2\nfolders:\n  - id: drop\n    dir: /d\n'), env: {} });
    } catch (e) {
      expect((e as ConfigError).problems).toEqual([expect.objectContaining({ path: 'folders', found: '1 entry' })]);
      return;
    }
    throw new Error('expected folders refused');
  });

  it('a file from a newer gateway is refused with its version', () => {
    try {
      loadConfig({ file: fresh('version: 3\n'), env: {} });
    } catch (e) {
      expect((e as ConfigError).problems).toEqual([expect.objectContaining({ path: 'version', found: '3' })]);
      return;
    }
    throw new Error('expected version 3 refused');
  });

  it('validateConfig (tests, the harness, a proposed reload) migrates a value too', () => {
    const r = validateConfig({ folders: [{ id: 'drop', dir: '/d', stableMs: 0, pollMs: 100 }] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.folders).toEqual([]);
    expect(r.config.files).toEqual([
      expect.objectContaining({
        id: 'drop',
        dir: '/d',
        profile: 'hl7v2',
        format: 'hl7v2',
        polling: true,
        stableMs: 0,
        pollMs: 100,
        extensions: ['.hl7', '.txt', '.dat'],
        after: 'move',
      }),
    ]);
  });
});
