/**
 * Step 5 of setup: the config validated with the project's loader before anything is written,
 * then written with the checked atomic write (gateway/crypto/key-file.ts: a temporary file,
 * fsync, rename, the folder fsynced), so a crash leaves the old file or the new one, never half.
 * An existing file is replaced only when the caller says so, and is first copied to
 * `<file>.<time>.bak`. Secrets go to their own credentials files (mode 0600) in the data folder,
 * referenced from the YAML by `${file:…}`; the YAML itself never holds one. The written file is
 * loaded back through the loader as the last check.
 */
import { constants, copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig, loadConfigReport, type ConfigProblem } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { readIfExists, writeFileAtomic } from '../../gateway/crypto/key-file.ts';
import { documentOf, type SetupPlan } from './setup-plan.ts';

/**
 * Whether the YAML as written holds a secret: as the value of its own field anywhere (`password:
 * hunter2` instead of `password: ${file:…}`), or, for a secret long enough not to be a common word,
 * as any value. A substring test refused a password that was also the database's name or a port.
 */
export function secretIn(doc: unknown, field: string, secret: string): boolean {
  const walk = (v: unknown, key?: string): boolean => {
    if (typeof v === 'string') return v === secret && (key === field || secret.length >= 12);
    if (Array.isArray(v)) return v.some((x) => walk(x, key));
    if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => walk(x, k));
    return false;
  };
  return secret !== '' && walk(doc);
}

/** The plan as the gateway would load it (secrets inline, in memory only), or every problem with its path. */
export function candidateConfig(plan: SetupPlan): { ok: true; config: GatewayConfig } | { ok: false; problems: readonly ConfigProblem[] } {
  const { doc } = documentOf(plan, { inline: true });
  try {
    // env {}: the file setup writes must stand on its own, whatever EWML__ variables this shell has
    return { ok: true, config: loadConfigReport({ overrides: doc, env: {} }).config };
  } catch (e) {
    if (e instanceof ConfigError)
      return { ok: false, problems: e.problems.length ? e.problems : [{ path: '(root)', expected: 'a valid config', found: e.message }] };
    throw e;
  }
}

export interface Written {
  readonly file: string;
  readonly backup?: string;
  readonly secretFiles: readonly string[];
}

/** Thrown when the config file exists and replacing it was not agreed. */
export class ConfigExists extends Error {}

export function configText(plan: SetupPlan, when: Date): { text: string; secrets: ReturnType<typeof documentOf>['secrets'] } {
  const { doc, secrets } = documentOf(plan, { inline: false });
  const header = [
    `# eyewear-gateway config, written by \`eyewear-gateway setup\` on ${when.toISOString()}.`,
    '# Every field is described in config/REFERENCE.md. Secrets are not in this file: each ${file:…}',
    `# reference names a credentials file (mode 0600) under ${plan.dataDir}/credentials.`,
  ];
  return { text: `${header.join('\n')}\n${stringify(doc, { lineWidth: 0 })}`, secrets };
}

/**
 * Writes the config (and its credentials files). `replace` must be true to write over an existing
 * file; the old one is kept as a backup. Throws ConfigExists, or the write's own error (nothing of
 * this run left behind: new credentials files removed, the old config back in place).
 */
export function writeSetupConfig(plan: SetupPlan, file: string, o: { replace: boolean; now?: Date }): Written {
  const now = o.now ?? new Date();
  const exists = existsSync(file);
  if (exists && !o.replace) throw new ConfigExists(`${file} exists`);
  const { text, secrets } = configText(plan, now);
  for (const s of secrets)
    if (secretIn(parse(text), s.field, s.value))
      throw new Error(`setup: a secret of ${s.sourceId} would be written into ${file}; nothing was written`);
  let backup: string | undefined;
  if (exists) {
    backup = `${file}.${now.toISOString().replace(/[:.]/g, '-')}.bak`;
    copyFileSync(file, backup, constants.COPYFILE_EXCL);
  }
  const written: string[] = [];
  // a credentials file setup replaces (setup run again) is put back if this run fails: the restored config names it
  const previous = new Map<string, Buffer>();
  try {
    for (const s of secrets) {
      const old = readIfExists(s.file);
      if (old) previous.set(s.file, old);
      writeFileAtomic(s.file, Buffer.from(s.value, 'utf8'));
      written.push(s.file);
    }
    writeFileAtomic(file, Buffer.from(text, 'utf8'));
    loadConfig({ file, env: {}, onWarning: () => undefined });
  } catch (e) {
    for (const f of written) {
      const old = previous.get(f);
      if (old) writeFileAtomic(f, old);
      else rmSync(f, { force: true });
    }
    if (backup) renameSync(backup, file);
    else rmSync(file, { force: true });
    throw e;
  }
  return { file, ...(backup ? { backup } : {}), secretFiles: written };
}
