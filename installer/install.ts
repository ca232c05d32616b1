/**
 * Installing the gateway as a service, as a plan of steps: planned first (pure, from the options
 * and what is already on the machine), then applied one step at a time with each step reported,
 * so `--print` and the tests see exactly what a real install would do, and a failed step says
 * which steps were done before it. Every step is safe to repeat (a re-install replaces the unit
 * and the executable, keeps the config and the data).
 *
 * Linux: the systemd unit (service/systemd-unit.ts), a dedicated system user with no login shell,
 * the executable copied to /opt/eyewear-gateway, the config in /etc/eyewear-gateway (root-owned,
 * readable by the service's group), the data folder 0700 and its keys 0600 owned by the user,
 * `systemctl daemon-reload` and `enable --now`. With a staging root (`--root`, for packagers and
 * tests) the same files land under it and no user, owner or systemctl is touched.
 * Windows: WinSW's XML and the icacls script (service/windows-service.ts), then WinSW install/start.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, win32 } from 'node:path';
import { GatewayError } from '../gateway/errors.ts';
import { systemdUnit } from './service/systemd-unit.ts';
import { windowsAclScript, windowsProgramAcl, winswServiceXml } from './service/windows-service.ts';

export const SERVICE_NAME = 'eyewear-gateway';
export const UNIT_NAME = `${SERVICE_NAME}.service`;

/** Where a Linux install puts things (the unit names these paths, never the staging root). */
export const LINUX_LAYOUT = {
  unitFile: `/etc/systemd/system/${UNIT_NAME}`,
  programDir: `/opt/${SERVICE_NAME}`,
  execPath: `/opt/${SERVICE_NAME}/${SERVICE_NAME}`,
  configDir: `/etc/${SERVICE_NAME}`,
  configPath: `/etc/${SERVICE_NAME}/config.yaml`,
  dataDir: `/var/lib/${SERVICE_NAME}`,
  user: SERVICE_NAME,
} as const;

/** Who owns a file or folder once installed: root, or root with the service's group, or the service user. */
export type Owner = 'root' | 'root:service' | 'service';

/** One step of a plan, in the order it runs. */
export type InstallStep =
  | { kind: 'user'; name: string; argv: string[] }
  | { kind: 'dir'; path: string; mode: number; owner: Owner }
  | { kind: 'file'; path: string; content: string; mode: number; owner: Owner; what: string }
  | { kind: 'copy'; path: string; from: string; mode: number; owner: Owner; what: string }
  /** Owner and mode of what is already in the data folder (keys 0600), recursively. */
  | { kind: 'secure-data'; path: string }
  | { kind: 'remove'; path: string; what: string }
  | { kind: 'run'; argv: string[]; why: string /** A failure does not stop the plan (said, then the next step). */; mayFail?: boolean }
  | { kind: 'keep'; path: string; what: string }
  /** An existing file kept, its mode and owner set (a config `setup` wrote 0600 must be readable by the service). */
  | { kind: 'perm'; path: string; mode: number; owner: Owner; what: string };

export interface InstallPlan {
  platform: 'linux' | 'win32';
  /** The service definition files as they will be written (what `--print` shows). */
  definitions: { path: string; content: string }[];
  steps: InstallStep[];
}

const DEFAULT_CONFIG = (dataDir: string) =>
  `# Written by \`eyewear-gateway install\`. \`eyewear-gateway setup\` fills in the sources and the cloud;
# edit, then \`eyewear-gateway check-config FILE\` and restart the service.
gateway:
  dataDir: ${JSON.stringify(dataDir)}
`;

export interface LinuxPlanOptions {
  /** The executable to install (the running SEA binary, or --exec). */
  execSource: string;
  /** The config to install (copied to /etc/eyewear-gateway/config.yaml, the file `setup` writes); absent: keep the one there, or write a default. */
  configSource?: string;
  /** Its gateway.dataDir, absolute (already validated by the caller's loadConfig). */
  dataDir: string;
  /** Listens below port 1024 (CAP_NET_BIND_SERVICE). */
  lowPort: boolean;
  /** A staging root: files only, no user, owners or systemctl. */
  root?: string;
  /** What is there already (the caller looks; tests say). */
  existing: { unit: boolean; config: boolean; user: boolean };
  /** The login shell that refuses a login (/usr/sbin/nologin where it exists). */
  noLoginShell: string;
}

