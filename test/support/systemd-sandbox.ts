/**
 * systemd for real, for a test: PID 1 of its own PID, mount and network namespaces, chrooted into an
 * overlay of `/` whose writes all land in a tmpfs, so nothing it does reaches this machine's files
 * (its systemd-tmpfiles would otherwise empty the shared /tmp). Host-wide units (sysctl, udev, time,
 * the host's enabled services) are masked in the overlay. Two sandbox-only drop-ins for
 * eyewear-gateway.service: PrivateDevices=no (this sandbox's /dev, a tmpfs with bound device nodes,
 * makes systemd fail the unit with 226/NAMESPACE) and WatchdogSec=10 (to see a restart without
 * waiting a minute).
 *
 * The sandbox's folder (`dir`, under this machine's temporary folder) and the folders given in
 * `share` are bound at the same paths inside it, so files put there are seen on both sides. Its network is its own (loopback only):
 * `forward(port)` makes a TCP port of this machine's loopback reachable at the same port on the
 * sandbox's loopback, through a Unix socket in `dir` (two small relay processes, one on each side).
 */
import { type ChildProcess, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Why a systemd sandbox cannot run here, or undefined when it can. */
export function systemdSandboxProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const f of ['/lib/systemd/systemd', '/usr/bin/unshare', '/usr/bin/nsenter', '/usr/bin/systemctl'])
    if (!existsSync(f)) return `needs ${f}`;
  if (!readFileSync('/proc/filesystems', 'utf8').includes('\toverlay\n')) return 'needs overlayfs';
  if (spawnSync('unshare', ['--mount', '--pid', '--net', '--fork', 'true']).status !== 0)
    return 'cannot create mount, PID and network namespaces (unshare failed)';
  return undefined;
}

