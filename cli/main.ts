/**
 * The process wiring of `eyewear-gateway`: the real stdout/stderr/files/terminal as `CliIo`, a
 * closed pipe taken as the reader's choice, and an error thrown by a command turned into its exit
 * code (a config error 3, anything else 1). Exit codes:
 *   0 ok · 1 runtime failure · 2 usage error · 3 invalid config · 4 gateway not reachable · 5 preview found errors
 * `start` exits 1 when its data folder is another gateway's (GW_DATA_DIR_IN_USE) or when nothing could start
 * (no source and no admin API); `status` and `send` exit 4 too when what answers is not this config's gateway.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, formatConfigError, loadConfig } from '../config/load.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { ErrorCodes, isGatewayError } from '../gateway/errors.ts';
import { EXIT, type CliCommand, type CliIo } from './command.ts';
import { runCli } from './registry.ts';
import { askHidden, askTerminal } from './terminal.ts';

/** Runs the command line of this process with these commands (bin/eyewear-gateway.js lists them). */
export function main(commands: readonly CliCommand[]): void {
  const io: CliIo = {
    out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
    readFile: (p) => readFileSync(p, 'utf8'),
    // an old config upgraded in memory is said on the terminal, with what to do, not as a Node process warning
    loadConfig: (file?: string): GatewayConfig =>
      loadConfig({ file, onWarning: (w) => io.err(`warning ${w.path}: ${w.found}${w.todo ? `\n  what to do: ${w.todo}` : ''}`) }),
    env: process.env,
    ...(process.stdin.isTTY ? { confirm: askTerminal, askSecret: askHidden } : {}),
  };

  // `… | head` closes stdout early: that is the reader's choice, not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });

  // no top-level await: the single executable is bundled as CommonJS
  runCli(process.argv.slice(2), io, commands).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof ConfigError) {
        io.err(formatConfigError(e));
        process.exitCode = EXIT.config;
      } else if (isGatewayError(e)) {
        io.err(`error ${e.code}: ${e.message}\nwhat to do: ${ErrorCodes[e.code].action}`);
        process.exitCode = EXIT.failure;
      } else {
        io.err(`error: ${(e as Error).message}`);
        process.exitCode = EXIT.failure;
      }
    },
  );
}