/** The unit for these options (throws the unit generator's message on a path it refuses). */
export function linuxUnit(o: Pick<LinuxPlanOptions, 'dataDir' | 'lowPort'>): string {
  return systemdUnit({
    execPath: LINUX_LAYOUT.execPath,
    configPath: LINUX_LAYOUT.configPath,
    user: LINUX_LAYOUT.user,
    dataDir: o.dataDir,
    lowPort: o.lowPort,
  });
}

export function planLinuxInstall(o: LinuxPlanOptions): InstallPlan {
  const L = LINUX_LAYOUT;
  const staged = o.root !== undefined;
  const unit = linuxUnit(o);
  const steps: InstallStep[] = [];
  if (!staged) {
    steps.push(
      o.existing.user
        ? { kind: 'keep', path: L.user, what: `system user ${L.user} (exists)` }
        : {
            kind: 'user',
            name: L.user,
            // a system account with its own group, no home made, no login shell
            argv: [
              'useradd',
              '--system',
              '--user-group',
              '--no-create-home',
              '--home-dir',
              o.dataDir,
              '--shell',
              o.noLoginShell,
              '--comment',
              'eyewear-ML edge gateway',
              L.user,
            ],
          },
    );
  }
  steps.push(
    // the service account's, so a signed update can replace the executable (updater/; the unit's ReadWritePaths names it)
    { kind: 'dir', path: L.programDir, mode: 0o755, owner: 'service' },
    { kind: 'copy', path: L.execPath, from: o.execSource, mode: 0o755, owner: 'service', what: 'the executable' },
    { kind: 'dir', path: L.configDir, mode: 0o750, owner: 'root:service' },
  );
  if (o.configSource !== undefined && o.configSource !== L.configPath) {
    steps.push({ kind: 'copy', path: L.configPath, from: o.configSource, mode: 0o640, owner: 'root:service', what: 'the config' });
  } else if (o.existing.config) {
    steps.push({ kind: 'perm', path: L.configPath, mode: 0o640, owner: 'root:service', what: 'the config (exists; content not changed)' });
  } else {
    steps.push({
      kind: 'file',
      path: L.configPath,
      content: DEFAULT_CONFIG(o.dataDir),
      mode: 0o640,
      owner: 'root:service',
      what: 'a default config',
    });
  }
  steps.push(
    { kind: 'dir', path: o.dataDir, mode: 0o700, owner: 'service' },
    { kind: 'secure-data', path: o.dataDir },
    {
      kind: 'file',
      path: L.unitFile,
      content: unit,
      mode: 0o644,
      owner: 'root',
      what: `the systemd unit${o.existing.unit ? ' (replacing the one there)' : ''}`,
    },
  );
  if (!staged) {
    steps.push(
      { kind: 'run', argv: ['systemctl', 'daemon-reload'], why: 'systemd reads the unit' },
      { kind: 'run', argv: ['systemctl', 'enable', '--now', UNIT_NAME], why: 'start now and at every boot' },
    );
    // a re-install: the running service picks up the new unit and executable
    if (o.existing.unit)
      steps.push({ kind: 'run', argv: ['systemctl', 'restart', UNIT_NAME], why: 'the new unit and executable take effect' });
  }
  return { platform: 'linux', definitions: [{ path: L.unitFile, content: unit }], steps };
}

export interface UninstallOptions {
  root?: string;
  purge: boolean;
  dataDir: string;
  existing: { unit: boolean; user: boolean };
}

