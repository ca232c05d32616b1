/** `version` (also `--version`): the gateway's version. */
import { gatewayVersion } from '../../gateway/version.ts';
import type { CliCommand } from '../command.ts';

export const versionCommand: CliCommand = {
  name: 'version',
  synopsis: 'version',
  summary: 'Print the version.',
  help: 'eyewear-gateway version\n\nPrints the version.',
  run: (_args, io) => {
    io.out(gatewayVersion());
    return 0;
  },
};
