/**
 * The systemd notify protocol as systemd sees it: a real unix datagram socket as NOTIFY_SOCKET
 * (python3 binds it: Node cannot), the real systemd-notify, and the real gateway (`start` spawned
 * from bin/) sending READY=1, WATCHDOG=1 and STOPPING=1 to it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../gateway/clock.ts';
import { createServiceNotifier, type ServiceHealth, watchdogIntervalMs } from '../../gateway/service-notify.ts';
import { freePort, waitFor } from '../support/net.ts';

const root = new URL('../../', import.meta.url).pathname;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = has('python3') && has('systemd-notify');
if (!canRun) console.log('service-notify tests skipped: python3 and systemd-notify are needed (.ci/run installs them)');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** One datagram as received: its text and the sender's pid from SCM_CREDENTIALS. */
interface Datagram {
  text: string;
  pid: number | null;
}

// binds a SOCK_DGRAM socket with SO_PASSCRED (as systemd's notify socket does), prints each datagram as JSON
const RECEIVER = `
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"bound": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for lvl, typ, data in anc:
        if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', data[:12])[0]
    print(json.dumps({"text": msg.decode('utf8'), "pid": pid}), flush=True)
`;

/** A notify socket in a temp folder; `messages` excludes systemd-notify's BARRIER=1 (counted apart). */
async function notifySocket(): Promise<{ path: string; messages: Datagram[]; barriers: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-notify-'));
  const path = join(dir, 'notify.sock');
  const messages: Datagram[] = [];
  let barriers = 0;
  let bound = false;
  const py = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  py.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const m = JSON.parse(buf.slice(0, i)) as { bound?: boolean } & Datagram;
      buf = buf.slice(i + 1);
      if (m.bound) bound = true;
      else if (m.text === 'BARRIER=1') barriers++;
      else messages.push({ text: m.text, pid: m.pid });
    }
  });
  cleanups.push(() => {
    py.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => bound, 10_000, 'the notify socket to be bound');
  return { path, messages, barriers: () => barriers };
}

/** `eyewear-gateway start` under a pretend service manager: the given environment, its stderr kept. */
async function gateway(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-svc-'));
  const hl7Port = await freePort();
  const adminPort = await freePort();
  const cfg = join(dir, 'gateway.yaml');
  writeFileSync(
    cfg,
    `gateway:\n  dataDir: ${join(dir, 'data')}\n  timezone: UTC\nhl7:\n  port: ${hl7Port}\nadmin:\n  port: ${adminPort}\n`,
  );
  const c: ChildProcess = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), 'start', '--config', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  c.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { child: c, hl7Port, adminPort, err: () => err, exited };
}