export function planLinuxUninstall(o: UninstallOptions): InstallPlan {
  const L = LINUX_LAYOUT;
  const staged = o.root !== undefined;
  const steps: InstallStep[] = [];
  if (!staged && o.existing.unit) {
    steps.push(
      { kind: 'run', argv: ['systemctl', 'disable', '--now', UNIT_NAME], why: 'stop it and no longer start it at boot' },
      // while the unit is still loaded (afterwards systemd answers "not loaded")
      { kind: 'run', argv: ['systemctl', 'reset-failed', UNIT_NAME], why: 'no failed state left behind', mayFail: true },
    );
  }
  steps.push({ kind: 'remove', path: L.unitFile, what: 'the systemd unit' });
  if (!staged) steps.push({ kind: 'run', argv: ['systemctl', 'daemon-reload'], why: 'systemd forgets the unit' });
  steps.push({ kind: 'remove', path: L.programDir, what: 'the executable' });
  if (o.purge) {
    steps.push({ kind: 'remove', path: o.dataDir, what: 'the data folder (outbox, keys, dead letters)' });
    steps.push({ kind: 'remove', path: L.configDir, what: 'the config' });
    if (!staged && o.existing.user) steps.push({ kind: 'run', argv: ['userdel', L.user], why: 'the service user goes too' });
  } else {
    steps.push({ kind: 'keep', path: o.dataDir, what: 'the data folder (outbox, keys): `uninstall --purge` deletes it' });
    steps.push({ kind: 'keep', path: L.configDir, what: 'the config' });
  }
  return { platform: 'linux', definitions: [], steps };
}

/** Windows: where things go (from %ProgramFiles% and %ProgramData%) and the WinSW files beside the executable. */
export function windowsLayout(env: Readonly<Record<string, string | undefined>>) {
  const programFiles = env.ProgramFiles || 'C:\\Program Files';
  const programData = env.ProgramData || 'C:\\ProgramData';
  const programDir = win32.join(programFiles, SERVICE_NAME);
  const dataRoot = win32.join(programData, SERVICE_NAME);
  return {
    programDir,
    execPath: win32.join(programDir, `${SERVICE_NAME}.exe`),
    // WinSW reads the XML with its own base name, beside it
    winswPath: win32.join(programDir, `${SERVICE_NAME}-service.exe`),
    xmlPath: win32.join(programDir, `${SERVICE_NAME}-service.xml`),
    aclScript: win32.join(programDir, `${SERVICE_NAME}-acl.cmd`),
    dataRoot,
    configPath: win32.join(dataRoot, 'config.yaml'),
    dataDir: win32.join(dataRoot, 'data'),
    account: 'NT AUTHORITY\\LocalService',
  };
}

export interface WindowsPlanOptions {
  env: Readonly<Record<string, string | undefined>>;
  execSource: string;
  winswSource: string;
  configSource?: string;
  /** The config's gateway.dataDir when a config is given (absolute), else the default under %ProgramData%. */
  dataDir?: string;
  existing: { service: boolean; config: boolean };
}

/** The XML and the ACL script for these options (the ACL covers the folder holding the config, and the data folder if elsewhere). */
export function windowsDefinitions(o: Pick<WindowsPlanOptions, 'env' | 'dataDir'>) {
  const W = windowsLayout(o.env);
  const dataDir = o.dataDir ?? W.dataDir;
  const xml = winswServiceXml({ exePath: W.execPath, configPath: W.configPath, dataDir, serviceId: SERVICE_NAME, account: W.account });
  const base = windowsAclScript({ dataDir: W.dataRoot, account: W.account });
  // a data folder outside the config's folder gets the same grants (its script's lines after `@echo off`)
  const inside = dataDir.toLowerCase().startsWith(`${W.dataRoot.toLowerCase()}\\`);
  const data = inside ? base : base + windowsAclScript({ dataDir, account: W.account }).split('\r\n').slice(1).join('\r\n');
  // and the program folder: a signed update replaces the .exe there (updater/)
  const acl = data + windowsProgramAcl({ programDir: W.programDir, account: W.account });
  return { layout: W, dataDir, xml, acl };
}

