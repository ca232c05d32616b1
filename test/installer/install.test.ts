/**
 * `install` / `uninstall` as a technician or a packager runs them: the real CLI spawned from bin/,
 * real files in a staging root (`--root`), the installed unit checked by the real
 * `systemd-analyze verify` against that root. This machine's PID 1 is not systemd (a container),
 * so the systemctl/useradd steps are checked as the plan's exact command lines, and a real install
 * here is checked to refuse before it changes anything; the last describe then runs a real install
 * under systemd as PID 1 of a sandbox (test/support/systemd-sandbox.ts). Windows cannot run here:
 * its files and commands are checked as text.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/command.ts';
import { runCli } from '../../cli/registry.ts';
import { loadConfig } from '../../config/load.ts';
import { isGatewayError } from '../../gateway/errors.ts';
import { installCommand, uninstallCommand } from '../../installer/commands/install.ts';
import {
  applyPlan,
  LINUX_LAYOUT,
  linuxUnit,
  planLinuxInstall,
  planLinuxUninstall,
  planWindowsInstall,
  planWindowsUninstall,
  systemdRunning,
  windowsLayout,
} from '../../installer/install.ts';
import { windowsAclScript, winswServiceXml } from '../../installer/service/windows-service.ts';
import { buildExecutable, sourceRoot } from '../support/release-builds.ts';
import { type SystemdSandbox, startSystemdSandbox, systemdSandboxProblem, until } from '../support/systemd-sandbox.ts';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'ewml-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = join(work, `${name}-${++n}`);
  mkdirSync(d, { recursive: true });
  return d;
};

/** The CLI as a person runs it (stdin not a terminal). */
function cli(args: string[], opts: { uid?: number } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], {
      cwd: work,
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

// the executable to install: any executable file (what is copied and named in ExecStart is checked, not what it runs)
const fakeExe = join(work, 'eyewear-gateway');
writeFileSync(fakeExe, '#!/bin/sh\necho "eyewear-gateway (test executable)"\n', { mode: 0o755 });
const mode = (p: string) => statSync(p).mode & 0o777;
const config = (name: string, body: string) => {
  const f = join(work, name);
  writeFileSync(f, body);
  return f;
};
const goodConfig = config(
  'good.yaml',
  'gateway:\n  id: gw-install\n  dataDir: /var/lib/eyewear-gateway\n  timezone: UTC\nhl7:\n  port: 2575\n',
);
const realPaths = [LINUX_LAYOUT.unitFile, LINUX_LAYOUT.programDir, LINUX_LAYOUT.configDir, LINUX_LAYOUT.dataDir];
const absent = () => realPaths.filter((p) => existsSync(p));

describe('install --print', () => {
  it('prints the unit it would install on stdout, the steps on stderr, and changes nothing', async () => {
    const before = absent();
    const r = await cli(['install', '--print']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(linuxUnit({ dataDir: LINUX_LAYOUT.dataDir, lowPort: false }));
    const steps = r.err.split('\n');
    expect(steps[0]).toBe('install would (nothing was done):');
    expect(steps).toContain(' 9. run systemctl daemon-reload (systemd reads the unit)');
    expect(steps).toContain('10. run systemctl enable --now eyewear-gateway.service (start now and at every boot)');
    expect(steps).toContain(' 8. write the systemd unit: /etc/systemd/system/eyewear-gateway.service (0644, root)');
    expect(absent()).toEqual(before);
  });

  it('a port below 1024 in the config grants CAP_NET_BIND_SERVICE, and only that', async () => {
    const low = config('low.yaml', 'gateway:\n  dataDir: /var/lib/eyewear-gateway\nhl7:\n  port: 104\n');
    const r = await cli(['install', '--print', '--config', low]);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toContain('CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
    expect(r.out).toBe(linuxUnit({ dataDir: LINUX_LAYOUT.dataDir, lowPort: true }));
  });

  it('refuses a config whose data folder is relative or outside /var/lib, saying what to set', async () => {
    const rel = await cli(['install', '--print', '--config', config('rel.yaml', 'gateway:\n  dataDir: ./data\n')]);
    expect(rel.code).toBe(1);
    expect(rel.err).toMatch(
      /^error GW_INSTALL_REFUSED: gateway\.dataDir in .*rel\.yaml is "\.\/data", a path relative to wherever the service starts: set it to an absolute folder \(\/var\/lib\/eyewear-gateway\)/,
    );
    const srv = await cli(['install', '--print', '--config', config('srv.yaml', 'gateway:\n  dataDir: /srv/gw\n')]);
    expect(srv.code).toBe(1);
    expect(srv.err).toContain(
      'error GW_INSTALL_REFUSED: systemd unit: dataDir must be a directory under /var/lib (StateDirectory=), got "/srv/gw"',
    );
  });

  it('--platform win32 prints the WinSW XML and the icacls script', async () => {
    const r = await cli(['install', '--print', '--platform', 'win32']);
    expect(r.code).toBe(0);
    const W = windowsLayout({});
    const [xmlPart, aclPart] = r.out.split(/^==> .* <==\n/m).slice(1);
    expect(r.out.startsWith(`==> ${W.xmlPath} <==\n`)).toBe(true);
    expect(r.out).toContain(`==> ${W.aclScript} <==\n`);
    const xml = winswServiceXml({ exePath: W.execPath, configPath: W.configPath, dataDir: W.dataDir, account: W.account });
    expect(xmlPart).toBe(xml);
    expect(aclPart).toBe(
      windowsAclScript({ dataDir: W.dataRoot, account: W.account }) +
        'icacls "C:\\Program Files\\eyewear-gateway" /grant "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1\r\n',
    );
    const doc = new XMLParser().parse(xmlPart ?? '').service;
    expect(doc.executable).toBe('C:\\Program Files\\eyewear-gateway\\eyewear-gateway.exe');
    expect(doc.arguments).toBe('start --config "C:\\ProgramData\\eyewear-gateway\\config.yaml"');
  });

  it('--platform without --print is refused: a Windows install runs on Windows', async () => {
    const r = await cli(['install', '--platform', 'win32']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error GW_INSTALL_REFUSED: --platform win32 can only be printed here (--print)');
  });
});

describe('install refuses before it changes anything', () => {
  it.skipIf(process.getuid?.() !== 0)('not root: says to run it with sudo', async () => {
    const r = await cli(['install', '--exec', fakeExe], { uid: 65534 });
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe(
      'error GW_INSTALL_REFUSED: install changes system files and users, so it must run as root (uid 65534 now): run `sudo eyewear-gateway install` (or add --root DIR to stage the files, --print to see them)',
    );
    expect(r.err.split('\n')[1]).toMatch(/^what to do: Do what the message says: `sudo eyewear-gateway install`/);
  });

  it.skipIf(process.getuid?.() !== 0 || systemdRunning())('as root where systemd is not running: says so, writes nothing', async () => {
    const before = absent();
    const r = await cli(['install', '--exec', fakeExe]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^error GW_INSTALL_REFUSED: systemd is not running on this machine \(PID 1 is .+, and \/run\/systemd\/system does not exist\)/,
    );
    expect(absent()).toEqual(before);
  });

  it('from the TypeScript sources without --exec: there is no executable to install, says how to build one', async () => {
    const dir = fresh('sources');
    const r = await cli(['install', '--root', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'error GW_INSTALL_REFUSED: this is the gateway run from its TypeScript sources (node bin/eyewear-gateway.js), not the single executable, so there is no executable to install: build it (npm run build:binary)',
    );
    expect(spawnSync('find', [dir, '-mindepth', '1'], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('an --exec that is not executable', async () => {
    const f = join(work, 'not-exec');
    writeFileSync(f, 'x', { mode: 0o644 });
    const r = await cli(['install', '--root', fresh('noexec'), '--exec', f]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error GW_INSTALL_REFUSED: the executable to install, ${f}, is not executable (chmod 755 it)`);
  });
});

describe('install --root (a staging root, as a package is built)', () => {
  const stage = fresh('stage');
  const at = (p: string) => join(stage, p);

  it('writes the unit, the executable, the config and the data folder with their modes, step by step', async () => {
    const r = await cli(['install', '--root', stage, '--exec', fakeExe, '--config', goodConfig]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      `staging eyewear-gateway.service under ${stage} (no user, owners or systemctl):`,
      ` 1. folder ${at('/opt/eyewear-gateway')} (0755)`,
      ` 2. the executable: ${fakeExe} → ${at('/opt/eyewear-gateway/eyewear-gateway')} (0755)`,
      ` 3. folder ${at('/etc/eyewear-gateway')} (0750)`,
      ` 4. the config: ${goodConfig} → ${at('/etc/eyewear-gateway/config.yaml')} (0640)`,
      ` 5. folder ${at('/var/lib/eyewear-gateway')} (0700)`,
      ` 6. data folder ${at('/var/lib/eyewear-gateway')} is empty (the gateway makes its key 0600 on its first start)`,
      ` 7. the systemd unit: ${at('/etc/systemd/system/eyewear-gateway.service')} (0644)`,
      "staged. The package's install script creates the user (useradd --system --user-group --no-create-home --home-dir /var/lib/eyewear-gateway --shell /usr/sbin/nologin eyewear-gateway), gives /var/lib/eyewear-gateway to it, and runs systemctl daemon-reload && systemctl enable --now eyewear-gateway.service",
      '',
    ]);
    expect(readFileSync(at(LINUX_LAYOUT.unitFile), 'utf8')).toBe(linuxUnit({ dataDir: LINUX_LAYOUT.dataDir, lowPort: false }));
    expect(mode(at(LINUX_LAYOUT.unitFile))).toBe(0o644);
    expect(readFileSync(at(LINUX_LAYOUT.execPath))).toEqual(readFileSync(fakeExe));
    expect(mode(at(LINUX_LAYOUT.execPath))).toBe(0o755);
    expect(readFileSync(at(LINUX_LAYOUT.configPath), 'utf8')).toBe(readFileSync(goodConfig, 'utf8'));
    expect(mode(at(LINUX_LAYOUT.configPath))).toBe(0o640);
    expect(mode(at(LINUX_LAYOUT.configDir))).toBe(0o750);
    expect(mode(at(LINUX_LAYOUT.dataDir))).toBe(0o700);
    // nothing half-written left beside them
    expect(spawnSync('find', [stage, '-name', '*.installing'], { encoding: 'utf8' }).stdout).toBe('');
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))(
    'the installed unit passes systemd-analyze verify in that root (its ExecStart found there)',
    () => {
      // the root needs systemd's own units (sysinit.target, network-online.target…) for the dependencies to resolve
      cpSync('/usr/lib/systemd/system', at('/usr/lib/systemd/system'), { recursive: true });
      const verify = () =>
        spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${stage}`, LINUX_LAYOUT.unitFile], { encoding: 'utf8' });
      const r = verify();
      console.log(`systemd-analyze verify --root exit ${r.status}: ${r.stdout}${r.stderr}`);
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
      // and it does look inside the root: without the executable there it fails
      rmSync(at(LINUX_LAYOUT.execPath));
      const missing = verify();
      expect(missing.status).not.toBe(0);
      expect(`${missing.stdout}${missing.stderr}`).toContain('Command /opt/eyewear-gateway/eyewear-gateway is not executable');
      cpSync(fakeExe, at(LINUX_LAYOUT.execPath));
    },
  );

  it('again, over existing keys: keeps the config (readable by the service group), replaces the unit, makes keys, credentials and the token 0600', async () => {
    mkdirSync(at('/var/lib/eyewear-gateway/keys'), { recursive: true, mode: 0o755 });
    writeFileSync(at('/var/lib/eyewear-gateway/keys/seal.key'), 'k', { mode: 0o644 });
    writeFileSync(at('/var/lib/eyewear-gateway/admin.token'), 't', { mode: 0o644 });
    writeFileSync(at('/var/lib/eyewear-gateway/outbox.db'), 'o', { mode: 0o600 });
    mkdirSync(at('/var/lib/eyewear-gateway/credentials'), { mode: 0o755 });
    writeFileSync(at('/var/lib/eyewear-gateway/credentials/sql-password'), 'p', { mode: 0o644 });
    // as a config written 0600 by root: the service could not read it
    chmodSync(at(LINUX_LAYOUT.configPath), 0o600);
    const r = await cli(['install', '--root', stage, '--exec', fakeExe]);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toContain(` 4. kept the config (exists; content not changed): ${at('/etc/eyewear-gateway/config.yaml')} (0640)`);
    expect(lines).toContain(` 6. data folder ${at('/var/lib/eyewear-gateway')}: 6 entries, 3 key and token files 0600`);
    expect(lines).toContain(` 7. the systemd unit (replacing the one there): ${at('/etc/systemd/system/eyewear-gateway.service')} (0644)`);
    expect(mode(at('/var/lib/eyewear-gateway/keys'))).toBe(0o700);
    expect(mode(at('/var/lib/eyewear-gateway/keys/seal.key'))).toBe(0o600);
    expect(mode(at('/var/lib/eyewear-gateway/admin.token'))).toBe(0o600);
    expect(mode(at('/var/lib/eyewear-gateway/credentials'))).toBe(0o700);
    expect(mode(at('/var/lib/eyewear-gateway/credentials/sql-password'))).toBe(0o600);
    expect(mode(at('/var/lib/eyewear-gateway/outbox.db'))).toBe(0o600);
    expect(mode(at(LINUX_LAYOUT.configPath))).toBe(0o640);
    expect(readFileSync(at(LINUX_LAYOUT.configPath), 'utf8')).toBe(readFileSync(goodConfig, 'utf8'));
  });

  it('uninstall keeps the data and the config; --purge without a terminal refuses unless --yes', async () => {
    const refused = await cli(['uninstall', '--root', stage, '--purge']);
    expect(refused.code).toBe(1);
    expect(refused.err.split('\n')[0]).toBe(
      `error GW_INSTALL_REFUSED: --purge deletes ${at('/var/lib/eyewear-gateway')} and ${at('/etc/eyewear-gateway')}: the outbox (any record not yet delivered to the cloud) and the seal key. There is no terminal to confirm on: add --yes to confirm it in a script`,
    );
    expect(existsSync(at(LINUX_LAYOUT.unitFile))).toBe(true);

    const r = await cli(['uninstall', '--root', stage]);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      `removing eyewear-gateway from ${stage}:`,
      ` 1. removed the systemd unit: ${at('/etc/systemd/system/eyewear-gateway.service')}`,
      ` 2. removed the executable: ${at('/opt/eyewear-gateway')}`,
      ` 3. kept the data folder (outbox, keys): \`uninstall --purge\` deletes it: ${at('/var/lib/eyewear-gateway')}`,
      ` 4. kept the config: ${at('/etc/eyewear-gateway')}`,
      'uninstalled; the data folder and the config were kept.',
      '',
    ]);
    expect(existsSync(at(LINUX_LAYOUT.unitFile))).toBe(false);
    expect(existsSync(at(LINUX_LAYOUT.programDir))).toBe(false);
    expect(readFileSync(at('/var/lib/eyewear-gateway/keys/seal.key'), 'utf8')).toBe('k');
    expect(existsSync(at(LINUX_LAYOUT.configPath))).toBe(true);

    const purged = await cli(['uninstall', '--root', stage, '--purge', '--yes']);
    expect(purged.code).toBe(0);
    expect(purged.out).toContain(` 3. removed the data folder (outbox, keys, dead letters): ${at('/var/lib/eyewear-gateway')}`);
    expect(existsSync(at(LINUX_LAYOUT.dataDir))).toBe(false);
    expect(existsSync(at(LINUX_LAYOUT.configDir))).toBe(false);
  });

  it('without --config writes a default config that check-config accepts', async () => {
    const dir = fresh('default');
    const r = await cli(['install', '--root', dir, '--exec', fakeExe]);
    expect(r.code).toBe(0);
    const file = join(dir, LINUX_LAYOUT.configPath);
    expect(r.out).toContain(` 4. a default config: ${file} (0640)`);
    expect(loadConfig({ file }).gateway.dataDir).toBe('/var/lib/eyewear-gateway');
    const check = await cli(['check-config', file]);
    expect(check.code).toBe(0);
  });
});

/** The commands in-process with a terminal that answers (io.confirm). */
function io(answer: string | undefined) {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const cliIo: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    readFile: (p) => readFileSync(p, 'utf8'),
    loadConfig: (file) => loadConfig({ file }),
    env: {},
    ...(answer !== undefined
      ? {
          confirm: async (q: string) => {
            asked.push(q);
            return answer;
          },
        }
      : {}),
  };
  return { cliIo, out, err, asked };
}

describe('uninstall --purge asks on the terminal', () => {
  it('an answer other than yes changes nothing; yes deletes the data and the config', async () => {
    const dir = fresh('purge');
    expect((await cli(['install', '--root', dir, '--exec', fakeExe])).code).toBe(0);
    writeFileSync(join(dir, '/var/lib/eyewear-gateway/outbox.db'), 'queued');
    const no = io('no');
    expect(await runCli(['uninstall', '--root', dir, '--purge'], no.cliIo, [installCommand, uninstallCommand])).toBe(1);
    expect(no.asked).toEqual([
      `--purge deletes ${join(dir, '/var/lib/eyewear-gateway')} and ${join(dir, '/etc/eyewear-gateway')}, with the outbox (records not yet delivered are lost) and the seal key. Type yes to delete them: `,
    ]);
    expect(no.err).toEqual(['not confirmed; nothing was changed']);
    expect(existsSync(join(dir, LINUX_LAYOUT.unitFile))).toBe(true);
    expect(readFileSync(join(dir, '/var/lib/eyewear-gateway/outbox.db'), 'utf8')).toBe('queued');

    const yes = io(' YES\n');
    expect(await runCli(['uninstall', '--root', dir, '--purge'], yes.cliIo, [installCommand, uninstallCommand])).toBe(0);
    expect(existsSync(join(dir, LINUX_LAYOUT.dataDir))).toBe(false);
    expect(existsSync(join(dir, LINUX_LAYOUT.configDir))).toBe(false);
    expect(yes.out.at(-1)).toBe('uninstalled, data and config deleted.');
  });

  it('--yes without --purge is refused (it confirms nothing)', async () => {
    const x = io(undefined);
    await expect(runCli(['uninstall', '--root', fresh('yes'), '--yes'], x.cliIo, [uninstallCommand])).rejects.toThrow(
      /--yes only confirms --purge/,
    );
  });
});

describe('the Linux plan for a real install (systemd cannot run here: its commands as text)', () => {
  const base = {
    execSource: '/tmp/dist/eyewear-gateway',
    dataDir: '/var/lib/eyewear-gateway',
    lowPort: false,
    noLoginShell: '/usr/sbin/nologin',
  };
  const commands = (steps: ReturnType<typeof planLinuxInstall>['steps']) =>
    steps.flatMap((s) => (s.kind === 'run' || s.kind === 'user' ? [s.argv.join(' ')] : []));

  it('a first install: the system user, then daemon-reload and enable --now', () => {
    const p = planLinuxInstall({ ...base, existing: { unit: false, config: false, user: false } });
    expect(commands(p.steps)).toEqual([
      'useradd --system --user-group --no-create-home --home-dir /var/lib/eyewear-gateway --shell /usr/sbin/nologin --comment eyewear-ML edge gateway eyewear-gateway',
      'systemctl daemon-reload',
      'systemctl enable --now eyewear-gateway.service',
    ]);
    expect(p.steps.filter((s) => s.kind === 'dir').map((s) => [s.path, s.mode.toString(8), s.owner])).toEqual([
      ['/opt/eyewear-gateway', '755', 'service'],
      ['/etc/eyewear-gateway', '750', 'root:service'],
      ['/var/lib/eyewear-gateway', '700', 'service'],
    ]);
  });

  it('a re-install: no useradd, and a restart so the new unit and executable take effect', () => {
    const p = planLinuxInstall({ ...base, existing: { unit: true, config: true, user: true } });
    expect(commands(p.steps)).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now eyewear-gateway.service',
      'systemctl restart eyewear-gateway.service',
    ]);
  });

  it('uninstall: disable --now first; --purge also removes the user', () => {
    const keep = planLinuxUninstall({ purge: false, dataDir: '/var/lib/eyewear-gateway', existing: { unit: true, user: true } });
    expect(commands(keep.steps)).toEqual([
      'systemctl disable --now eyewear-gateway.service',
      'systemctl reset-failed eyewear-gateway.service',
      'systemctl daemon-reload',
    ]);
    const purge = planLinuxUninstall({ purge: true, dataDir: '/var/lib/eyewear-gateway', existing: { unit: true, user: true } });
    expect(commands(purge.steps).at(-1)).toBe('userdel eyewear-gateway');
    expect(purge.steps.filter((s) => s.kind === 'remove').map((s) => s.path)).toEqual([
      '/etc/systemd/system/eyewear-gateway.service',
      '/opt/eyewear-gateway',
      '/var/lib/eyewear-gateway',
      '/etc/eyewear-gateway',
    ]);
  });

  it('a step that fails names itself, what the program said, and the steps done before it', () => {
    const dir = fresh('fail');
    const plan = {
      platform: 'linux' as const,
      definitions: [],
      steps: [
        { kind: 'dir' as const, path: '/opt/x', mode: 0o755, owner: 'root' as const },
        { kind: 'run' as const, argv: ['sh', '-c', 'echo "Unit not found." >&2; exit 5'], why: 'test' },
        { kind: 'dir' as const, path: '/opt/never', mode: 0o755, owner: 'root' as const },
      ],
    };
    const lines: string[] = [];
    let caught: unknown;
    try {
      applyPlan(plan, { root: dir, report: (l) => lines.push(l) });
    } catch (e) {
      caught = e;
    }
    expect(isGatewayError(caught, 'GW_INSTALL_FAILED')).toBe(true);
    expect((caught as Error).message).toBe(
      `step 2 failed: sh -c echo "Unit not found." >&2; exit 5 exited 5: Unit not found.\ndone before it:\n  1. folder ${join(dir, '/opt/x')} (0755)`,
    );
    expect(lines).toEqual([` 1. folder ${join(dir, '/opt/x')} (0755)`]);
    expect(existsSync(join(dir, '/opt/never'))).toBe(false);
  });
});

describe('owners, as a real install sets them (root can chown here; the service user stood in for by uid 65534)', () => {
  it.skipIf(process.getuid?.() !== 0)(
    "unit and config root-owned (config group: the service); the program folder and executable the user's (a signed update replaces it), the data folder and all in it too",
    () => {
      const dir = fresh('owners');
      mkdirSync(join(dir, '/var/lib/eyewear-gateway/keys'), { recursive: true });
      writeFileSync(join(dir, '/var/lib/eyewear-gateway/keys/seal.key'), 'k', { mode: 0o644 });
      const plan = planLinuxInstall({
        execSource: fakeExe,
        dataDir: '/var/lib/eyewear-gateway',
        lowPort: false,
        root: dir,
        existing: { unit: false, config: false, user: true },
        noLoginShell: '/usr/sbin/nologin',
      });
      const lines: string[] = [];
      applyPlan(plan, { root: dir, serviceIds: { uid: 65534, gid: 65534 }, report: (l) => lines.push(l) });
      const owner = (p: string) => {
        const st = statSync(join(dir, p));
        return `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`;
      };
      expect(owner(LINUX_LAYOUT.unitFile)).toBe('0:0 644');
      expect(owner(LINUX_LAYOUT.programDir)).toBe('65534:65534 755');
      expect(owner(LINUX_LAYOUT.execPath)).toBe('65534:65534 755');
      expect(owner(LINUX_LAYOUT.configDir)).toBe('0:65534 750');
      expect(owner(LINUX_LAYOUT.configPath)).toBe('0:65534 640');
      expect(owner(LINUX_LAYOUT.dataDir)).toBe('65534:65534 700');
      expect(owner('/var/lib/eyewear-gateway/keys')).toBe('65534:65534 700');
      expect(owner('/var/lib/eyewear-gateway/keys/seal.key')).toBe('65534:65534 600');
      expect(lines).toContain(
        ` 6. data folder ${join(dir, LINUX_LAYOUT.dataDir)}: 2 entries owned by eyewear-gateway, 1 key and token files 0600`,
      );
      expect(lines).toContain(` 4. a default config: ${join(dir, LINUX_LAYOUT.configPath)} (0640, root:eyewear-gateway)`);
    },
  );
});

describe('the Windows plan (Windows cannot run here: files and commands as text)', () => {
  const env = { ProgramFiles: 'C:\\Program Files', ProgramData: 'D:\\Data' };
  const W = windowsLayout(env);
  const commands = (steps: ReturnType<typeof planWindowsInstall>['steps']) => steps.flatMap((s) => (s.kind === 'run' ? [s.argv] : []));

  it('a first install: the ACL script, then WinSW install and start', () => {
    const p = planWindowsInstall({
      env,
      execSource: 'E:\\eyewear-gateway.exe',
      winswSource: 'E:\\WinSW-x64.exe',
      existing: { service: false, config: false },
    });
    expect(W.dataRoot).toBe('D:\\Data\\eyewear-gateway');
    expect(commands(p.steps)).toEqual([
      ['cmd.exe', '/d', '/c', 'C:\\Program Files\\eyewear-gateway\\eyewear-gateway-acl.cmd'],
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'install'],
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'start'],
    ]);
    const copies = p.steps.flatMap((s) => (s.kind === 'copy' ? [[s.from, s.path]] : []));
    expect(copies).toEqual([
      ['E:\\eyewear-gateway.exe', 'C:\\Program Files\\eyewear-gateway\\eyewear-gateway.exe'],
      ['E:\\WinSW-x64.exe', 'C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe'],
    ]);
    const files = Object.fromEntries(p.steps.flatMap((s) => (s.kind === 'file' ? [[s.path, s.content]] : [])));
    // WinSW finds its XML by its own base name
    expect(files['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.xml']).toBe(
      winswServiceXml({
        exePath: W.execPath,
        configPath: 'D:\\Data\\eyewear-gateway\\config.yaml',
        dataDir: 'D:\\Data\\eyewear-gateway\\data',
      }),
    );
    expect(files['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-acl.cmd']).toBe(
      windowsAclScript({ dataDir: 'D:\\Data\\eyewear-gateway', account: 'NT AUTHORITY\\LocalService' }) +
        'icacls "C:\\Program Files\\eyewear-gateway" /grant "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1\r\n',
    );
    expect(files['D:\\Data\\eyewear-gateway\\config.yaml']).toContain('dataDir: "D:\\\\Data\\\\eyewear-gateway\\\\data"');
  });

  it('a data folder outside %ProgramData%\\eyewear-gateway gets the same grants', () => {
    const p = planWindowsInstall({
      env,
      execSource: 'E:\\g.exe',
      winswSource: 'E:\\w.exe',
      configSource: 'E:\\gateway.yaml',
      dataDir: 'E:\\gw-data',
      existing: { service: true, config: true },
    });
    const acl = p.definitions[1]?.content.split('\r\n');
    expect(acl).toEqual([
      '@echo off',
      'icacls "D:\\Data\\eyewear-gateway" /inheritance:r || exit /b 1',
      'icacls "D:\\Data\\eyewear-gateway" /grant:r "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1',
      'icacls "D:\\Data\\eyewear-gateway" /grant:r "*S-1-5-32-544:(OI)(CI)F" || exit /b 1',
      'icacls "D:\\Data\\eyewear-gateway" /grant:r "*S-1-5-18:(OI)(CI)F" || exit /b 1',
      'icacls "E:\\gw-data" /inheritance:r || exit /b 1',
      'icacls "E:\\gw-data" /grant:r "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1',
      'icacls "E:\\gw-data" /grant:r "*S-1-5-32-544:(OI)(CI)F" || exit /b 1',
      'icacls "E:\\gw-data" /grant:r "*S-1-5-18:(OI)(CI)F" || exit /b 1',
      'icacls "C:\\Program Files\\eyewear-gateway" /grant "NT AUTHORITY\\LocalService:(OI)(CI)M" || exit /b 1',
      '',
    ]);
    // already registered: refresh the definition and restart rather than install again
    expect(commands(p.steps).slice(1)).toEqual([
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'refresh'],
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'restart'],
    ]);
  });

  it('uninstall: stop, uninstall, remove the program folder; the data only with --purge', () => {
    const keep = planWindowsUninstall({ env, purge: false, existing: { service: true } });
    expect(commands(keep.steps)).toEqual([
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'stop'],
      ['C:\\Program Files\\eyewear-gateway\\eyewear-gateway-service.exe', 'uninstall'],
    ]);
    expect(keep.steps.filter((s) => s.kind === 'remove').map((s) => s.path)).toEqual(['C:\\Program Files\\eyewear-gateway']);
    const purge = planWindowsUninstall({ env, purge: true, existing: { service: true } });
    expect(purge.steps.filter((s) => s.kind === 'remove').map((s) => s.path)).toEqual([
      'C:\\Program Files\\eyewear-gateway',
      'D:\\Data\\eyewear-gateway',
    ]);
  });
});

