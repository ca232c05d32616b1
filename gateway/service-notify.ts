/**
 * Tells systemd how the gateway is doing when it runs as a `Type=notify` service (sd_notify(3)):
 * `READY=1` once it is up, `WATCHDOG=1` every half `WatchdogSec` while it is healthy, `STOPPING=1`
 * when it stops, and a short `STATUS=` line for `systemctl status`.
 *
 * Why `systemd-notify` and not the socket itself: the notify socket is a unix *datagram* socket
 * (`NOTIFY_SOCKET`, a path or `@abstract`), which Node cannot open without a native addon. The
 * unit has `NotifyAccess=all`, so a helper process in the service's cgroup may speak for it, and
 * systemd-notify (since v246) waits with a `BARRIER=1` until systemd has read the message, so the
 * helper exiting first cannot make systemd drop it. `--pid` is not passed: it would send `MAINPID=`,
 * and the gateway already is the unit's main process (ExecStart runs it directly).
 *
 * Never in the way of the gateway: every message is a spawned process with a timeout, at most one
 * runs at a time (a watchdog ping due while one runs is skipped: the next tick sends one), and a
 * missing systemd-notify or a failing send is said once on stderr (the journal) with what to do.
 *
 * Wedged, not just unhappy: a port in use or an unreachable cloud is retried inside the gateway and
 * a restart would not help, so the watchdog keeps being pinged (STATUS says what is wrong). It stops
 * when the health check itself fails (the outbox cannot be read, its writer thread will not come
 * back) for longer than `wedgedAfterMs`, or when the event loop is blocked (then no timer fires at
 * all): systemd then kills and restarts the gateway after `WatchdogSec`.
 */
import { spawn } from 'node:child_process';
import { type Clock, systemClock, type TimerHandle } from './clock.ts';

/** What the watchdog tick learns: whether to keep pinging, and the status line. */
export interface ServiceHealth {
  healthy: boolean;
  status: string;
}

export interface ServiceNotifierOptions {
  /** The environment systemd set: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
  env: Readonly<Record<string, string | undefined>>;
  /** One line for the operator (stderr, which systemd sends to the journal). */
  warn: (line: string) => void;
  /** Called on every watchdog tick; a throw counts as unhealthy, with its message as the status. */
  health: () => ServiceHealth;
  clock?: Clock;
  /** Default `systemd-notify`, found on PATH. */
  command?: string;
  /** This process (WATCHDOG_PID names the one process that must ping). Default process.pid. */
  pid?: number;
  /** Unhealthy this long before the pings stop (default 60 s: longer than the outbox writer's 30 s restart back-off). */
  wedgedAfterMs?: number;
  /** A systemd-notify still running after this is killed (default 10 s; its own barrier waits 5 s). */
  timeoutMs?: number;
}

export interface ServiceNotifier {
  /** Whether NOTIFY_SOCKET is set (otherwise every call does nothing). */
  readonly enabled: boolean;
  /** The watchdog ping interval (WATCHDOG_USEC / 2), when systemd asked for pings. */
  readonly watchdogIntervalMs: number | undefined;
  /** `READY=1` with the status, then the watchdog pings start. Does not wait for the send. */
  ready(): void;
  /** `STOPPING=1`; the watchdog pings end. Does not wait for the send. */
  stopping(): void;
  /** Clears the timer (idempotent). */
  close(): void;
  /** Resolves when no message is being sent (tests, and a caller that wants to wait at exit). */
  idle(): Promise<void>;
}

const DEFAULT_WEDGED_AFTER_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const STATUS_MAX = 200;

/** A STATUS= value on one line: systemd-notify would split a newline into another variable. */
const statusLine = (s: string) => {
  const one = s.replace(/[\r\n\t]+/g, ' ').trim();
  return one.length > STATUS_MAX ? `${one.slice(0, STATUS_MAX - 1)}…` : one;
};

/** WATCHDOG_USEC as sd_watchdog_enabled(3) reads it: a positive integer, for this pid when WATCHDOG_PID is set. */
export function watchdogIntervalMs(env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[1-9][0-9]*$/.test(usec)) return undefined;
  const forPid = env.WATCHDOG_PID;
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