export function planWindowsInstall(o: WindowsPlanOptions): InstallPlan {
  const { layout: W, dataDir, xml, acl } = windowsDefinitions(o);
  const steps: InstallStep[] = [
    { kind: 'dir', path: W.programDir, mode: 0o755, owner: 'root' },
    { kind: 'copy', path: W.execPath, from: o.execSource, mode: 0o755, owner: 'root', what: 'the executable' },
    { kind: 'copy', path: W.winswPath, from: o.winswSource, mode: 0o755, owner: 'root', what: 'WinSW (the service wrapper)' },
    { kind: 'file', path: W.xmlPath, content: xml, mode: 0o644, owner: 'root', what: 'the WinSW service definition' },
    { kind: 'file', path: W.aclScript, content: acl, mode: 0o644, owner: 'root', what: 'the ACL script' },
    { kind: 'dir', path: W.dataRoot, mode: 0o700, owner: 'root' },
  ];
  if (o.configSource !== undefined && o.configSource !== W.configPath) {
    steps.push({ kind: 'copy', path: W.configPath, from: o.configSource, mode: 0o600, owner: 'root', what: 'the config' });
  } else if (o.existing.config) steps.push({ kind: 'keep', path: W.configPath, what: 'the config (exists; not changed)' });
  else
    steps.push({
      kind: 'file',
      path: W.configPath,
      content: DEFAULT_CONFIG(dataDir),
      mode: 0o600,
      owner: 'root',
      what: 'a default config',
    });
  steps.push({ kind: 'dir', path: dataDir, mode: 0o700, owner: 'root' });
  steps.push({
    kind: 'run',
    argv: ['cmd.exe', '/d', '/c', W.aclScript],
    why: `only ${W.account}, Administrators and SYSTEM may open the data`,
  });
  if (o.existing.service) {
    steps.push(
      { kind: 'run', argv: [W.winswPath, 'refresh'], why: 'the service takes the new definition' },
      { kind: 'run', argv: [W.winswPath, 'restart'], why: 'the new executable takes effect' },
    );
  } else {
    steps.push(
      {
        kind: 'run',
        argv: [W.winswPath, 'install'],
        why: `register the ${SERVICE_NAME} service (automatic, delayed start, restart on failure)`,
      },
      { kind: 'run', argv: [W.winswPath, 'start'], why: 'start it now' },
    );
  }
  return {
    platform: 'win32',
    definitions: [
      { path: W.xmlPath, content: xml },
      { path: W.aclScript, content: acl },
    ],
    steps,
  };
}

export function planWindowsUninstall(o: {
  env: Readonly<Record<string, string | undefined>>;
  purge: boolean;
  existing: { service: boolean };
}): InstallPlan {
  const W = windowsLayout(o.env);
  const steps: InstallStep[] = [];
  if (o.existing.service) {
    steps.push(
      { kind: 'run', argv: [W.winswPath, 'stop'], why: 'stop the service', mayFail: true },
      { kind: 'run', argv: [W.winswPath, 'uninstall'], why: 'unregister the service' },
    );
  }
  steps.push({ kind: 'remove', path: W.programDir, what: 'the executable, WinSW and its definition' });
  steps.push(
    o.purge
      ? { kind: 'remove', path: W.dataRoot, what: 'the config and the data folder (outbox, keys)' }
      : { kind: 'keep', path: W.dataRoot, what: 'the config and the data folder: `uninstall --purge` deletes them' },
  );
  return { platform: 'win32', definitions: [], steps };
}

/** Runs a program; the real one is spawnSync (a test passes a recorder only where the program cannot run). */
export type Runner = (argv: string[]) => { status: number | null; output: string };

export const spawnRunner: Runner = (argv) => {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000 });
  if (r.error) return { status: null, output: (r.error as NodeJS.ErrnoException).code ?? r.error.message };
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
};

export interface ApplyOptions {
  /** Staging root every path is put under (owners are then set only when `serviceIds` is given). */
  root?: string;
  run?: Runner;
  /**
   * The service user's uid and gid. Default: looked up with `id` once the user exists. Given with a
   * staging root (a package built as root, a test), the staged files get the owners a real install gives.
   */
  serviceIds?: { uid: number; gid: number };
  /** Each step as done: `done` or `kept` lines, in order. */
  report: (line: string) => void;
}

const octal = (m: number) => `0${m.toString(8)}`;

