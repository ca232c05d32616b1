/** The config, loaded and validated exactly as `check-config` and `start` load it (config/load.ts). */
import { formatConfigError, ConfigError } from '../../../config/load.ts';
import { LINUX_LAYOUT, windowsLayout } from '../../install.ts';
import type { DoctorCheck } from '../check.ts';

export const configCheck: DoctorCheck = {
  id: 'config',
  async run(ctx) {
    const e = ctx.configError;
    if (e) {
      return [
        {
          name: 'config',
          status: 'fail',
          evidence: formatConfigError(new ConfigError(e.code as ConfigError['code'], e.message, e.problems)),
          todo:
            e.code === 'GW_SECRET_MISSING'
              ? 'provide the secret the config names (the variable or file it references), then run doctor again; check-config --offline checks the rest'
              : `fix every field listed (eyewear-gateway check-config ${ctx.configFile ?? 'FILE'} shows the same), then run doctor again`,
          data: { code: e.code, problems: e.problems },
        },
      ];
    }
    const c = ctx.config!;
    const summary = `sink ${c.relay.sink}, MLLP ${c.hl7.enabled ? `${c.hl7.host}:${c.hl7.port}` : 'off'}, admin ${c.admin.enabled ? `${c.admin.host}:${c.admin.port}` : 'off'}, ${c.databases.length + c.files.length + c.fhir.length + c.apis.length} other source(s), data ${ctx.paths!.dataDir}`;
    if (ctx.configFile === undefined) {
      return [
        {
          name: 'config',
          status: 'warn',
          evidence: `no --config given: the embedded defaults were checked (${summary})`,
          todo: `pass the config file the service runs with: eyewear-gateway doctor --config ${ctx.platform === 'win32' ? windowsLayout(ctx.env).configPath : LINUX_LAYOUT.configPath} (where install puts it)`,
        },
      ];
    }
    if (ctx.configWarnings.length) {
      return [
        {
          name: 'config',
          status: 'warn',
          evidence: `${ctx.configFile}: valid, with ${ctx.configWarnings.length} warning(s): ${ctx.configWarnings.map((w) => `${w.path}: ${w.found}`).join('; ')} (${summary})`,
          todo: ctx.configWarnings.map((w) => w.todo).find(Boolean) ?? `eyewear-gateway migrate-config ${ctx.configFile}`,
        },
      ];
    }
    return [{ name: 'config', status: 'pass', evidence: `${ctx.configFile}: valid (${summary})` }];
  },
};