/** systemd for real: PID 1 of a sandbox (test/support/systemd-sandbox.ts says how it is kept from this machine's files). */
const sandboxProblem = systemdSandboxProblem();
if (sandboxProblem) console.log(`install under a real systemd skipped: ${sandboxProblem}`);

describe.skipIf(sandboxProblem !== undefined)('under a real systemd (PID 1 of a sandbox)', () => {
  let sandbox: SystemdSandbox | undefined;
  const inBox = (args: string[], timeout = 120_000) => {
    if (!sandbox) throw new Error('the sandbox is not running');
    return sandbox.run(args, timeout);
  };
  const show = (...props: string[]) => {
    if (!sandbox) throw new Error('the sandbox is not running');
    return sandbox.show('eyewear-gateway.service', ...props);
  };

  afterAll(async () => {
    await sandbox?.stop();
  });

  it('install starts it (Type=notify: READY=1), the watchdog restarts it when frozen, uninstall --purge removes it all', async () => {
    sandbox = await startSystemdSandbox();
    const box = sandbox.dir;
    // the executable, built from these sources: self-contained, so the unit's PrivateTmp and
    // ProtectSystem cannot hide what it needs (a checkout under /tmp, as CI may clone it, would be)
    const exe = buildExecutable(sourceRoot, '0.1.0', join(box, 'build'));
    const cfg = join(box, 'config.yaml');
    writeFileSync(cfg, 'gateway:\n  id: gw-systemd\n  dataDir: /var/lib/eyewear-gateway\n  timezone: UTC\n');

    const inst = inBox([exe, 'install', '--exec', exe, '--config', cfg]);
    expect(inst.stderr).toBe('');
    expect(inst.status).toBe(0);
    expect(inst.stdout).toContain('10. systemctl enable --now eyewear-gateway.service (start now and at every boot)\n');
    expect(inst.stdout.split('\n').at(-2)).toMatch(/^installed and running\. Status: systemctl status eyewear-gateway/);
    // enable --now returned only once READY=1 came: the unit is up, under its own user, with the status line
    expect(show('Type', 'ActiveState', 'SubState', 'StatusText', 'User', 'NRestarts')).toEqual({
      Type: 'notify',
      ActiveState: 'active',
      SubState: 'running',
      StatusText: 'ready',
      User: 'eyewear-gateway',
      NRestarts: '0',
    });
    expect(
      inBox([
        'stat',
        '-c',
        '%U %a',
        '/var/lib/eyewear-gateway',
        '/var/lib/eyewear-gateway/keys/seal.key',
        '/etc/eyewear-gateway/config.yaml',
      ]).stdout,
    ).toBe('eyewear-gateway 700\neyewear-gateway 600\nroot 640\n');
    const ready = inBox([
      process.execPath,
      '-e',
      "fetch('http://127.0.0.1:8480/ready').then(async (r) => console.log(r.status, (await r.json()).ready))",
    ]);
    expect(ready.stdout).toBe('200 true\n');

    // WATCHDOG=1 arrives (systemd records each), and a frozen gateway is killed and restarted
    const first = show('WatchdogTimestampMonotonic').WatchdogTimestampMonotonic;
    await until('a watchdog ping', () => show('WatchdogTimestampMonotonic').WatchdogTimestampMonotonic !== first, 30_000);
    const frozen = show('MainPID').MainPID ?? '';
    expect(inBox(['kill', '-STOP', frozen]).status).toBe(0);
    await until('the watchdog restart', () => {
      const s = show('NRestarts', 'ActiveState', 'MainPID', 'StatusText');
      return s.NRestarts === '1' && s.ActiveState === 'active' && s.MainPID !== frozen && s.StatusText === 'ready';
    });

    // a stop is a clean exit (STOPPING=1, SIGTERM, exit 0)
    expect(inBox(['systemctl', 'stop', 'eyewear-gateway.service']).status).toBe(0);
    expect(show('Result', 'ExecMainStatus', 'ActiveState')).toEqual({ Result: 'success', ExecMainStatus: '0', ActiveState: 'inactive' });

    const un = inBox([exe, 'uninstall', '--purge', '--yes']);
    expect(un.status).toBe(0);
    expect(un.stdout.split('\n').at(-2)).toBe('uninstalled, data and config deleted.');
    expect(show('LoadState').LoadState).toBe('not-found');
    expect(inBox(['id', 'eyewear-gateway']).status).not.toBe(0);
    expect(inBox(['ls', '/var/lib/eyewear-gateway']).status).not.toBe(0);
  }, 300_000);
});