export function createServiceNotifier(o: ServiceNotifierOptions): ServiceNotifier {
  const clock = o.clock ?? systemClock;
  const command = o.command ?? 'systemd-notify';
  const socket = o.env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  const interval = enabled ? watchdogIntervalMs(o.env, o.pid ?? process.pid) : undefined;
  const wedgedAfterMs = o.wedgedAfterMs ?? DEFAULT_WEDGED_AFTER_MS;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  let inFlight: Promise<void> | undefined;
  let unavailable = false;
  const warned = new Set<string>();
  const warnOnce = (key: string, line: string) => {
    if (warned.has(key)) return;
    warned.add(key);
    o.warn(line);
  };
  let timer: TimerHandle | undefined;
  let watching = false;
  let lastStatus: string | undefined;
  let unhealthySince: number | undefined;

  /** One systemd-notify run; resolves always (a failure is warned about, never thrown). */
  const run = (vars: string[]): Promise<void> =>
    new Promise<void>((resolve) => {
      let stderr = '';
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(kill);
        resolve();
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(command, vars, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: socket } });
      } catch (e) {
        warnOnce(
          'spawn',
          `warning: systemd notify: cannot run ${command}: ${(e as Error).message}; systemd will not hear from this gateway`,
        );
        resolve();
        return;
      }
      const kill = clock.setTimeout(
        () => {
          child.kill('SIGKILL');
          warnOnce(
            'timeout',
            `warning: systemd notify: ${command} did not finish within ${timeoutMs} ms (systemd not reading ${socket}?); killed it, later messages are still tried`,
          );
          done();
        },
        timeoutMs,
        { unref: true },
      );
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 500) stderr += d;
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') {
          unavailable = true;
          warnOnce(
            'missing',
            `warning: systemd notify: NOTIFY_SOCKET is set but ${command} is not on PATH, so systemd is not told the gateway is ready or alive: it will stop the service after TimeoutStartSec (Type=notify). What to do: install systemd's systemd-notify (package systemd), or run the unit with Type=simple and without WatchdogSec`,
          );
        } else
          warnOnce(
            'spawn',
            `warning: systemd notify: cannot run ${command}: ${e.code ?? e.message}; systemd will not hear from this gateway`,
          );
        done();
      });
      child.once('exit', (code, signal) => {
        if (code !== 0 && !settled) {
          warnOnce(
            'failed',
            `warning: systemd notify: ${command} ${vars.join(' ')} failed (${code === null ? `signal ${signal}` : `exit ${code}`}): ${statusLine(stderr) || 'no message'}; check NOTIFY_SOCKET (${socket}) and that the unit has NotifyAccess=all`,
          );
        }
        done();
      });
    });

  /** Sends unless one is on its way (then `skippable` messages are dropped and the others wait their turn). */
  const send = (vars: string[], skippable: boolean) => {
    if (!enabled || unavailable) return;
    if (inFlight && skippable) return;
    const previous = inFlight ?? Promise.resolve();
    const mine: Promise<void> = previous.then(() => (unavailable ? undefined : run(vars)));
    inFlight = mine;
    void mine.then(() => {
      if (inFlight === mine) inFlight = undefined;
    });
  };

  const withStatus = (vars: string[], status: string) => {
    const s = statusLine(status);
    if (s === lastStatus) return vars;
    lastStatus = s;
    return [...vars, `STATUS=${s}`];
  };

  const check = (): ServiceHealth => {
    try {
      return o.health();
    } catch (e) {
      return { healthy: false, status: `health check failed: ${(e as Error).message}` };
    }
  };

  const tick = () => {
    timer = undefined;
    if (!watching) return;
    const h = check();
    const now = clock.now();
    if (h.healthy) unhealthySince = undefined;
    else unhealthySince ??= now;
    const wedged = unhealthySince !== undefined && now - unhealthySince >= wedgedAfterMs;
    if (wedged) {
      const vars = withStatus([], `wedged: ${h.status} (watchdog pings stopped; systemd restarts the gateway)`);
      if (vars.length > 0) send(vars, false);
    } else send(withStatus(['WATCHDOG=1'], h.status), true);
    arm();
  };
  const arm = () => {
    if (interval !== undefined && watching) timer = clock.setTimeout(tick, interval, { unref: true });
  };

  return {
    enabled,
    watchdogIntervalMs: interval,
    ready() {
      if (!enabled || watching) return;
      send(withStatus(['READY=1'], check().status), false);
      watching = true;
      arm();
    },
    stopping() {
      watching = false;
      clock.clearTimeout(timer);
      timer = undefined;
      send(withStatus(['STOPPING=1'], 'stopping: in-flight messages finish first'), false);
    },
    close() {
      watching = false;
      clock.clearTimeout(timer);
      timer = undefined;
    },
    idle: async () => {
      while (inFlight) await inFlight;
    },
  };
}

/** The gateway's part a health check reads (its `/status` composition). */
export interface StatusSource {
  status(): Record<string, unknown>;
}

/**
 * The gateway's health for the watchdog: unhealthy when its status cannot be composed (the outbox
 * cannot be read) or the outbox writer thread is restarting; the status line is `/ready`'s answer.
 */
export function gatewayServiceHealth(gw: StatusSource): ServiceHealth {
  const s = gw.status() as { ready?: { ready: boolean; reasons: string[] }; outbox?: { writer?: string } };
  if (s.outbox?.writer === 'restarting') return { healthy: false, status: 'outbox writer restarting (writes refused meanwhile)' };
  const r = s.ready;
  if (!r || r.ready) return { healthy: true, status: 'ready' };
  const more = r.reasons.length > 1 ? ` (+${r.reasons.length - 1} more, see /ready)` : '';
  return { healthy: true, status: `not ready: ${r.reasons[0] ?? 'unknown'}${more}` };
}
