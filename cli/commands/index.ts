/** The commands `gateway`'s own code provides, in the usage table's order. installer/ and updater/ add theirs in bin/. */
import type { CliCommand } from '../command.ts';
import { checkConfigCommand, migrateConfigCommand } from './check-config.ts';
import { dbCommand } from './db.ts';
import { fhirCommand } from './fhir.ts';
import { apiCommand } from './api.ts';
import { keysCommand } from './keys.ts';
import { previewCommand } from './preview.ts';
import { reloadCommand } from './reload.ts';
import { sendCommand } from './send.ts';
import { startCommand } from './start.ts';
import { statusCommand } from './status.ts';
import { unsealCommand } from './unseal.ts';
import { versionCommand } from './version.ts';

export const coreCommands: readonly CliCommand[] = [
  startCommand,
  checkConfigCommand,
  migrateConfigCommand,
  statusCommand,
  reloadCommand,
  previewCommand,
  sendCommand,
  unsealCommand,
  keysCommand,
  dbCommand,
  fhirCommand,
  apiCommand,
  versionCommand,
];
