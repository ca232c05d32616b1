#!/usr/bin/env node
/**
 * `eyewear-gateway` — the command line. Exit codes (documented in README "CLI"):
 *   0 ok · 1 runtime failure · 2 usage error · 3 invalid config · 4 gateway not reachable · 5 preview found errors
 * `start` exits 1 when its data folder is another gateway's (GW_DATA_DIR_IN_USE) or when nothing could start
 * (no source and no admin API); `status` exits 4 too when what answers on the admin port is not this config's gateway.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, formatConfigError, loadConfig } from '../config/load.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { runCommand, type CliIo } from './cli-commands.ts';
import { askTerminal } from './cli-db.ts';
import { askHidden } from './cli-keys.ts';
import { ErrorCodes, isGatewayError } from './errors.ts';

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3, unreachable: 4, previewErrors: 5 } as const;

const io: CliIo = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
  readFile: (p) => readFileSync(p, 'utf8'),
  loadConfig: (file?: string): GatewayConfig => loadConfig({ file }),
  env: process.env,
  ...(process.stdin.isTTY ? { confirm: askTerminal, askSecret: askHidden } : {}),
};

// `… | head` closes stdout early: that is the reader's choice, not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

// no top-level await: the single executable is bundled as CommonJS
async function main(): Promise<void> {
  try {
    const code = await runCommand(process.argv.slice(2), io);
    if (code !== null) process.exitCode = code;
  } catch (e) {
    if (e instanceof ConfigError) { io.err(formatConfigError(e)); process.exitCode = EXIT.config; }
    else if (isGatewayError(e)) { io.err(`error ${e.code}: ${e.message}\nwhat to do: ${ErrorCodes[e.code].action}`); process.exitCode = EXIT.failure; }
    else { io.err(`error: ${(e as Error).message}`); process.exitCode = EXIT.failure; }
  }
}

void main();
