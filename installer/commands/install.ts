/**
 * `install` and `uninstall`: the gateway as a service (systemd on Linux, WinSW on Windows). The
 * steps are planned in installer/install.ts; this file finds out what the machine has (root or
 * not, systemd running, what is installed already), asks before a purge, and reports each step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, posix, resolve, win32 } from 'node:path';
import { isSea } from 'node:sea';
import { type CliArgs, type CliCommand, type CliIo, EXIT } from '../../cli/command.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { GatewayError } from '../../gateway/errors.ts';
import {
  applyPlan,
  describeStep,
  type InstallPlan,
  LINUX_LAYOUT,
  noLoginShell,
  planLinuxInstall,
  planLinuxUninstall,
  planWindowsInstall,
  planWindowsUninstall,
  SERVICE_NAME,
  spawnRunner,
  systemdRunning,
  UNIT_NAME,
  windowsLayout,
} from '../install.ts';

const INSTALL_HELP = `eyewear-gateway install [--config FILE] [--exec FILE] [--root DIR] [--print] [--platform linux|win32] [--winsw FILE]

Installs the gateway as a service that starts at boot and is restarted when it fails. Run as root
(sudo) on Linux, from an elevated prompt ("Run as administrator") on Windows.

Linux (systemd): creates the system user ${LINUX_LAYOUT.user} (no login shell) if absent, copies the
executable to ${LINUX_LAYOUT.execPath}, installs the config as ${LINUX_LAYOUT.configPath} (root-owned,
0640, readable by the service's group), creates the data folder (gateway.dataDir, default
${LINUX_LAYOUT.dataDir}; it must be under /var/lib) 0700 owned by the user with its keys 0600, writes
${LINUX_LAYOUT.unitFile} (Type=notify with a watchdog, hardened), then runs systemctl daemon-reload
and systemctl enable --now. Each step is reported; each is safe to repeat (a re-install replaces the
unit and the executable, restarts the service, and keeps the config and the data).
Windows (WinSW): copies the executable and WinSW to %ProgramFiles%\\${SERVICE_NAME}, writes WinSW's
XML (LocalService, restart on failure) and an icacls script for %ProgramData%\\${SERVICE_NAME}
(config and data), runs the script, then WinSW install and start.

  --config FILE   the config to install: copied there, unless it is that file (the one \`setup\`
                  writes), which is used in place. Without it the installed one is kept, or a
                  default one written (\`eyewear-gateway setup\` fills it in). Secrets it names with
                  \${file:...} must be readable by the service user (setup puts them in the data folder).
  --exec FILE     the executable to install. Default: this program, when it is the single
                  executable. Run from the TypeScript sources (node bin/eyewear-gateway.js) there is
                  no executable to install: build it (npm run build:binary) and run
                  sudo dist/eyewear-gateway install, or pass --exec dist/eyewear-gateway.
  --root DIR      put the files under DIR (a package or an image being built): no user, no owners,
                  no systemctl, root not needed. The package's install script then creates the user
                  and runs systemctl daemon-reload and systemctl enable --now ${UNIT_NAME}.
  --print         print the service definition (Linux: the unit; Windows: WinSW's XML and the icacls
                  script) on stdout and the steps on stderr; nothing is installed.
  --platform P    with --print: the definition for linux or win32 instead of this system's.
  --winsw FILE    Windows: WinSW v3 (WinSW-x64.exe from its GitHub releases; check its SHA-256).
                  Default: WinSW-x64.exe beside the executable.`;

const UNINSTALL_HELP = `eyewear-gateway uninstall [--purge [--yes]] [--root DIR]

Stops and disables the service and removes it (Linux: systemctl disable --now, the unit, the
executable; Windows: WinSW stop and uninstall, the program folder). The data folder (the outbox with
records not yet delivered, the seal key) and the config are kept: a later install finds them.
  --purge   also delete the data folder, the config and (Linux) the service user. Asks first; the
            records still in the outbox are lost, so export the key first if in doubt
            (eyewear-gateway keys export). Without a terminal it refuses unless --yes is given.
  --yes     with --purge: do not ask (scripts).
  --root DIR  remove from a staging root (see install --help): no systemctl, root not needed.`;

type Platform = 'linux' | 'win32';

const refuse = (message: string) => new GatewayError('GW_INSTALL_REFUSED', message);

function platformOf(values: CliArgs['values']): Platform {
  const p = typeof values.platform === 'string' ? values.platform : process.platform;
  if (p !== 'linux' && p !== 'win32') {
    throw refuse(
      `install knows Linux (systemd) and Windows (WinSW); this is ${p}. Run the gateway with \`eyewear-gateway start --config FILE\` under this system's own supervisor`,
    );
  }
  if (p !== process.platform && values.print !== true) {
    throw refuse(`--platform ${p} can only be printed here (--print): installing for ${p} runs on ${p}`);
  }
  return p;
}

/** Root on Linux (uid 0); on Windows `net session` answers only in an elevated prompt. */
function privileged(platform: Platform): boolean {
  if (platform === 'linux') return process.getuid?.() === 0;
  return spawnSync('net', ['session'], { stdio: 'ignore', windowsHide: true }).status === 0;
}

