/**
 * The gateway's systemd unit, generated as text so the installer writes exactly what the tests
 * check (and `systemd-analyze verify` accepts). Pure: no file system, no systemd calls.
 */

import { posix } from 'node:path';
export interface SystemdUnitOptions {
  /** Absolute path of the gateway executable. */
  execPath: string;
  /** Absolute path of the config file passed to `start --config`. */
  configPath: string;
  /** Dedicated system user (its own group of the same name), e.g. `eyewear-gateway`. */
  user: string;
  /** Absolute, under /var/lib: systemd creates it (StateDirectory=) owned by the user, mode 0700. */
  dataDir: string;
  description?: string;
  /** Listening on a port below 1024 needs CAP_NET_BIND_SERVICE; otherwise no capability at all. */
  lowPort?: boolean;
}

const STATE_ROOT = '/var/lib/';

/**
 * Rejected rather than quoted: systemd splits ExecStart= and ReadWritePaths= on whitespace and
 * treats quotes and backslashes as syntax, and one path rule for every directive is easier to
 * trust than per-directive quoting.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const UNSAFE_PATH = /[\s"'\\\u0000-\u001f\u007f]/;

function checkPath(what: string, path: string): void {
  if (!path.startsWith('/')) throw new Error(`systemd unit: ${what} must be an absolute path, got ${JSON.stringify(path)}`);
  if (UNSAFE_PATH.test(path)) {
    throw new Error(
      `systemd unit: ${what} ${JSON.stringify(path)} contains whitespace, a quote, a backslash or a control character; install to a path without them`,
    );
  }
  if (path.split('/').some((seg) => seg === '.' || seg === '..')) {
    throw new Error(`systemd unit: ${what} ${JSON.stringify(path)} must not contain "." or ".." segments`);
  }
}

/** `%` starts a specifier in every directive used here; `$` expands a variable in ExecStart= only. */
const specifiers = (s: string) => s.replaceAll('%', '%%');
const execArg = (s: string) => specifiers(s).replaceAll('$', () => '$$');

export function systemdUnit(o: SystemdUnitOptions): string {
  checkPath('execPath', o.execPath);
  checkPath('configPath', o.configPath);
  checkPath('dataDir', o.dataDir);
  const dataDir = o.dataDir.replace(/\/+$/, '');
  if (!dataDir.startsWith(STATE_ROOT) || dataDir.length === STATE_ROOT.length) {
    throw new Error(`systemd unit: dataDir must be a directory under /var/lib (StateDirectory=), got ${JSON.stringify(o.dataDir)}`);
  }
  // systemd's own rule for user names it accepts in User= without warnings.
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(o.user)) {
    throw new Error(
      `systemd unit: user ${JSON.stringify(o.user)} is not a valid system user name ([a-z_][a-z0-9_-]*, at most 31 characters)`,
    );
  }
  const description = (o.description ?? 'eyewear-ML edge gateway').replace(/[\r\n]+/g, ' ');
  const stateDirectory = dataDir.slice(STATE_ROOT.length);

  return [
    '[Unit]',
    `Description=${specifiers(description)}`,
    'After=network-online.target',
    'Wants=network-online.target',
    // Ten starts in five minutes, then stop retrying and leave it failed for someone to look at.
    // systemd counts every start, an update's too: a good release costs one (exit 75), a failed
    // gate two, a release that cannot start three (updater/README.md), so five left a technician
    // who tried two releases in a row with a failed unit and the broken file in place.
    'StartLimitIntervalSec=300',
    'StartLimitBurst=10',
    '',
    '[Service]',
    'Type=notify',
    // The ready/watchdog notifications may come from a helper process, not only the main PID.
    'NotifyAccess=all',
    'WatchdogSec=60',
    `ExecStart=${execArg(o.execPath)} start --config ${execArg(o.configPath)}`,
    'Restart=on-failure',
    'RestartSec=5',
    // exit 75: an update put the new executable in place and asks to be started again (updater/switch-over.ts restart mode)
    'RestartForceExitStatus=75',
    'SuccessExitStatus=75',
    `User=${o.user}`,
    `Group=${o.user}`,
    `StateDirectory=${specifiers(stateDirectory)}`,
    'StateDirectoryMode=0700',
    // the program folder too: a signed update replaces the executable there (and keeps the previous one beside it)
    `ReadWritePaths=${specifiers(dataDir)} ${specifiers(posix.dirname(o.execPath))}`,
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'SystemCallArchitectures=native',
    `CapabilityBoundingSet=${o.lowPort ? 'CAP_NET_BIND_SERVICE' : ''}`,
    ...(o.lowPort ? ['AmbientCapabilities=CAP_NET_BIND_SERVICE'] : []),
    "# MemoryDenyWriteExecute is deliberately absent: V8's JIT needs writable+executable memory.",
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
