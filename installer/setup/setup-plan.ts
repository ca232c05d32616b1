/**
 * What the technician chose in `eyewear-gateway setup`, before it becomes a config: the gateway's
 * identity and data folder, and one entry per source. Secrets travel beside the entries, never
 * inside the document written to YAML: {@link documentOf} puts a `${file:…}` reference where a
 * secret goes, naming a credentials file in the data folder (mode 0600) that `write-config.ts` writes.
 */
import { join } from 'node:path';

export const SourceKind = { hl7: 'hl7', db: 'db', folder: 'folder', sftp: 'sftp', fhir: 'fhir' } as const;
export type SourceKind = (typeof SourceKind)[keyof typeof SourceKind];
export const SOURCE_KINDS: readonly SourceKind[] = Object.values(SourceKind);

export type DbEngine = 'postgres' | 'mariadb' | 'mssql' | 'sqlite';

/** The engines' usual ports (a hint for detection and the default of a prompt). */
export const DB_PORTS: Readonly<Record<Exclude<DbEngine, 'sqlite'>, number>> = { postgres: 5432, mariadb: 3306, mssql: 1433 };

export interface Hl7Entry {
  readonly kind: 'hl7';
  readonly host: string;
  readonly port: number;
  readonly profile: string;
}
export interface DbEntry {
  readonly kind: 'db';
  readonly id: string;
  readonly engine: DbEngine;
  readonly host: string;
  readonly port?: number;
  readonly database: string;
  readonly user: string;
  readonly file?: string;
  readonly schema?: string;
  readonly password?: string;
}
export interface FolderEntry {
  readonly kind: 'folder';
  readonly id: string;
  readonly dir: string;
  readonly profile: string;
}
export interface SftpEntry {
  readonly kind: 'sftp';
  readonly id: string;
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly hostKeySha256: string;
  readonly profile: string;
  readonly password?: string;
  readonly privateKey?: string;
  readonly passphrase?: string;
}
export interface FhirEntry {
  readonly kind: 'fhir';
  readonly id: string;
  readonly vendor: string;
  readonly baseUrl: string;
  readonly clientId: string;
  readonly resources: readonly string[];
}
export type SourceEntry = Hl7Entry | DbEntry | FolderEntry | SftpEntry | FhirEntry;

export interface SetupPlan {
  readonly gatewayId: string;
  readonly tenantId: string;
  readonly practiceId: string;
  readonly dataDir: string;
  readonly sources: readonly SourceEntry[];
}

/** One secret: where it lives on disk and the config field that references it. */
export interface SecretFile {
  readonly sourceId: string;
  readonly field: string;
  readonly file: string;
  readonly value: string;
}

/** `<dataDir>/credentials/<source>.<field>`: read by the loader through `${file:…}`, never copied into the YAML. */
export function credentialsFile(dataDir: string, sourceId: string, field: string): string {
  return join(dataDir, 'credentials', `${sourceId}.${field}`);
}

/**
 * The config document of a plan. `inline: true` puts the secrets' values in (for validation in
 * memory only, never written); otherwise each secret is a `${file:…}` reference and listed in `secrets`.
 */
export function documentOf(plan: SetupPlan, o: { inline: boolean }): { doc: Record<string, unknown>; secrets: SecretFile[] } {
  const secrets: SecretFile[] = [];
  const secret = (sourceId: string, field: string, value: string | undefined): string | undefined => {
    if (value === undefined || value === '') return undefined;
    const file = credentialsFile(plan.dataDir, sourceId, field);
    secrets.push({ sourceId, field, file, value });
    // inline, as the loader will read it back: `${file:…}` drops one trailing newline, so what is tested is what runs
    return o.inline ? value.replace(/\r?\n$/, '') : `\${file:${file}}`;
  };
  const hl7 = plan.sources.find((s): s is Hl7Entry => s.kind === 'hl7');
  const databases = plan.sources
    .filter((s): s is DbEntry => s.kind === 'db')
    .map((d) =>
      prune({
        id: d.id,
        engine: d.engine,
        profile: 'practice-studio',
        schema: d.schema,
        host: d.engine === 'sqlite' ? undefined : d.host,
        port: d.port,
        database: d.engine === 'sqlite' ? undefined : d.database,
        user: d.engine === 'sqlite' ? undefined : d.user,
        password: secret(d.id, 'password', d.password),
        file: d.file,
      }),
    );
  const files = plan.sources
    .filter((s): s is FolderEntry | SftpEntry => s.kind === 'folder' || s.kind === 'sftp')
    .map((f) =>
      f.kind === 'folder'
        ? { id: f.id, source: 'folder', dir: f.dir, profile: f.profile }
        : {
            id: f.id,
            source: 'sftp',
            dir: f.dir,
            profile: f.profile,
            sftp: prune({
              host: f.host,
              port: f.port,
              username: f.username,
              hostKeySha256: f.hostKeySha256,
              password: secret(f.id, 'password', f.password),
              privateKey: secret(f.id, 'privateKey', f.privateKey),
              passphrase: secret(f.id, 'passphrase', f.passphrase),
            }),
          },
    );
  const fhir = plan.sources
    .filter((s): s is FhirEntry => s.kind === 'fhir')
    .map((f) => ({ id: f.id, vendor: f.vendor, baseUrl: f.baseUrl, clientId: f.clientId, resources: [...f.resources] }));
  const doc: Record<string, unknown> = {
    version: 2,
    gateway: { id: plan.gatewayId, tenantId: plan.tenantId, practiceId: plan.practiceId, dataDir: plan.dataDir },
    hl7: hl7 ? { enabled: true, host: hl7.host, port: hl7.port, profile: hl7.profile } : { enabled: false },
    ...(databases.length ? { databases } : {}),
    ...(files.length ? { files } : {}),
    ...(fhir.length ? { fhir } : {}),
  };
  return { doc, secrets };
}