function requirePrivilege(platform: Platform, command: string): void {
  if (privileged(platform)) return;
  throw refuse(
    platform === 'linux'
      ? `${command} changes system files and users, so it must run as root (uid ${process.getuid?.()} now): run \`sudo eyewear-gateway ${command}\` (or add --root DIR to stage the files, --print to see them)`
      : `${command} registers a Windows service, so it must run from an elevated prompt: right-click the terminal, "Run as administrator", and run it again (or --print to see the files)`,
  );
}

function requireSystemd(command: string): void {
  if (systemdRunning()) return;
  let pid1 = 'unknown';
  try {
    pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
  } catch {
    // no /proc: say unknown
  }
  throw refuse(
    `systemd is not running on this machine (PID 1 is ${pid1}, and /run/systemd/system does not exist), so there is no service manager to ${command} into. Stage the files with --root DIR (a package or an image), or run \`eyewear-gateway start --config FILE\` under the supervisor this machine has`,
  );
}

/** The executable to install: --exec, or this program when it is the single executable. */
function execSource(values: CliArgs['values'], platform: Platform): string {
  const given = typeof values.exec === 'string' ? resolve(values.exec) : isSea() ? process.execPath : undefined;
  if (given === undefined) {
    throw refuse(
      'this is the gateway run from its TypeScript sources (node bin/eyewear-gateway.js), not the single executable, so there is no executable to install: build it (npm run build:binary) and run `sudo dist/eyewear-gateway install`, or pass --exec dist/eyewear-gateway',
    );
  }
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(given);
  } catch (e) {
    throw refuse(`the executable to install, ${given}, cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!st.isFile()) throw refuse(`the executable to install, ${given}, is not a file`);
  if (platform === 'linux' && (st.mode & 0o111) === 0)
    throw refuse(`the executable to install, ${given}, is not executable (chmod 755 it)`);
  return given;
}

/** What `--print` names as the executable: --exec, this single executable, or what install will want. */
const printedExec = (values: CliArgs['values']) =>
  typeof values.exec === 'string'
    ? resolve(values.exec)
    : isSea()
      ? process.execPath
      : '<the single executable (dist/eyewear-gateway), or --exec FILE>';

interface Target {
  dataDir: string;
  configSource?: string;
  lowPort: boolean;
}

/** The data folder and ports from --config, else from the installed config, else the defaults. */
function target(args: CliArgs, io: CliIo, platform: Platform, installedConfig: string, defaultDataDir: string): Target {
  const file = args.configFile !== undefined ? resolve(args.configFile) : existsSync(installedConfig) ? installedConfig : undefined;
  if (file === undefined) return { dataDir: defaultDataDir, lowPort: false };
  const config: GatewayConfig = io.loadConfig(file);
  const dataDir = config.gateway.dataDir;
  const abs = platform === 'linux' ? posix.isAbsolute(dataDir) : win32.isAbsolute(dataDir) && /^([A-Za-z]:\\|\\\\)/.test(dataDir);
  if (!abs) {
    throw refuse(
      `gateway.dataDir in ${file} is ${JSON.stringify(dataDir)}, a path relative to wherever the service starts: set it to an absolute folder (${defaultDataDir}) and run install again`,
    );
  }
  const low = (config.hl7.enabled && config.hl7.port < 1024) || (config.admin.enabled && config.admin.port < 1024);
  return { dataDir, lowPort: low, ...(args.configFile !== undefined ? { configSource: file } : {}) };
}

function printPlan(plan: InstallPlan, io: CliIo): void {
  if (plan.definitions.length === 1) io.out(plan.definitions[0]?.content ?? '');
  else for (const d of plan.definitions) io.out(`==> ${d.path} <==\n${d.content}`);
  io.err(
    `install would (nothing was done):\n${plan.steps.map((s, i) => `${String(i + 1).padStart(2)}. ${describeStep(s, plan.platform)}`).join('\n')}`,
  );
}

/** Plans from the unit generator's refusals (a data folder outside /var/lib, a path with a space) are refusals. */
function plan<T>(make: () => T): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof GatewayError) throw e;
    throw refuse(`${(e as Error).message} (in the config's gateway.dataDir or the paths given)`);
  }
}

async function install(args: CliArgs, io: CliIo): Promise<number> {
  const { values } = args;
  const platform = platformOf(values);
  const print = values.print === true;
  const root = typeof values.root === 'string' ? resolve(values.root) : undefined;
  if (root !== undefined && platform !== 'linux')
    throw refuse('--root stages a Linux install (a package or an image); on Windows use --print');
  if (!print && root === undefined) requirePrivilege(platform, 'install');
  if (platform === 'linux') {
    if (!print && root === undefined) requireSystemd('install');
    const at = (p: string) => (root === undefined ? p : posix.join(root, p));
    const t = target(args, io, 'linux', at(LINUX_LAYOUT.configPath), LINUX_LAYOUT.dataDir);
    const exec = print ? printedExec(values) : execSource(values, 'linux');
    const user = root === undefined && spawnRunner(['id', '-u', LINUX_LAYOUT.user]).status === 0;
    const p = plan(() =>
      planLinuxInstall({
        execSource: exec,
        ...(t.configSource !== undefined ? { configSource: t.configSource } : {}),
        dataDir: t.dataDir,
        lowPort: t.lowPort,
        ...(root !== undefined ? { root } : {}),
        existing: { unit: existsSync(at(LINUX_LAYOUT.unitFile)), config: existsSync(at(LINUX_LAYOUT.configPath)), user },
        noLoginShell: noLoginShell(),
      }),
    );
    if (print) {
      printPlan(p, io);
      return EXIT.ok;
    }
    io.out(root === undefined ? `installing ${UNIT_NAME}:` : `staging ${UNIT_NAME} under ${root} (no user, owners or systemctl):`);
    applyPlan(p, { ...(root !== undefined ? { root } : {}), report: io.out });
    io.out(
      root === undefined
        ? `installed and running. Status: systemctl status ${SERVICE_NAME} · logs: journalctl -u ${SERVICE_NAME} -f · config: ${LINUX_LAYOUT.configPath} (then systemctl restart ${SERVICE_NAME}) · check: eyewear-gateway doctor`
        : `staged. The package's install script creates the user (useradd --system --user-group --no-create-home --home-dir ${t.dataDir} --shell /usr/sbin/nologin ${LINUX_LAYOUT.user}), gives ${t.dataDir} to it, and runs systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`,
    );
    return EXIT.ok;
  }
  // Windows
  const env = io.env ?? {};
  const W = windowsLayout(env);
  const t = target(args, io, 'win32', W.configPath, W.dataDir);
  const exec = print ? printedExec(values) : execSource(values, 'win32');
  const winsw = print
    ? typeof values.winsw === 'string'
      ? values.winsw
      : 'WinSW-x64.exe (beside the executable, or --winsw FILE)'
    : typeof values.winsw === 'string'
      ? resolve(values.winsw)
      : resolve(dirname(exec), 'WinSW-x64.exe');
  if (!print && !existsSync(winsw)) {
    throw refuse(
      `WinSW is not at ${winsw}: download WinSW v3 (WinSW-x64.exe) from its GitHub releases, check its SHA-256 against the release page, and put it beside the executable or pass --winsw FILE`,
    );
  }
  const p = plan(() =>
    planWindowsInstall({
      env,
      execSource: exec,
      winswSource: winsw,
      ...(t.configSource !== undefined ? { configSource: t.configSource } : {}),
      dataDir: t.dataDir,
      existing: { service: !print && existsSync(W.xmlPath), config: existsSync(W.configPath) },
    }),
  );
  if (print) {
    printPlan(p, io);
    return EXIT.ok;
  }
  io.out(`installing the ${SERVICE_NAME} Windows service:`);
  applyPlan(p, { report: io.out });
  io.out(`installed and running. Status: sc query ${SERVICE_NAME} · logs: ${t.dataDir}\\logs · check: eyewear-gateway doctor`);
  return EXIT.ok;
}

async function uninstall(args: CliArgs, io: CliIo): Promise<number> {
  const { values } = args;
  const platform = platformOf({ platform: process.platform, print: true });
  const root = typeof values.root === 'string' ? resolve(values.root) : undefined;
  const purge = values.purge === true;
  if (values.yes === true && !purge) throw refuse('--yes only confirms --purge; without --purge nothing is deleted that needs confirming');
  if (root !== undefined && platform !== 'linux') throw refuse('--root stages a Linux install; on Windows run uninstall itself');
  if (root === undefined) requirePrivilege(platform, 'uninstall');
  if (platform === 'linux' && root === undefined) requireSystemd('uninstall');
  const at = (p: string) => (root === undefined ? p : posix.join(root, p));

  // the data folder the installed config names (the one a purge deletes)
  const installedConfig = platform === 'linux' ? at(LINUX_LAYOUT.configPath) : windowsLayout(io.env ?? {}).configPath;
  let dataDir = platform === 'linux' ? LINUX_LAYOUT.dataDir : windowsLayout(io.env ?? {}).dataRoot;
  if (platform === 'linux' && existsSync(installedConfig)) {
    try {
      dataDir = io.loadConfig(installedConfig).gateway.dataDir;
    } catch (e) {
      if (purge) {
        throw refuse(
          `the installed config ${installedConfig} cannot be read (${(e as Error).message.split('\n')[0]}), so the data folder to purge is not known: fix the config, or uninstall without --purge and delete the data folder by hand`,
        );
      }
    }
  }
  if (purge && platform === 'linux' && !/^\/var\/lib\/[^/]+/.test(dataDir)) {
    throw refuse(`the data folder ${dataDir} is not under /var/lib, so --purge will not delete it; delete it by hand if that is meant`);
  }
  if (purge && values.yes !== true) {
    const what = platform === 'linux' ? `${at(dataDir)} and ${at(LINUX_LAYOUT.configDir)}` : dataDir;
    if (!io.confirm) {
      throw refuse(
        `--purge deletes ${what}: the outbox (any record not yet delivered to the cloud) and the seal key. There is no terminal to confirm on: add --yes to confirm it in a script`,
      );
    }
    const answer = (
      await io.confirm(
        `--purge deletes ${what}, with the outbox (records not yet delivered are lost) and the seal key. Type yes to delete them: `,
      )
    )
      .trim()
      .toLowerCase();
    if (answer !== 'yes') {
      io.err('not confirmed; nothing was changed');
      return EXIT.failure;
    }
  }
  const p =
    platform === 'linux'
      ? planLinuxUninstall({
          ...(root !== undefined ? { root } : {}),
          purge,
          dataDir,
          existing: {
            unit: existsSync(at(LINUX_LAYOUT.unitFile)),
            user: root === undefined && spawnRunner(['id', '-u', LINUX_LAYOUT.user]).status === 0,
          },
        })
      : planWindowsUninstall({ env: io.env ?? {}, purge, existing: { service: existsSync(windowsLayout(io.env ?? {}).xmlPath) } });
  io.out(root === undefined ? `uninstalling ${SERVICE_NAME}:` : `removing ${SERVICE_NAME} from ${root}:`);
  applyPlan(p, { ...(root !== undefined ? { root } : {}), report: io.out });
  io.out(purge ? 'uninstalled, data and config deleted.' : 'uninstalled; the data folder and the config were kept.');
  return EXIT.ok;
}

export const installCommand: CliCommand = {
  name: 'install',
  synopsis: 'install [--print] [--root DIR]',
  summary: 'Install the gateway as a service (systemd or WinSW; root / Administrator).',
  help: INSTALL_HELP,
  options: {
    print: { type: 'boolean' },
    root: { type: 'string' },
    exec: { type: 'string' },
    platform: { type: 'string' },
    winsw: { type: 'string' },
  },
  run: (args, io) => install(args, io),
};

export const uninstallCommand: CliCommand = {
  name: 'uninstall',
  synopsis: 'uninstall [--purge [--yes]]',
  summary: 'Stop and remove the service; keeps the data unless --purge.',
  help: UNINSTALL_HELP,
  options: { purge: { type: 'boolean' }, yes: { type: 'boolean' }, root: { type: 'string' } },
  run: (args, io) => uninstall(args, io),
};
