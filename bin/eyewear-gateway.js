#!/usr/bin/env node
// `eyewear-gateway`: the command list assembled here. Node 24 runs the TypeScript sources directly
// (type stripping); installer/build-binary.ts bundles this file as the single executable's entry.
// installer/ and updater/ add their commands (install, doctor, update) to this list, one import each.
import { main } from '../cli/main.ts';
import { coreCommands } from '../cli/commands/index.ts';
import { updaterCommands } from '../updater/commands/index.ts';
import { installerCommands } from '../installer/commands/index.ts';

main([...coreCommands, ...updaterCommands, ...installerCommands]);
