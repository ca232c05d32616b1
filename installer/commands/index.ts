/**
 * The commands installer/ adds to the CLI (bin/eyewear-gateway.js lists them after the core and
 * updater ones). One import and one entry per command file in this folder.
 */
import type { CliCommand } from '../../cli/command.ts';
import { createSetupCommand } from './setup.ts';
import { doctorCommand } from './doctor.ts';
import { installCommand, uninstallCommand } from './install.ts';
import { enrolCommand } from './enrol.ts';

export const installerCommands: readonly CliCommand[] = [
  createSetupCommand({ commands: () => installerCommands }),
  doctorCommand,
  installCommand,
  uninstallCommand,
  enrolCommand,
];
