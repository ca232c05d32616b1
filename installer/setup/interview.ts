/**
 * The guided flow's questions: plain lines on the terminal (the io's `confirm`, node:readline)
 * and `askSecret` (no echo) for passwords, so it works over SSH and in a Windows console. A
 * default is shown in brackets and Enter takes it. Ctrl-C or Ctrl-D at a prompt (the prompt's
 * promise rejects) becomes {@link SetupCancelled}, which the flow turns into a clean stop.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CliIo } from '../../cli/command.ts';
import { FhirVendor } from '../../config/fhir-schema.ts';
import { Hl7ProfileName } from '../../config/schema.ts';
import type { Hint } from './detect.ts';
import { sftpHostKey } from './probes.ts';
import { DB_PORTS, type DbEngine, type SourceEntry, type SourceKind } from './setup-plan.ts';
import { DEFAULT_RESOURCES, FILE_PROFILES_OFFERED, FlagError, nextId, oneOf, port, resourcesOf } from './setup-flags.ts';

export class SetupCancelled extends Error {}

export interface Asker {
  ask(question: string, def?: string): Promise<string>;
  /** Asks until `check` returns a value (it throws FlagError with what is wrong). */
  askValid<T>(question: string, def: string | undefined, check: (answer: string) => T): Promise<T>;
  secret(question: string): Promise<string>;
  yes(question: string, def: boolean): Promise<boolean>;
}

export function createAsker(io: CliIo): Asker {
  const confirm = io.confirm;
  const askSecret = io.askSecret;
  if (!confirm || !askSecret) throw new Error('setup: no terminal to ask on');
  const ask = async (question: string, def?: string) => {
    let a: string;
    try {
      a = await confirm(def ? `${question} [${def}]: ` : `${question}: `);
    } catch {
      throw new SetupCancelled('cancelled at a prompt');
    }
    a = a.trim();
    return a === '' ? (def ?? '') : a;
  };
  const askValid = async <T>(question: string, def: string | undefined, check: (answer: string) => T): Promise<T> => {
    for (;;) {
      const a = await ask(question, def);
      try {
        return check(a);
      } catch (e) {
        if (!(e instanceof FlagError)) throw e;
        io.err(`  ${e.message}`);
      }
    }
  };
  return {
    ask,
    askValid,
    async secret(question) {
      try {
        return await askSecret(`${question}: `);
      } catch {
        throw new SetupCancelled('cancelled at a prompt');
      }
    },
    yes: (question, def) =>
      askValid(`${question} (y/n)`, def ? 'y' : 'n', (a) => {
        if (/^y(es)?$/i.test(a)) return true;
        if (/^no?$/i.test(a)) return false;
        throw new FlagError('answer y or n');
      }),
  };
}

const nonEmpty = (what: string) => (a: string) => {
  if (!a) throw new FlagError(`${what} is needed`);
  return a;
};

