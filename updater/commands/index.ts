/** The commands updater/ adds to the CLI (bin/eyewear-gateway.js lists them after the core ones). */
import type { CliCommand } from '../../cli/command.ts';
import { updateCommand } from './update.ts';

export const updaterCommands: readonly CliCommand[] = [updateCommand];