/** The service user's uid and gid (`id`), once it exists. */
function serviceIds(run: Runner, user: string): { uid: number; gid: number } {
  const u = run(['id', '-u', user]);
  const g = run(['id', '-g', user]);
  const uid = Number(u.output);
  const gid = Number(g.output);
  if (u.status !== 0 || g.status !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`cannot find the user ${user}'s uid and gid (id: ${u.output || g.output})`);
  }
  return { uid, gid };
}

/** Applies the plan in order; a step that fails throws GW_INSTALL_FAILED naming it and the steps done before it. */
export function applyPlan(plan: InstallPlan, o: ApplyOptions): void {
  const run = o.run ?? spawnRunner;
  const staged = o.root !== undefined;
  const at = (p: string) => (o.root === undefined ? p : join(o.root, p));
  const done: string[] = [];
  let ids = o.serviceIds;
  // owners are set on a real Linux install, and in a staging root only when told whose they are
  const owning = plan.platform === 'linux' && (!staged || o.serviceIds !== undefined);
  const own = (path: string, owner: Owner) => {
    if (!owning) return;
    ids ??= serviceIds(run, LINUX_LAYOUT.user);
    lchownSync(path, 0, owner === 'root' ? 0 : ids.gid);
    if (owner === 'service') lchownSync(path, ids.uid, ids.gid);
  };
  const ownerText = (owner: Owner) =>
    !owning ? '' : owner === 'root' ? ', root' : owner === 'root:service' ? `, root:${LINUX_LAYOUT.user}` : `, ${LINUX_LAYOUT.user}`;
  const say = (line: string) => {
    done.push(line);
    o.report(`${String(done.length).padStart(2)}. ${line}`);
  };
  for (const step of plan.steps) {
    try {
      switch (step.kind) {
        case 'user': {
          const r = run(step.argv);
          if (r.status !== 0) throw new Error(`useradd exited ${r.status ?? 'without starting'}: ${r.output}`);
          ids = serviceIds(run, step.name);
          say(`created system user ${step.name} (uid ${ids.uid}): ${step.argv.join(' ')}`);
          break;
        }
        case 'dir': {
          const p = at(step.path);
          mkdirSync(p, { recursive: true, mode: step.mode });
          chmodSync(p, step.mode);
          own(p, step.owner);
          say(`folder ${p} (${octal(step.mode)}${ownerText(step.owner)})`);
          break;
        }
        case 'file':
        case 'copy': {
          const p = at(step.path);
          // beside it first, then renamed over: a reader (systemd, a running service's next start) sees the old file or the new one
          const tmp = `${p}.installing`;
          // /etc/systemd/system is there on a real system, not always in a staging root
          mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
          if (step.kind === 'file') writeFileSync(tmp, step.content, { mode: step.mode });
          else copyFileSync(step.from, tmp);
          chmodSync(tmp, step.mode);
          own(tmp, step.owner);
          renameSync(tmp, p);
          say(`${step.what}: ${step.kind === 'copy' ? `${step.from} → ` : ''}${p} (${octal(step.mode)}${ownerText(step.owner)})`);
          break;
        }
        case 'secure-data': {
          const p = at(step.path);
          const { files, secrets } = secureData(p, owning ? () => (ids ??= serviceIds(run, LINUX_LAYOUT.user)) : undefined);
          say(
            files === 0
              ? `data folder ${p} is empty (the gateway makes its key 0600 on its first start)`
              : `data folder ${p}: ${files} entries${owning ? ` owned by ${LINUX_LAYOUT.user}` : ''}, ${secrets} key and token files 0600`,
          );
          break;
        }
        case 'remove': {
          const p = at(step.path);
          if (!existsSync(p)) {
            say(`${step.what}: ${p} was not there`);
            break;
          }
          rmSync(p, { recursive: true, force: true });
          say(`removed ${step.what}: ${p}`);
          break;
        }
        case 'keep':
          say(`kept ${step.what}: ${at(step.path)}`);
          break;
        case 'perm': {
          const p = at(step.path);
          chmodSync(p, step.mode);
          own(p, step.owner);
          say(`kept ${step.what}: ${p} (${octal(step.mode)}${ownerText(step.owner)})`);
          break;
        }
        case 'run': {
          const r = run(step.argv);
          const cmd = step.argv.join(' ');
          if (r.status !== 0) {
            if (step.mayFail) {
              say(`${cmd} (${step.why}): exit ${r.status ?? 'none'}, not needed: ${r.output || 'no output'}`);
              break;
            }
            throw new Error(
              `${cmd} exited ${r.status ?? `without starting (${r.output})`}${r.status === null ? '' : `: ${r.output || 'no output'}`}`,
            );
          }
          say(`${cmd} (${step.why})`);
          break;
        }
        default:
          step satisfies never;
      }
    } catch (e) {
      const before =
        done.length === 0 ? 'nothing was changed before it' : `done before it:\n${done.map((d, i) => `  ${i + 1}. ${d}`).join('\n')}`;
      const hint =
        step.kind === 'run' && step.argv.includes('--now')
          ? `\nthe service did not start: \`systemctl status ${UNIT_NAME}\` and \`journalctl -u ${UNIT_NAME} -n 50\` say why`
          : '';
      throw new GatewayError('GW_INSTALL_FAILED', `step ${done.length + 1} failed: ${(e as Error).message}${hint}\n${before}`, {
        cause: e,
      });
    }
  }
}

