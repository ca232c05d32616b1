/**
 * `eyewear-gateway keys export|import`: backing up and restoring the seal key (crypto/key-backup.ts).
 * Run with the gateway stopped (import writes the key file the gateway reads at start).
 *
 * The passphrase comes from an environment variable named by `--passphrase-env` (for scripts: it
 * never appears on a command line or in shell history), or is asked on the terminal without echo;
 * with neither, a usage error — never an empty passphrase.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import type { GatewayConfig } from '../../config/schema.ts';
import type { CliCommand } from '../command.ts';
import { keyCheckMatches, keyCheckValue } from '../../gateway/crypto/key-check.ts';
import { MIN_PASSPHRASE_CHARS, unwrapSealKey, wrapSealKey } from '../../gateway/crypto/key-backup.ts';
import { readKeyFile, writeFileAtomic } from '../../gateway/crypto/key-file.ts';
import { gatewayPaths } from '../../gateway/create-gateway.ts';
import { ErrorCodes, isGatewayError } from '../../gateway/errors.ts';
import { opens } from '../../gateway/outbox/outbox-key-binding.ts';
import { sealedDataIn } from '../../gateway/outbox/outbox-integrity.ts';

export const KEYS_HELP = `eyewear-gateway keys export FILE [--passphrase-env VAR] [--config FILE]
eyewear-gateway keys import FILE [--passphrase-env VAR] [--replace] [--config FILE]

export  writes this gateway's seal key (<dataDir>/keys/seal.key) to FILE, wrapped under a passphrase
        (a JWE: PBES2-HS512+A256KW, ${'600,000'} PBKDF2 iterations, A256GCM). The passphrase needs at
        least ${MIN_PASSPHRASE_CHARS} characters. Keep FILE and the passphrase apart, off this machine.
import  restores the key from FILE, after checking that it opens this gateway's outbox; it refuses to
        replace a key already in place unless told with --replace (the old key is then kept beside it
        as seal.key.replaced-<time>). Run it with the gateway stopped.

The passphrase is read from the environment variable VAR (--passphrase-env VAR), or asked on the
terminal without echo. Exit 0 done · 1 refused or failed · 2 usage.`;

export interface KeysIo {
  out(s: string): void;
  err(s: string): void;
  loadConfig(file?: string): GatewayConfig;
  env?: Readonly<Record<string, string | undefined>>;
  /** Asks for a secret on the terminal without echo; absent when there is no terminal. */
  askSecret?(prompt: string): Promise<string>;
}

export interface KeysOptions {
  passphraseEnv?: string;
  replace: boolean;
  configFile?: string;
}

function fail(io: KeysIo, e: unknown): number {
  if (isGatewayError(e)) {
    io.err(`error ${e.code}: ${e.message}\n${ErrorCodes[e.code].action}`);
    return e.code === 'GW_USAGE' ? 2 : 1;
  }
  throw e;
}

async function passphrase(o: KeysOptions, io: KeysIo, confirm: boolean): Promise<string | number> {
  if (o.passphraseEnv) {
    const v = io.env?.[o.passphraseEnv];
    if (v === undefined) {
      io.err(`the environment variable ${o.passphraseEnv} (--passphrase-env) is not set`);
      return 2;
    }
    return v;
  }
  if (!io.askSecret) {
    io.err(
      `no passphrase: name an environment variable holding it with --passphrase-env VAR, or run in a terminal to be asked\n\n${KEYS_HELP}`,
    );
    return 2;
  }
  const p = await io.askSecret('Passphrase: ');
  if (confirm && (await io.askSecret('Passphrase again: ')) !== p) {
    io.err('the two passphrases differ; nothing was written');
    return 2;
  }
  return p;
}

export async function keys(positionals: string[], o: KeysOptions, io: KeysIo): Promise<number> {
  const [action, file, ...extra] = positionals;
  if ((action !== 'export' && action !== 'import') || !file || extra.length) {
    io.err(KEYS_HELP);
    return 2;
  }
  const paths = gatewayPaths(io.loadConfig(o.configFile));
  const keyFile = paths.keyFile;
  const outboxes = [paths.outboxFile, paths.outboundFile];
  try {
    return action === 'export' ? await exportKey(file, keyFile, o, io) : await importKey(file, keyFile, outboxes, o, io);
  } catch (e) {
    return fail(io, e);
  }
}

