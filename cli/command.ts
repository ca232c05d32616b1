/**
 * The contract every `eyewear-gateway` command implements. A command is one file (cli/commands/,
 * or installer/ and updater/ for theirs) exporting a `CliCommand`; `bin/eyewear-gateway.js` lists
 * them and cli/registry.ts builds the usage text, the parsing and the dispatch from that list.
 */
import type { ParseArgsOptionsConfig } from 'node:util';
import type { GatewayConfig } from '../config/schema.ts';

/** Exit codes (documented in docs/operating.md "CLI reference"). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  unreachable: 4,
  previewErrors: 5,
  doctorWarnings: 6,
  doctorFailures: 7,
} as const;

/** What a command reaches the world through: the real process in cli/main.ts, a fake in tests. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  readFile(path: string): string;
  loadConfig(file?: string): GatewayConfig;
  /** Asks the technician (consent prompts); absent when there is no terminal. */
  confirm?(question: string): Promise<string>;
  /** Asks for a secret without echo (key passphrases); absent when there is no terminal. */
  askSecret?(prompt: string): Promise<string>;
  /** The environment (`--passphrase-env VAR` reads VAR here). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A command's parsed arguments: positionals, its options' values, and `--config`/`-c` if given. */
export interface CliArgs {
  readonly positionals: string[];
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly configFile?: string;
}

export interface CliCommand {
  /** The word after `eyewear-gateway`. */
  readonly name: string;
  /** The usage table's left column, e.g. `start [--config FILE]`. */
  readonly synopsis: string;
  /** The usage table's right column; several lines allowed (`\n`). */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  /** This command's node:util parseArgs options, beside the common `help`/`-h` and `config`/`-c`. */
  readonly options?: ParseArgsOptionsConfig;
  /** The exit code, or null when the command keeps running (start: until a signal). */
  run(args: CliArgs, io: CliIo): number | null | Promise<number | null>;
}
