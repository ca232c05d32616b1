/**
 * Each adapter's secrets and public files in the data folder (adapters/contracts.ts SecretStore):
 * `secrets/<adapter>/<name>.sealed`, sealed with the gateway's key (ARCHITECTURE rule 4, AAD naming
 * the adapter and the secret so one cannot be swapped for another), and `public/<adapter>/<name>`.
 *
 * A secret is created once and never replaced: the exclusive create is a hard link of a fully
 * written, fsynced temporary file (it fails when the name exists), so two processes making the
 * same secret at once keep the first. One that cannot be opened (another machine's seal key, a
 * damaged file) is an error that names the file and what to do, never a silent new secret.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretStore } from '../../adapters/contracts.ts';
import { GatewayError } from '../errors.ts';
import { fsyncDir, readIfExists, writeFileAtomic } from './key-file.ts';
import type { RecordSealer } from './record-sealer.ts';

/** A file or folder name: letters, digits, `.`, `_`, `-`, and not `.` or `..` (which would name the folder above). */
const SAFE = /^(?!\.+$)[A-Za-z0-9._-]+$/;

export function secretsDir(dataDir: string, adapterId: string): string {
  return join(dataDir, 'secrets', adapterId);
}

export function publicDir(dataDir: string, adapterId: string): string {
  return join(dataDir, 'public', adapterId);
}

/** The public half only, for readers without the seal key (`fhir jwks`). */
export function createPublicStore(dataDir: string, adapterId: string): Pick<SecretStore, 'readPublic'> {
  return {
    readPublic(name) {
      if (!SAFE.test(name)) throw new Error(`not a file name: ${name}`);
      return readIfExists(join(publicDir(dataDir, adapterId), name))?.toString('utf8');
    },
  };
}

export function createSecretStore(dataDir: string, adapterId: string, sealer: RecordSealer): SecretStore {
  if (!SAFE.test(adapterId)) throw new Error(`not an adapter id: ${adapterId}`);
  const sdir = secretsDir(dataDir, adapterId);
  const pdir = publicDir(dataDir, adapterId);
  const check = (name: string) => {
    if (!SAFE.test(name)) throw new Error(`not a file name: ${name}`);
  };
  const aad = (name: string) => `secret:${adapterId}/${name}`;
  return {
    readSecret(name) {
      check(name);
      const file = join(sdir, `${name}.sealed`);
      const sealed = readIfExists(file);
      if (!sealed) return undefined;
      try {
        return sealer.open(aad(name), sealed);
      } catch (e) {
        throw new GatewayError(
          'GW_STORE_CORRUPT',
          `${file} cannot be opened with this gateway's seal key (damaged, or sealed by another installation). It was not replaced. Restore the seal key it was made with, or move the file aside to make a new one (then register the new public key with the vendor).`,
          { cause: e, details: { file } },
        );
      }
    },
    createSecret(name, bytes) {
      check(name);
      const file = join(sdir, `${name}.sealed`);
      mkdirSync(sdir, { recursive: true, mode: 0o700 });
      const tmp = join(sdir, `.${name}.${randomBytes(6).toString('hex')}.new`);
      writeFileAtomic(tmp, sealer.seal(aad(name), bytes));
      try {
        linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      } finally {
        rmSync(tmp, { force: true });
      }
      fsyncDir(sdir);
      return true;
    },
    readPublic: createPublicStore(dataDir, adapterId).readPublic,
    writePublic(name, text) {
      check(name);
      writeFileAtomic(join(pdir, name), Buffer.from(text, 'utf8'));
    },
  };
}