const connects = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe.skipIf(!canRun)('the real gateway under a notify socket', () => {
  it('sends READY=1 once its listeners accept, WATCHDOG=1 while healthy, STOPPING=1 on SIGTERM', async () => {
    const sock = await notifySocket();
    // 400 ms WatchdogSec: a ping every 200 ms
    const gw = await gateway({ NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000' });
    await waitFor(() => sock.messages.length >= 1, 30_000, 'READY=1');
    expect(sock.messages[0]?.text).toBe('READY=1\nSTATUS=ready');
    // READY=1 came after the listeners were bound and the outbox opened: both answer at once, no retry
    expect(await connects(gw.hl7Port)).toBe(true);
    const ready = await fetch(`http://127.0.0.1:${gw.adminPort}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, reasons: [], pid: gw.child.pid });

    await waitFor(() => sock.messages.length >= 4, 30_000, 'three watchdog pings');
    expect(sock.messages.slice(1, 4).map((m) => m.text)).toEqual(['WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);
    // as root, systemd-notify sends with the gateway's own pid (the unit's main PID), else with its own
    if (process.getuid?.() === 0) expect(sock.messages.slice(0, 4).map((m) => m.pid)).toEqual(Array(4).fill(gw.child.pid));

    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    await waitFor(() => sock.messages.some((m) => m.text.startsWith('STOPPING=1')), 10_000, 'STOPPING=1');
    const after = sock.messages.slice(sock.messages.findIndex((m) => m.text.startsWith('STOPPING=1')));
    expect(after.map((m) => m.text)).toEqual(['STOPPING=1\nSTATUS=stopping: in-flight messages finish first']);
    expect(sock.messages.slice(1, -1).every((m) => m.text === 'WATCHDOG=1')).toBe(true);
    // every message waited for its barrier: systemd-notify's guard against the sender exiting first
    expect(sock.barriers()).toBe(sock.messages.length);
    expect(gw.err()).not.toMatch(/systemd notify/);
  });

  it('without systemd-notify on PATH it says so once, with what to do, and keeps running', async () => {
    const gw = await gateway({ NOTIFY_SOCKET: join(tmpdir(), 'ewml-no-such-notify.sock'), WATCHDOG_USEC: '200000', PATH: '/nonexistent' });
    await waitFor(() => gw.err().includes('systemd notify'), 30_000, 'the warning');
    const ready = await fetch(`http://127.0.0.1:${gw.adminPort}/ready`);
    expect(ready.status).toBe(200);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    const warnings = gw
      .err()
      .split('\n')
      .filter((l) => l.includes('systemd notify'));
    expect(warnings).toEqual([
      "warning: systemd notify: NOTIFY_SOCKET is set but systemd-notify is not on PATH, so systemd is not told the gateway is ready or alive: it will stop the service after TimeoutStartSec (Type=notify). What to do: install systemd's systemd-notify (package systemd), or run the unit with Type=simple and without WatchdogSec",
    ]);
  });

  it('without NOTIFY_SOCKET it sends nothing and says nothing', async () => {
    const sock = await notifySocket();
    const gw = await gateway({ WATCHDOG_USEC: '200000', NOTIFY_SOCKET: '' });
    await waitFor(() => gw.err().includes(' running — '), 30_000, 'the banner');
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(sock.messages).toEqual([]);
    expect(gw.err()).not.toMatch(/systemd notify/);
  });
});

describe.skipIf(!canRun)('the notifier, tick by tick (manual clock, real socket, real systemd-notify)', () => {
  it('keeps pinging while merely not ready, stops once unhealthy past wedgedAfterMs, resumes on recovery', async () => {
    const sock = await notifySocket();
    const clock = createManualClock();
    let health: ServiceHealth = { healthy: true, status: 'ready' };
    const warnings: string[] = [];
    const n = createServiceNotifier({
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '2000000' },
      warn: (l) => warnings.push(l),
      health: () => health,
      clock,
      wedgedAfterMs: 2000,
    });
    cleanups.push(() => n.close());
    expect(n.watchdogIntervalMs).toBe(1000);
    const tick = async () => {
      clock.advance(1000);
      await n.idle();
    };
    n.ready();
    await n.idle();
    await tick();
    health = { healthy: true, status: 'not ready:\n127.0.0.1:2575 is already in use' };
    await tick();
    await tick();
    health = { healthy: false, status: 'outbox writer restarting' };
    await tick(); // unhealthy since now: still pinging
    await tick(); // 1 s unhealthy
    await tick(); // 2 s: wedged, pings stop
    await tick();
    await tick();
    health = { healthy: true, status: 'ready' };
    await tick();
    n.stopping();
    await n.idle();
    await waitFor(() => sock.messages.some((m) => m.text.startsWith('STOPPING=1')), 10_000, 'STOPPING=1');
    expect(sock.messages.map((m) => m.text)).toEqual([
      'READY=1\nSTATUS=ready',
      'WATCHDOG=1',
      'WATCHDOG=1\nSTATUS=not ready: 127.0.0.1:2575 is already in use',
      'WATCHDOG=1',
      'WATCHDOG=1\nSTATUS=outbox writer restarting',
      'WATCHDOG=1',
      'STATUS=wedged: outbox writer restarting (watchdog pings stopped; systemd restarts the gateway)',
      'WATCHDOG=1\nSTATUS=ready',
      'STOPPING=1\nSTATUS=stopping: in-flight messages finish first',
    ]);
    expect(warnings).toEqual([]);
    // after stopping no tick is pending
    expect(clock.pending()).toBe(0);
  });

  it('a health check that throws counts as unhealthy, its message as the status', async () => {
    const sock = await notifySocket();
    const clock = createManualClock();
    const n = createServiceNotifier({
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '2000000' },
      warn: () => undefined,
      health: () => {
        throw new Error('outbox is closed');
      },
      clock,
      wedgedAfterMs: 1000,
    });
    cleanups.push(() => n.close());
    n.ready();
    await n.idle();
    clock.advance(1000);
    await n.idle();
    clock.advance(1000);
    await n.idle();
    n.stopping();
    await n.idle();
    await waitFor(() => sock.messages.length === 4, 10_000, 'four messages');
    expect(sock.messages.map((m) => m.text)).toEqual([
      'READY=1\nSTATUS=health check failed: outbox is closed',
      'WATCHDOG=1',
      'STATUS=wedged: health check failed: outbox is closed (watchdog pings stopped; systemd restarts the gateway)',
      'STOPPING=1\nSTATUS=stopping: in-flight messages finish first',
    ]);
  });

  it('a socket nobody listens on: systemd-notify fails, said once with its message', async () => {
    const clock = createManualClock();
    const warnings: string[] = [];
    const n = createServiceNotifier({
      env: { NOTIFY_SOCKET: join(tmpdir(), 'ewml-nobody-here.sock'), WATCHDOG_USEC: '2000000' },
      warn: (l) => warnings.push(l),
      health: () => ({ healthy: true, status: 'ready' }),
      clock,
    });
    cleanups.push(() => n.close());
    n.ready();
    await n.idle();
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await n.idle();
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: systemd notify: systemd-notify READY=1 STATUS=ready failed \(exit 1\): .*No such file or directory/,
    );
    expect(warnings[0]).toContain('NotifyAccess=all');
  });
});

describe('watchdogIntervalMs (sd_watchdog_enabled rules)', () => {
  it('is half of WATCHDOG_USEC, for this pid only', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '1e6' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
  });
  it('without NOTIFY_SOCKET nothing is enabled, whatever WATCHDOG_USEC says', () => {
    const n = createServiceNotifier({
      env: { WATCHDOG_USEC: '2000000' },
      warn: () => undefined,
      health: () => ({ healthy: true, status: '' }),
    });
    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeUndefined();
    n.ready();
    n.close();
  });
});
