/** The CLI for tests and other programs: the core commands run in-process, with an injected `CliIo`. */
import type { CliIo } from './command.ts';
import { coreCommands } from './commands/index.ts';
import { runCli } from './registry.ts';

export type { CliArgs, CliCommand, CliIo } from './command.ts';
export { EXIT } from './command.ts';
export { coreCommands } from './commands/index.ts';
export { runCli, usageOf } from './registry.ts';
export { adapterLines, ownGatewayStatus } from './commands/status.ts';

/** Runs one command line (without `node` and the script) and returns its exit code, or null for `start`. */
export function runCommand(argv: readonly string[], io: CliIo): Promise<number | null> {
  return runCli(argv, io, coreCommands);
}