export interface SystemdSandbox {
  /** The sandbox's folder: the same path on this machine and inside the sandbox. */
  dir: string;
  /** systemd's pid (in this machine's PID namespace). */
  pid1: number;
  /** Runs a command inside the sandbox (its namespaces, root and working folder), as root. */
  run(args: string[], timeoutMs?: number): SpawnSyncReturns<string>;
  /** `systemctl show UNIT -pX -pY…` as an object. */
  show(unit: string, ...props: string[]): Record<string, string>;
  /** Makes this machine's 127.0.0.1:`port` reachable at 127.0.0.1:`port` inside the sandbox. */
  forward(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Polls (every 250 ms, bounded) until `ok()`; throws saying what it waited for. */
export async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One relay: `listen` mode accepts on one side and connects every connection to the other. */
const RELAY = `
const net = require('node:net');
const [mode, a, b] = process.argv.slice(2);
const server = net.createServer((s) => {
  const t = mode === 'tcp-to-unix' ? net.connect(b) : net.connect(Number(b), '127.0.0.1');
  s.pipe(t);
  t.pipe(s);
  s.on('error', () => t.destroy());
  t.on('error', () => s.destroy());
  s.on('close', () => t.destroy());
  t.on('close', () => s.destroy());
});
server.on('error', (e) => { console.error(e.message); process.exit(1); });
if (mode === 'tcp-to-unix') server.listen(Number(a), '127.0.0.1', () => console.log('listening'));
else server.listen(a, () => console.log('listening'));
`;

function listening(c: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    c.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('listening')) resolve();
    });
    c.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    c.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening: ${err}`)));
    setTimeout(() => reject(new Error(`${what} did not listen within 20 s: ${err}`)), 20_000).unref();
  });
}

export interface SystemdSandboxOptions {
  /** Folders of this machine bound at the same path inside the sandbox (e.g. built executables to install). */
  share?: readonly string[];
}

export async function startSystemdSandbox(opts: SystemdSandboxOptions = {}): Promise<SystemdSandbox> {
  // the sources and the Node binary are always seen inside: the sandbox's /tmp is its own tmpfs,
  // and a checkout under /tmp (as CI may clone it) would otherwise be missing there
  const root = realpathSync(new URL('../../', import.meta.url).pathname);
  const nodeDir = dirname(realpathSync(process.execPath));
  const always = [root, ...(nodeDir.startsWith(`${root}/`) ? [] : [nodeDir])];
  const o = { ...opts, share: [...always, ...(opts.share ?? []).filter((d) => !always.includes(d))] };
  for (const d of o.share ?? [])
    if (!d.startsWith('/') || /[\s'"\\$`]/.test(d))
      throw new Error(`cannot share ${JSON.stringify(d)}: an absolute path without spaces or quotes`);
  const dir = mkdtempSync(join(tmpdir(), 'ewml-systemd-'));
  const M = join(dir, 'merged');
  mkdirSync(join(dir, 't'));
  mkdirSync(M);
  writeFileSync(
    join(dir, 'inner.sh'),
    `#!/bin/sh
set -eu
mount -t tmpfs tmpfs ${dir}/t
mkdir ${dir}/t/upper ${dir}/t/work
mount -t overlay overlay -o lowerdir=/,upperdir=${dir}/t/upper,workdir=${dir}/t/work ${M}
[ "$(findmnt -n -o FSTYPE ${M})" = overlay ] || { echo "no overlay at ${M}" >&2; exit 1; }
mount -t proc proc ${M}/proc
mount --rbind /sys ${M}/sys
mount -t tmpfs -o mode=755 tmpfs ${M}/dev
for n in null zero full random urandom tty; do touch ${M}/dev/$n; mount --bind /dev/$n ${M}/dev/$n; done
mkdir ${M}/dev/pts ${M}/dev/shm
mount -t devpts -o newinstance devpts ${M}/dev/pts
mount -t tmpfs tmpfs ${M}/dev/shm
mount -t tmpfs tmpfs ${M}/run
mount -t tmpfs -o mode=1777 tmpfs ${M}/tmp
mkdir -p ${M}${dir}
mount --bind ${dir} ${M}${dir}
${(o.share ?? []).map((d) => `mkdir -p ${M}${d}\nmount --bind ${d} ${M}${d}\n`).join('')}rm -rf ${M}/etc/systemd/system/*
: > ${M}/etc/fstab
for u in $(ls /lib/systemd/system/sysinit.target.wants/) systemd-udevd.service systemd-udev-trigger.service systemd-timesyncd.service systemd-remount-fs.service systemd-fsck-root.service systemd-logind.service getty.target console-getty.service systemd-networkd.service systemd-resolved.service systemd-tmpfiles-clean.timer systemd-hwdb-update.service; do
  case "$u" in systemd-journald.service|systemd-journal-flush.service) continue ;; esac
  ln -sf /dev/null ${M}/etc/systemd/system/$u
done
mkdir -p ${M}/etc/systemd/system/eyewear-gateway.service.d
printf '[Service]\\nPrivateDevices=no\\nWatchdogSec=10\\n' > ${M}/etc/systemd/system/eyewear-gateway.service.d/sandbox.conf
exec chroot ${M} /usr/bin/env container=other /lib/systemd/systemd --system --unit=basic.target
`,
    { mode: 0o755 },
  );
  writeFileSync(join(dir, 'relay.cjs'), RELAY);
  const unshare = spawn(
    'unshare',
    ['--pid', '--fork', '--mount', '--net', '--mount-proc', '--propagation', 'private', join(dir, 'inner.sh')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const relays: ChildProcess[] = [];
  let said = '';
  unshare.stderr?.setEncoding('utf8').on('data', (d: string) => {
    said += d;
  });
  let pid1 = 0;
  const run = (args: string[], timeout = 120_000) =>
    spawnSync('nsenter', ['-t', String(pid1), '-m', '-p', '-n', '-r', '-w', ...args], { encoding: 'utf8', timeout });
  const stop = async () => {
    for (const r of relays) if (r.exitCode === null) r.kill('SIGKILL');
    if (pid1 > 0) {
      try {
        process.kill(pid1, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (unshare.exitCode === null && unshare.signalCode === null) await new Promise((r) => unshare.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until('systemd to start in the sandbox', () => {
      const kids = spawnSync('pgrep', ['-P', String(unshare.pid)], { encoding: 'utf8' }).stdout.trim();
      pid1 = Number(kids.split('\n')[0] ?? 0);
      if (unshare.exitCode !== null) throw new Error(`the sandbox did not start (exit ${unshare.exitCode}): ${said}`);
      return pid1 > 0 && /^(running|degraded)$/m.test(run(['systemctl', 'is-system-running'], 10_000).stdout);
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir,
    pid1,
    run,
    show: (unit, ...props) =>
      Object.fromEntries(
        run(['systemctl', 'show', unit, ...props.map((p) => `-p${p}`)])
          .stdout.trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      ),
    async forward(port) {
      const sock = join(dir, `relay-${port}.sock`);
      const outside = spawn(process.execPath, [join(dir, 'relay.cjs'), 'unix-to-tcp', sock, String(port)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      relays.push(outside);
      await listening(outside, `the relay to 127.0.0.1:${port}`);
      // only the network namespace is the sandbox's: the socket path and node are this machine's
      const inside = spawn(
        'nsenter',
        ['-t', String(pid1), '-n', process.execPath, join(dir, 'relay.cjs'), 'tcp-to-unix', String(port), sock],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      relays.push(inside);
      await listening(inside, `the relay at the sandbox's 127.0.0.1:${port}`);
    },
    stop,
  };
}