async function exportKey(file: string, keyFile: string, o: KeysOptions, io: KeysIo): Promise<number> {
  const k = readKeyFile(keyFile);
  if (k.state !== 'present') {
    io.err(
      `no usable seal key at ${keyFile} (${k.state === 'absent' ? 'missing' : k.problem}): use --config with this gateway's data directory`,
    );
    return 1;
  }
  if (existsSync(file)) {
    io.err(`${file} exists; export writes a new file only (move the old one away first)`);
    return 1;
  }
  const p = await passphrase(o, io, true);
  if (typeof p === 'number') return p;
  if (p.length < MIN_PASSPHRASE_CHARS) {
    io.err(`the passphrase must have at least ${MIN_PASSPHRASE_CHARS} characters; nothing was written`);
    return 2;
  }
  writeFileAtomic(file, Buffer.from(`${await wrapSealKey(k.key, p)}\n`));
  io.out(
    `seal key exported to ${file} (key check ${keyCheckValue(k.key).slice(0, 12)}); keep it and its passphrase apart, off this machine`,
  );
  return 0;
}

async function importKey(file: string, keyFile: string, outboxes: string[], o: KeysOptions, io: KeysIo): Promise<number> {
  let backup: string;
  try {
    backup = readFileSync(file, 'utf8');
  } catch (e) {
    io.err(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    return 1;
  }
  const p = await passphrase(o, io, false);
  if (typeof p === 'number') return p;
  const key = await unwrapSealKey(backup, p);
  const kcv = keyCheckValue(key);
  // the key must open what is queued here, before anything is written
  for (const box of outboxes) {
    const held = sealedDataIn(box);
    if (held.state === 'unreadable') {
      io.err(`warning: ${box} could not be read to check the key against it; the gateway checks again at start`);
      continue;
    }
    if (held.state !== 'rows') continue;
    const fits = held.keyCheck !== undefined ? keyCheckMatches(held.keyCheck, kcv) : held.sample !== undefined && opens(key, held.sample);
    if (!fits) {
      io.err(
        `error GW_KEY_IMPORT: the key in ${file} does not open the outbox ${box} (${held.rows} sealed row(s)): it is another gateway's key, or another key of this one. Nothing was written.`,
      );
      return 1;
    }
  }
  const current = readKeyFile(keyFile);
  if (current.state === 'present' && keyCheckMatches(keyCheckValue(current.key), kcv)) {
    io.out(`the key in ${file} is already in place at ${keyFile}; nothing to do`);
    return 0;
  }
  if (current.state !== 'absent') {
    if (!o.replace) {
      io.err(
        `error GW_KEY_IMPORT: a ${current.state === 'present' ? 'different' : 'damaged'} key is already at ${keyFile}; nothing was written. Add --replace to replace it (the old one is kept beside it).`,
      );
      return 1;
    }
    renameSync(keyFile, `${keyFile}.replaced-${new Date().toISOString().replace(/[-:.]/g, '')}`);
  }
  try {
    writeFileAtomic(keyFile, key);
  } catch (e) {
    io.err(
      `error GW_KEY_IMPORT: could not write ${keyFile} (${(e as NodeJS.ErrnoException).code ?? 'error'}); no key was written. Free disk space or fix the folder's permissions and import again.`,
    );
    return 1;
  }
  io.out(`seal key restored to ${keyFile} (key check ${kcv.slice(0, 12)})`);
  return 0;
}

export const keysCommand: CliCommand = {
  name: 'keys',
  synopsis: 'keys export|import FILE [--passphrase-env VAR] [--replace]',
  summary: 'Back up the seal key under a passphrase, or restore it (checked against the outbox).',
  help: KEYS_HELP,
  options: { 'passphrase-env': { type: 'string' }, replace: { type: 'boolean' } },
  run: ({ positionals, values, configFile }, io) =>
    keys(positionals, { passphraseEnv: values['passphrase-env'] as string | undefined, replace: Boolean(values.replace), configFile }, io),
};
