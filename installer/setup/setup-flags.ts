/**
 * `setup --non-interactive`: the same choices as the guided flow, as flags. Sources are listed
 * with `--source KIND` (repeatable, in order); the k-th `--source db` takes the k-th `--db-url`
 * (and the k-th `--db-password-env`, if given), and so on for each kind. Secrets never come as
 * flag values (a process list shows those): a password is named by the environment variable that
 * holds it, a key by its file.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { ParseArgsOptionsConfig } from 'node:util';
import { FILE_PROFILE_NAMES } from '../../adapters/file/file-profiles.ts';
import { FhirResourceName, FhirVendor } from '../../config/fhir-schema.ts';
import { Hl7ProfileName } from '../../config/schema.ts';
import { parseDbUrl, parseSftpUrl, SOURCE_KINDS, type SetupPlan, type SourceEntry, type SourceKind } from './setup-plan.ts';

const many = { type: 'string', multiple: true } as const;

export const SETUP_OPTIONS: ParseArgsOptionsConfig = {
  'non-interactive': { type: 'boolean' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  'keep-failed': { type: 'boolean' },
  'gateway-id': { type: 'string' },
  tenant: { type: 'string' },
  practice: { type: 'string' },
  'data-dir': { type: 'string' },
  source: many,
  'hl7-port': { type: 'string' },
  'hl7-host': { type: 'string' },
  'hl7-profile': { type: 'string' },
  'db-url': many,
  'db-password-env': many,
  folder: many,
  'folder-profile': many,
  'sftp-url': many,
  'sftp-host-key': many,
  'sftp-key-file': many,
  'sftp-password-env': many,
  'sftp-profile': many,
  'fhir-url': many,
  'fhir-client-id': many,
  'fhir-vendor': many,
  'fhir-resources': many,
  'enrol-code': { type: 'string' },
  cloud: { type: 'string' },
  'cloud-ca': { type: 'string' },
  install: { type: 'boolean' },
  'no-doctor': { type: 'boolean' },
};

export const FILE_PROFILES_OFFERED = FILE_PROFILE_NAMES.filter((p) => p !== 'generic');
export const DEFAULT_RESOURCES = ['Patient', 'Appointment', 'VisionPrescription'] as const;

/** Platform defaults: where the service reads its config and keeps its data (installer's conventions). */
export function defaultPaths(platform = process.platform): { out: string; dataDir: string } {
  if (platform === 'win32')
    return { out: 'C:\\ProgramData\\eyewear-gateway\\config.yaml', dataDir: 'C:\\ProgramData\\eyewear-gateway\\data' };
  return { out: '/etc/eyewear-gateway/config.yaml', dataDir: '/var/lib/eyewear-gateway' };
}

/** A usage error: the flag and what it needs. */
export class FlagError extends Error {}

export interface FlagPlan {
  readonly plan: SetupPlan;
  readonly out: string;
  /** Said on stderr (a password that was on the command line). */
  readonly warnings: readonly string[];
}

export function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new FlagError(`${what} needs a port number 1-65535, got "${text}"`);
  return n;
}

export function oneOf<T extends string>(text: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new FlagError(`${what} is one of ${allowed.join(', ')}; got "${text}"`);
  return text as T;
}

export function resourcesOf(text: string): string[] {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const r of list) oneOf(r, FhirResourceName, '--fhir-resources');
  if (list.length === 0) throw new FlagError('--fhir-resources needs at least one resource type');
  return list;
}

/** The next id for a kind: `db`, then `db-2`, … */
export function nextId(kind: string, taken: readonly SourceEntry[]): string {
  const ids = new Set(taken.filter((s) => s.kind !== 'hl7').map((s) => (s as { id: string }).id));
  if (!ids.has(kind)) return kind;
  let n = 2;
  while (ids.has(`${kind}-${n}`)) n++;
  return `${kind}-${n}`;
}

