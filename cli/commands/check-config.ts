/**
 * `check-config` and `migrate-config`: a config file checked by the same load as `start`
 * (schema, then config/rules.ts), and an older file upgraded on disk with a backup.
 */
import { ConfigError, formatConfigError, loadConfigReport } from '../../config/load.ts';
import { migrateConfigFile } from '../../config/migrate.ts';
import { ConfigVersionError } from '../../config/migrate.ts';
import { CONFIG_VERSION } from '../../config/schema.ts';
import type { CliCommand } from '../command.ts';

interface Io {
  out(s: string): void;
  err(s: string): void;
  env?: Readonly<Record<string, string | undefined>>;
}

export const CHECK_CONFIG_HELP = `eyewear-gateway check-config FILE [--offline]

Validates FILE as \`start\` would: the config schema (config/REFERENCE.md), then the rules between
fields (a database's host and user, a parseable cloud key, unique source ids, ports that do not
collide, a pinned SFTP host key, cron schedules, time zones…). Exit 0 when valid, 3 when not, with
every bad field's path, what was expected, what was found and what to do.
--offline: structure and rules without resolving \${env:…} and \${file:…} (no secret file is read);
fields holding them are listed as not checked offline. For checking a config away from its machine.`;

export const MIGRATE_CONFIG_HELP = `eyewear-gateway migrate-config FILE

Upgrades FILE to config version ${CONFIG_VERSION}, keeping its comments. The file as it was is copied first to
FILE.v<old version>.bak (never over an existing backup). A current file is left as it is.
Version 1 to 2: folders[] entries become files[] entries with profile hl7v2 (the same folder,
extensions, stableMs and pollMs; polled; moved to processed/ after import).`;

export function checkConfig(files: string[], o: { offline: boolean }, io: Io): number {
  if (files.length !== 1) {
    io.err(`check-config takes one FILE\n\n${CHECK_CONFIG_HELP}`);
    return 2;
  }
  try {
    const {
      config: cfg,
      warnings,
      unchecked,
    } = loadConfigReport({ file: files[0], offline: o.offline, ...(io.env ? { env: io.env } : {}) });
    for (const w of warnings) io.err(`warning ${w.path}: ${w.found}${w.todo ? `\n  what to do: ${w.todo}` : ''}`);
    const sources = cfg.databases.length + cfg.files.length + cfg.fhir.length + cfg.apis.length;
    io.out(
      `${files[0]}: valid${o.offline ? ' offline' : ''} (sink ${cfg.relay.sink}, MLLP ${cfg.hl7.enabled ? `${cfg.hl7.host}:${cfg.hl7.port}` : 'off'}, admin ${cfg.admin.enabled ? `${cfg.admin.host}:${cfg.admin.port}` : 'off'}, ${sources} other source(s))`,
    );
    if (unchecked.length) io.out(`not checked offline (they hold \${env:…}/\${file:…} references): ${unchecked.join(', ')}`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.err(formatConfigError(e));
    if (e.code === 'GW_SECRET_MISSING' && !o.offline) io.err('(check-config --offline checks the rest without reading secrets)');
    return 3;
  }
}

export function migrateConfig(files: string[], io: Io): number {
  if (files.length !== 1) {
    io.err(`migrate-config takes one FILE\n\n${MIGRATE_CONFIG_HELP}`);
    return 2;
  }
  const file = files[0];
  let r: ReturnType<typeof migrateConfigFile>;
  try {
    r = migrateConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigVersionError) {
      io.err(`${file}: config version ${e.found}: expected ${e.expected}`);
      return 3;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      io.err(`${file}: a backup from an earlier migration exists (${file}.v*.bak); move it aside and run again. Nothing was changed.`);
      return 1;
    }
    if (code) {
      io.err(`${file}: cannot migrate (${code}). Nothing was changed.`);
      return 1;
    }
    io.err(`${file}: not valid YAML (${(e as Error).message}). Nothing was changed.`);
    return 3;
  }
  if (!r.backup) {
    io.out(`${file}: already version ${r.to}; nothing to do`);
    return 0;
  }
  io.out(`${file}: version ${r.from} → ${r.to}; the old file is ${r.backup}`);
  for (const n of r.notes) io.out(`  ${n}`);
  io.out(`check it with: eyewear-gateway check-config ${file}`);
  return 0;
}

export const checkConfigCommand: CliCommand = {
  name: 'check-config',
  synopsis: 'check-config FILE [--offline]',
  summary: 'Validate a config file as start would; list every bad field\n(--offline: without reading secret files or variables).',
  help: CHECK_CONFIG_HELP,
  options: { offline: { type: 'boolean' } },
  run: ({ positionals, values }, io) => checkConfig(positionals, { offline: Boolean(values.offline) }, io),
};

export const migrateConfigCommand: CliCommand = {
  name: 'migrate-config',
  synopsis: 'migrate-config FILE',
  summary: 'Upgrade an older config file to the current version (keeps a backup).',
  help: MIGRATE_CONFIG_HELP,
  run: ({ positionals }, io) => migrateConfig(positionals, io),
};