function prune<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A source's label in the step lines: kind, id and where it is (never a secret). */
export function describeEntry(s: SourceEntry): string {
  switch (s.kind) {
    case 'hl7':
      return `HL7 MLLP listener on ${s.host}:${s.port} (profile ${s.profile})`;
    case 'db':
      return s.engine === 'sqlite'
        ? `database ${s.id} (sqlite ${s.file})`
        : `database ${s.id} (${s.engine} ${s.user ? `${s.user}@` : ''}${s.host}:${s.port ?? DB_PORTS[s.engine]}/${s.database})`;
    case 'folder':
      return `folder ${s.id} (${s.dir}, profile ${s.profile})`;
    case 'sftp':
      return `SFTP ${s.id} (${s.username}@${s.host}:${s.port}${s.dir}, profile ${s.profile})`;
    case 'fhir':
      return `FHIR ${s.id} (${s.vendor}, ${s.baseUrl})`;
    default:
      return s satisfies never;
  }
}

/**
 * A database URL: `postgres://user@host:port/db`, `mariadb://` (or `mysql://`), `mssql://` (or
 * `sqlserver://`), `sqlite:/path/file.db`. A password in the URL is taken as the secret (and the
 * caller warns that it was visible on the command line).
 */
export function parseDbUrl(text: string): Omit<DbEntry, 'kind' | 'id'> {
  const engines: Record<string, DbEngine> = {
    'postgres:': 'postgres',
    'postgresql:': 'postgres',
    'mariadb:': 'mariadb',
    'mysql:': 'mariadb',
    'mssql:': 'mssql',
    'sqlserver:': 'mssql',
    'sqlite:': 'sqlite',
  };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`not a database URL: expected e.g. postgres://USER@HOST:5432/DATABASE or sqlite:/path/file.db`);
  }
  const engine = engines[u.protocol];
  if (!engine) throw new Error(`unknown database kind "${u.protocol.replace(/:$/, '')}": use postgres, mariadb (mysql), mssql or sqlite`);
  if (engine === 'sqlite') {
    const file = decodeURIComponent(u.pathname);
    if (!file || file === '/') throw new Error('sqlite URL needs the file: sqlite:/path/file.db');
    return { engine, host: '', database: '', user: '', file };
  }
  if (!u.hostname) throw new Error(`database URL needs a host: ${engine}://USER@HOST:PORT/DATABASE`);
  const database = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  if (!database) throw new Error(`database URL needs the database name after the host: ${engine}://USER@HOST:PORT/DATABASE`);
  const schema = u.searchParams.get('schema') ?? undefined;
  return {
    engine,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    ...(u.port ? { port: Number(u.port) } : {}),
    database,
    user: decodeURIComponent(u.username),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(schema ? { schema } : {}),
  };
}

/** `sftp://user@host:port/remote/dir`. */
export function parseSftpUrl(text: string): { host: string; port: number; username: string; dir: string } {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error('not an SFTP URL: expected sftp://USER@HOST:22/remote/folder');
  }
  if (u.protocol !== 'sftp:') throw new Error('an SFTP URL starts sftp:// (e.g. sftp://USER@HOST:22/remote/folder)');
  if (!u.hostname || !u.username) throw new Error('an SFTP URL needs a user and a host: sftp://USER@HOST:22/remote/folder');
  if (u.password)
    throw new Error(
      'no password in the SFTP URL (it would be seen on the command line): use --sftp-password-env VAR or --sftp-key-file FILE',
    );
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 22,
    username: decodeURIComponent(u.username),
    dir: decodeURIComponent(u.pathname) || '/',
  };
}