export function planFromFlags(
  v: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  cwd = process.cwd(),
): FlagPlan {
  const list = (k: string) => (v[k] as string[] | undefined) ?? [];
  const str = (k: string) => v[k] as string | undefined;
  const warnings: string[] = [];
  const counters: Partial<Record<SourceKind, number>> = {};
  const kth = (flag: string, k: number, kind: string, required: boolean): string | undefined => {
    const val = list(flag)[k];
    if (val === undefined && required)
      throw new FlagError(`source ${kind} #${k + 1} needs its own --${flag} (the k-th --source ${kind} takes the k-th --${flag})`);
    return val;
  };
  const envSecret = (flag: string, name: string | undefined): string | undefined => {
    if (name === undefined) return undefined;
    const val = env[name];
    if (val === undefined) throw new FlagError(`--${flag} ${name}: environment variable ${name} is not set`);
    return val;
  };
  if (str('enrol-code') !== undefined && str('cloud') === undefined)
    throw new FlagError('--enrol-code needs --cloud URL (the enrolment endpoint, from the cloud team)');
  const kinds = list('source');
  if (kinds.length === 0) throw new FlagError(`setup --non-interactive needs at least one --source (${SOURCE_KINDS.join(', ')})`);
  const sources: SourceEntry[] = [];
  for (const raw of kinds) {
    const kind = oneOf(raw, SOURCE_KINDS, '--source');
    const k = counters[kind] ?? 0;
    counters[kind] = k + 1;
    switch (kind) {
      case 'hl7': {
        if (k > 0) throw new FlagError('--source hl7 is given once: the gateway has one MLLP listener');
        const profile = str('hl7-profile') ?? 'generic';
        sources.push({
          kind,
          host: str('hl7-host') ?? '0.0.0.0',
          port: port(str('hl7-port') ?? '2575', '--hl7-port'),
          profile: oneOf(profile, Object.values(Hl7ProfileName), '--hl7-profile'),
        });
        break;
      }
      case 'db': {
        const url = kth('db-url', k, kind, true)!;
        let parsed;
        try {
          parsed = parseDbUrl(url);
        } catch (e) {
          throw new FlagError(`--db-url: ${(e as Error).message}`);
        }
        if (parsed.password !== undefined)
          warnings.push(
            'warning: the database password was given in --db-url, where the process list shows it; prefer --db-password-env VAR',
          );
        const password = envSecret('db-password-env', kth('db-password-env', k, kind, false)) ?? parsed.password;
        sources.push({ kind, id: nextId('db', sources), ...parsed, ...(password !== undefined ? { password } : {}) });
        break;
      }
      case 'folder': {
        const dir = kth('folder', k, kind, true)!;
        sources.push({
          kind,
          id: nextId('folder', sources),
          dir: isAbsolute(dir) ? dir : resolve(cwd, dir),
          profile: oneOf(kth('folder-profile', k, kind, false) ?? 'optical-csv', FILE_PROFILES_OFFERED, '--folder-profile'),
        });
        break;
      }
      case 'sftp': {
        const url = kth('sftp-url', k, kind, true)!;
        let where;
        try {
          where = parseSftpUrl(url);
        } catch (e) {
          throw new FlagError(`--sftp-url: ${(e as Error).message}`);
        }
        const hostKey = kth('sftp-host-key', k, kind, false);
        if (!hostKey)
          throw new FlagError(
            `source sftp #${k + 1} needs --sftp-host-key SHA256:… (the server's host key fingerprint: ssh-keyscan -p ${where.port} ${where.host} | ssh-keygen -lf -, confirmed with the practice's IT)`,
          );
        const keyFile = kth('sftp-key-file', k, kind, false);
        let privateKey: string | undefined;
        if (keyFile) {
          try {
            privateKey = readFileSync(resolve(cwd, keyFile), 'utf8');
          } catch (e) {
            throw new FlagError(`--sftp-key-file ${keyFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
          }
        }
        const password = envSecret('sftp-password-env', kth('sftp-password-env', k, kind, false));
        if (!privateKey && password === undefined)
          throw new FlagError(`source sftp #${k + 1} needs --sftp-key-file FILE or --sftp-password-env VAR`);
        sources.push({
          kind,
          id: nextId('sftp', sources),
          ...where,
          hostKeySha256: hostKey,
          profile: oneOf(kth('sftp-profile', k, kind, false) ?? 'optical-csv', FILE_PROFILES_OFFERED, '--sftp-profile'),
          ...(privateKey ? { privateKey } : {}),
          ...(password !== undefined ? { password } : {}),
        });
        break;
      }
      case 'fhir': {
        sources.push({
          kind,
          id: nextId('fhir', sources),
          baseUrl: kth('fhir-url', k, kind, true)!,
          clientId: kth('fhir-client-id', k, kind, true)!,
          vendor: oneOf(kth('fhir-vendor', k, kind, false) ?? 'generic', Object.values(FhirVendor), '--fhir-vendor'),
          resources: resourcesOf(kth('fhir-resources', k, kind, false) ?? DEFAULT_RESOURCES.join(',')),
        });
        break;
      }
      default:
        kind satisfies never;
    }
  }
  const defaults = defaultPaths();
  const dataDir = str('data-dir') ?? defaults.dataDir;
  const out = str('out') ?? defaults.out;
  return {
    plan: {
      gatewayId: str('gateway-id') ?? 'gw-local',
      tenantId: str('tenant') ?? 'local',
      practiceId: str('practice') ?? 'local',
      dataDir: resolve(cwd, dataDir),
      sources,
    },
    out: resolve(cwd, out),
    warnings,
  };
}
