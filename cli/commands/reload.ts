/** `reload`: the running gateway reads its config file again and applies what it can while running. */
import type { CliCommand, CliIo } from '../command.ts';
import { ownGatewayStatus } from './status.ts';

const RELOAD_HELP = `eyewear-gateway reload [--config FILE]

Asks the running gateway (started with --config FILE) to read FILE again: validate → plan → apply.
A file that does not validate changes nothing: every bad field is listed (exit 3). Otherwise it
prints what was applied at once (log.level), which sources were started again with their new
settings, added or stopped, and which fields wait for a restart (exit 0). Check the file first with
eyewear-gateway check-config FILE. Exit 4 when this config's gateway cannot be reached.`;

interface ReloadAnswer {
  applied?: { live: string[]; adapters: { add: string[]; remove: string[]; recreate: string[] }; restart: string[] };
  waitingForRestart?: string[];
  code?: string;
  message?: string;
  action?: string;
  problems?: Array<{ path: string; expected: string; found: string; todo?: string }>;
}

async function reload(configFile: string | undefined, io: CliIo): Promise<number> {
  const config = io.loadConfig(configFile);
  // the same checks as status: this config's gateway, not another program or gateway on the port
  const own = await ownGatewayStatus(config, configFile, io);
  if ('exit' in own) {
    // the file's admin address is the new one: a gateway still running on the old one is not found
    io.err(
      'If FILE changes admin.host or admin.port (they need a restart), the running gateway still listens where it started: put the old values back to reload the rest, or restart the gateway to apply all of it.',
    );
    return own.exit;
  }
  const { base, token } = own;
  let res: Response;
  try {
    res = await fetch(`${base}/config/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (e) {
    io.err(`gateway not reachable at ${base}: ${(e as Error).message}`);
    return 4;
  }
  const a = (await res.json().catch(() => ({}))) as ReloadAnswer;
  if (res.status === 422) {
    io.err(
      `the config file does not validate; nothing was changed:\n${(a.problems ?? []).map((p) => `  ${p.path}: expected ${p.expected}, found ${p.found}${p.todo ? `\n    what to do: ${p.todo}` : ''}`).join('\n')}`,
    );
    return 3;
  }
  if (!res.ok || !a.applied) {
    io.err(
      `reload refused (HTTP ${res.status}${a.code ? `, ${a.code}` : ''}): ${a.message ?? 'no reason given'}${a.action ? `\nwhat to do: ${a.action}` : ''}`,
    );
    return 1;
  }
  const { live, adapters, restart } = a.applied;
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');
  io.out(
    [
      'config reloaded',
      `  applied now: ${list(live)}`,
      `  sources started again: ${list(adapters.recreate)}; added: ${list(adapters.add)}; stopped: ${list(adapters.remove)}`,
      `  waiting for a restart: ${list(a.waitingForRestart ?? restart)}`,
    ].join('\n'),
  );
  return 0;
}

export const reloadCommand: CliCommand = {
  name: 'reload',
  synopsis: 'reload [--config FILE]',
  summary: 'Make the running gateway read its config file again (what needs a restart says so).',
  help: RELOAD_HELP,
  run: ({ configFile }, io) => reload(configFile, io),
};