/** Asks for one source of `kind`; `before` is the entry being re-entered (its answers are the defaults). */
export async function askSource(
  kind: SourceKind,
  a: Asker,
  o: { hints: readonly Hint[]; taken: readonly SourceEntry[]; before?: SourceEntry; io: CliIo },
): Promise<SourceEntry> {
  const b = o.before as Partial<Record<string, unknown>> | undefined;
  const prev = (k: string) => (b && typeof b[k] !== 'undefined' ? String(b[k]) : undefined);
  switch (kind) {
    case 'hl7': {
      const taken = o.hints.some((h) => h.suggests?.kind === 'hl7-port-taken' && h.suggests.port === 2575);
      const host = await a.ask('  Address to listen on (0.0.0.0: every network of this machine)', prev('host') ?? '0.0.0.0');
      const p = await a.askValid('  MLLP port', prev('port') ?? (taken ? '2576' : '2575'), (s) => port(s, 'the port'));
      const profile = await a.askValid(
        `  PMS/EHR profile (${Object.values(Hl7ProfileName).join(', ')})`,
        prev('profile') ?? 'generic',
        (s) => oneOf(s, Object.values(Hl7ProfileName), 'the profile'),
      );
      return { kind, host, port: p, profile };
    }
    case 'db': {
      const seen = o.hints.find((h) => h.suggests?.kind === 'db')?.suggests as { engine: DbEngine; port: number } | undefined;
      const engine = await a.askValid(
        '  Database engine (postgres, mariadb, mssql, sqlite)',
        prev('engine') ?? seen?.engine ?? 'postgres',
        (s) => oneOf(s, ['postgres', 'mariadb', 'mssql', 'sqlite'] as const, 'the engine'),
      );
      const id = (b?.id as string | undefined) ?? nextId('db', o.taken);
      if (engine === 'sqlite') {
        const file = await a.askValid('  Database file', prev('file'), nonEmpty('the file'));
        return { kind, id, engine, host: '', database: '', user: '', file: resolve(file) };
      }
      const host = await a.ask('  Server', prev('host') ?? '127.0.0.1');
      const p = await a.askValid('  Port', prev('port') ?? String(seen?.engine === engine ? seen.port : DB_PORTS[engine]), (s) =>
        port(s, 'the port'),
      );
      const database = await a.askValid('  Database name', prev('database'), nonEmpty('the database name'));
      const schema = await a.ask('  Practice Studio schema', prev('schema') ?? 'ps');
      const user = await a.askValid('  User (read-only is enough)', prev('user'), nonEmpty('the user'));
      const password = await a.secret('  Password (not shown; kept out of the config file)');
      return { kind, id, engine, host, port: p, database, schema, user, ...(password ? { password } : {}) };
    }
    case 'folder': {
      const dir = await a.askValid('  Folder the PMS exports into', prev('dir'), nonEmpty('the folder'));
      const profile = await a.askValid(`  Export layout (${FILE_PROFILES_OFFERED.join(', ')})`, prev('profile') ?? 'optical-csv', (s) =>
        oneOf(s, FILE_PROFILES_OFFERED, 'the layout'),
      );
      return { kind, id: (b?.id as string | undefined) ?? nextId('folder', o.taken), dir: resolve(dir), profile };
    }
    case 'sftp': {
      const host = await a.askValid('  SFTP server', prev('host'), nonEmpty('the server'));
      const p = await a.askValid('  Port', prev('port') ?? '22', (s) => port(s, 'the port'));
      const username = await a.askValid('  User', prev('username'), nonEmpty('the user'));
      const dir = await a.ask('  Remote folder', prev('dir') ?? '/');
      let hostKeySha256 = '';
      o.io.out(`  reading the host key of ${host}:${p} …`);
      try {
        hostKeySha256 = await sftpHostKey(host, p);
      } catch (e) {
        o.io.err(`  cannot reach ${host}:${p} to read its host key: ${(e as Error).message}`);
      }
      if (hostKeySha256) {
        o.io.out(`  The server's host key is ${hostKeySha256}.`);
        o.io.out("  Compare it with the practice's IT (on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).");
        if (!(await a.yes('  Is it theirs? Pin it', false))) hostKeySha256 = '';
      }
      if (!hostKeySha256)
        hostKeySha256 = await a.askValid("  The server's host key fingerprint (SHA256:…)", prev('hostKeySha256'), (s) => {
          if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(s))
            throw new FlagError('a fingerprint as ssh-keygen -lf prints it: SHA256: then 43 characters');
          return s;
        });
      const keyFile = await a.ask('  Private key file (Enter to use a password instead)');
      let privateKey: string | undefined;
      let passphrase: string | undefined;
      let password: string | undefined;
      if (keyFile) {
        privateKey = await a.askValid('  Private key file', keyFile, (f) => {
          try {
            return readFileSync(resolve(f), 'utf8');
          } catch (e) {
            throw new FlagError(`cannot read ${f} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
          }
        });
        passphrase = (await a.secret('  Its passphrase (Enter for none; not shown)')) || undefined;
      } else password = await a.secret('  Password (not shown; kept out of the config file)');
      const profile = await a.askValid(`  Export layout (${FILE_PROFILES_OFFERED.join(', ')})`, prev('profile') ?? 'optical-csv', (s) =>
        oneOf(s, FILE_PROFILES_OFFERED, 'the layout'),
      );
      return {
        kind,
        id: (b?.id as string | undefined) ?? nextId('sftp', o.taken),
        host,
        port: p,
        username,
        dir,
        hostKeySha256,
        profile,
        ...(privateKey ? { privateKey } : {}),
        ...(passphrase ? { passphrase } : {}),
        ...(password ? { password } : {}),
      };
    }
    case 'fhir': {
      const vendor = await a.askValid(`  Vendor (${Object.values(FhirVendor).join(', ')})`, prev('vendor') ?? 'generic', (s) =>
        oneOf(s, Object.values(FhirVendor), 'the vendor'),
      );
      const baseUrl = await a.askValid('  FHIR R4 base URL', prev('baseUrl'), nonEmpty('the base URL'));
      const clientId = await a.askValid(
        "  Client id (the vendor's registration of this gateway)",
        prev('clientId'),
        nonEmpty('the client id'),
      );
      const resources = await a.askValid('  Resources (comma-separated)', prev('resources') ?? DEFAULT_RESOURCES.join(','), resourcesOf);
      return { kind, id: (b?.id as string | undefined) ?? nextId('fhir', o.taken), vendor, baseUrl, clientId, resources };
    }
    default:
      return kind satisfies never;
  }
}