/** Keys, secrets and setup's credentials files and the admin token 0600, their folders 0700, and (when `ids` is given) everything owned by the service user. */
function secureData(dir: string, ids?: () => { uid: number; gid: number }): { files: number; secrets: number } {
  let files = 0;
  let secrets = 0;
  const walk = (d: string, inKeys: boolean) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      files++;
      const owner = ids?.();
      if (owner) lchownSync(p, owner.uid, owner.gid);
      if (e.isSymbolicLink()) continue;
      if (e.isDirectory()) {
        const keys = inKeys || e.name === 'keys' || e.name === 'secrets' || e.name === 'credentials';
        if (keys) chmodSync(p, 0o700);
        walk(p, keys);
      } else if (e.isFile() && (inKeys || e.name === 'admin.token')) {
        chmodSync(p, 0o600);
        secrets++;
      }
    }
  };
  if (existsSync(dir) && statSync(dir).isDirectory()) walk(dir, false);
  return { files, secrets };
}

/** The first login shell that refuses a login. */
export function noLoginShell(): string {
  return ['/usr/sbin/nologin', '/sbin/nologin'].find((s) => existsSync(s)) ?? '/bin/false';
}

/** Whether the system was booted with systemd (sd_booted(3): /run/systemd/system exists). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/** What a step would do, one line (for `--print`); owners are named on Linux only (Windows: the ACL script). */
export function describeStep(step: InstallStep, platform: InstallPlan['platform'] = 'linux'): string {
  const u = LINUX_LAYOUT.user;
  const owner = (o: Owner) => (platform !== 'linux' ? '' : o === 'root' ? ', root' : o === 'root:service' ? `, root:${u}` : `, ${u}`);
  switch (step.kind) {
    case 'user':
      return `create system user ${step.name}: ${step.argv.join(' ')}`;
    case 'dir':
      return `create folder ${step.path}${platform === 'linux' ? ` (${octal(step.mode)}${owner(step.owner)})` : ''}`;
    case 'file':
      return `write ${step.what}: ${step.path}${platform === 'linux' ? ` (${octal(step.mode)}${owner(step.owner)})` : ''}`;
    case 'copy':
      return `copy ${step.what}: ${step.from} → ${step.path}${platform === 'linux' ? ` (${octal(step.mode)}${owner(step.owner)})` : ''}`;
    case 'secure-data':
      return `give what is in ${step.path} to ${u}; keys and the admin token 0600`;
    case 'remove':
      return `remove ${step.what}: ${step.path}`;
    case 'keep':
      return `keep ${step.what}: ${step.path}`;
    case 'perm':
      return `keep ${step.what}: ${step.path}${platform === 'linux' ? ` (${octal(step.mode)}${owner(step.owner)})` : ''}`;
    case 'run':
      return `run ${step.argv.join(' ')} (${step.why})`;
    default:
      return step satisfies never;
  }
}
