/**
 * One owner per data folder: the lease file `<dataDir>/gateway.lock`.
 *
 * Two gateway processes writing one outbox would each believe they own its rows (double delivery,
 * one deleting what the other still sends), so the second must refuse to start. No native addon
 * is needed and the same code runs on Linux and Windows:
 *
 * - **Take** (no lease file): the holder's JSON `{pid, startedAt, host, token, processStart?}` is
 *   written to a private temporary file, then hard-linked to `gateway.lock`. `link` fails with
 *   EEXIST when the name exists, so exactly one of any number of racing processes creates it, and
 *   nobody ever reads a half-written lease. Where hard links are not supported (FAT, some shares)
 *   an exclusive create (`wx`) stands in.
 * - **Refuse** (a live holder): `GW_DATA_DIR_IN_USE`, naming the holder's pid, host and the folder.
 *   Alive means `process.kill(pid, 0)` succeeds or fails with EPERM (a process of another user);
 *   ESRCH means gone. On Linux the holder's start time (`/proc/<pid>/stat`, field 22) is kept in
 *   the lease, so a pid the system has since given to another process is seen as gone too. On
 *   Windows (and macOS) there is no cheap start time without an addon: a reused pid keeps the lease
 *   looking alive and the start refuses; the message names the pid and the file, so a person can
 *   check that pid is no gateway and delete the file. A lease written on another host (a data folder
 *   on a share seen by two machines) cannot be checked from here and is always refused.
 * - **Take over** (a stale holder: gone, or its pid reused): under a short-lived guard file
 *   `gateway.lock.takeover` (taken the same exclusive way), the lease is re-read, and only if it is
 *   still the stale holder that was judged, a new lease is written to a temporary file and renamed
 *   over it (an atomic replace on both systems). It is then re-read to confirm this process won.
 *   Two takers of one stale lease: one gets the guard and replaces the lease; the other, on its next
 *   look, finds a live holder and refuses. A guard left by a taker that died is removed once its own
 *   pid is gone or it is older than {@link GUARD_STALE_MS}.
 * - **Release** removes the file only while it still names this holder (its token), so a process
 *   that lost or handed over its lease never deletes its successor's.
 * - **Hand-over** (the updater): the old process, its writers stopped, calls `handOver({toPid})`,
 *   which rewrites the lease with `handOver: {toPid, token}`; it passes the token to the new process
 *   (environment `EWML_LEASE_HANDOVER`, see {@link HANDOVER_ENV}). The new process's
 *   `acquireDataLease(dir, {handOverToken})` takes a lease whose hand-over names that token (and its
 *   pid, when `toPid` was given) even though the old process is still alive, by the same guarded
 *   replace. From `handOver` on, the old lease's `release()` does nothing: the lease is not its own
 *   any more. If the new process never comes, the lease names the old pid, and once that process
 *   has exited it is stale like any other.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GatewayError } from './errors.ts';

/** The lease file's name inside the data folder. */
export const LEASE_FILE = 'gateway.lock';
/** The environment variable that carries a hand-over token from the old process to the new one. */
export const HANDOVER_ENV = 'EWML_LEASE_HANDOVER';
/** A takeover guard older than this is left over from a taker that died in its few milliseconds of work. */
export const GUARD_STALE_MS = 10_000;

/** What the lease file holds. */
export interface LeaseHolder {
  pid: number;
  /** When this holder took the lease (ISO 8601). */
  startedAt: string;
  host: string;
  /** Random per lease: tells this holder from an earlier one with the same pid. */
  token: string;
  /** The holder's start time as the OS counts it (Linux: clock ticks since boot); absent where it cannot be read cheaply. */
  processStart?: string;
  /** Written by `handOver`: the process the lease is promised to and the token it must show. */
  handOver?: { toPid?: number; token: string; at: string };
}

export interface DataLease {
  /** The lease file. */
  readonly file: string;
  /** This process's lease as written. */
  readonly holder: LeaseHolder;
  /** Whether the lease file still names this holder (false after a hand-over was taken, or a release). */
  held(): boolean;
  /** Removes the lease file if it still names this holder and was not handed over; idempotent. Returns whether it removed it. */
  release(): boolean;
  /**
   * Promises the lease to the process that replaces this one (the updater's switch-over). Call it
   * after this process stopped writing; give the token to the new process ({@link HANDOVER_ENV}).
   */
  handOver(o?: { toPid?: number }): { token: string };
}

export interface AcquireOptions {
  /** The pid to write (default this process's). */
  pid?: number;
  now?: () => number;
  /** This machine's name (default `os.hostname()`). */
  host?: string;
  /** The token a previous owner wrote with `handOver` (read from {@link HANDOVER_ENV} by the CLI). */
  handOverToken?: string;
  /** Whether a process runs (default `process.kill(pid, 0)`: ESRCH gone, EPERM alive). */
  isAlive?: (pid: number) => boolean;
  /** A process's start time, to tell a reused pid (default: Linux `/proc/<pid>/stat`, else none). */
  processStartOf?: (pid: number) => string | undefined;
  /** Tests only: runs between judging a lease stale and replacing it (widens the window two takers race in). */
  beforeTakeOver?: () => void;
}

/** Whether a process with this pid runs. `kill(pid, 0)` sends nothing; it works the same on Windows. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Linux: field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot). Elsewhere, or when unreadable: undefined. */
export function linuxProcessStart(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces and parentheses itself
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

type Read = { kind: 'absent' } | { kind: 'damaged'; ageMs: number } | { kind: 'holder'; holder: LeaseHolder };

function readLease(file: string, now: number): Read {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  try {
    const h = JSON.parse(text) as LeaseHolder;
    if (Number.isInteger(h.pid) && typeof h.token === 'string' && typeof h.host === 'string') return { kind: 'holder', holder: h };
  } catch {
    // below
  }
  let ageMs = 0;
  try {
    ageMs = now - statSync(file).mtimeMs;
  } catch {
    return { kind: 'absent' };
  }
  return { kind: 'damaged', ageMs };
}

/** Creates `file` with `text` unless it exists: hard link of a complete temporary file, or `wx` where links are unsupported. */
function createExclusive(file: string, text: string, tmpTag: string): boolean {
  const tmp = `${file}.${tmpTag}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw e;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  try {
    writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Replaces `file` atomically (write a temporary file, rename it over). Windows may refuse a rename while a scanner holds the file: a few tries. */
function replaceAtomically(file: string, text: string, tmpTag: string): void {
  const tmp = `${file}.${tmpTag}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  for (let i = 0; ; i++) {
    try {
      renameSync(tmp, file);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (i >= 4 || (code !== 'EPERM' && code !== 'EBUSY' && code !== 'EACCES')) {
        try {
          unlinkSync(tmp);
        } catch {
          // nothing to clean
        }
        throw e;
      }
      sleepSync(20);
    }
  }
}

function removeIfToken(file: string, token: string, now: number): boolean {
  const r = readLease(file, now);
  if (r.kind !== 'holder' || r.holder.token !== token) return false;
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

/** A short synchronous pause (the lease is taken before anything else starts, so blocking is harmless). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function inUse(dataDir: string, file: string, h: LeaseHolder, why: string): GatewayError {
  return new GatewayError(
    'GW_DATA_DIR_IN_USE',
    `the data folder ${dataDir} is in use by the gateway process ${h.pid} on ${h.host} (since ${h.startedAt}); ${why}. Lease file: ${file}`,
    {
      details: { pid: h.pid, host: h.host, startedAt: h.startedAt, dataDir, file },
    },
  );
}

/**
 * Takes the data folder's lease, or throws `GW_DATA_DIR_IN_USE` naming the live holder's pid.
 * Synchronous: it runs before anything else touches the folder. Creates the folder if needed.
 */
export function acquireDataLease(dataDir: string, opts: AcquireOptions = {}): DataLease {
  const now = opts.now ?? Date.now;
  const isAlive = opts.isAlive ?? pidAlive;
  const processStartOf = opts.processStartOf ?? linuxProcessStart;
  const pid = opts.pid ?? process.pid;
  const host = opts.host ?? hostname();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, LEASE_FILE);
  const guard = `${file}.takeover`;
  const token = randomBytes(16).toString('hex');
  const processStart = processStartOf(pid);
  const mine: LeaseHolder = {
    pid,
    startedAt: new Date(now()).toISOString(),
    host,
    token,
    ...(processStart !== undefined ? { processStart } : {}),
  };
  const text = `${JSON.stringify(mine)}\n`;

  const sameHost = (h: LeaseHolder) => h.host.toLowerCase() === host.toLowerCase();
  /** Gone: not running, or its pid now belongs to a process started at another time. */
  const gone = (h: { pid: number; processStart?: string }) => {
    if (!isAlive(h.pid)) return true;
    if (h.processStart === undefined) return false;
    const current = processStartOf(h.pid);
    return current !== undefined && current !== h.processStart;
  };

  /** Replaces the lease under the guard if it still is `expected`; 'won', 'changed' (look again) or 'busy' (another taker). */
  const takeOver = (expected: LeaseHolder | 'damaged'): 'won' | 'changed' | 'busy' => {
    opts.beforeTakeOver?.();
    const guardText = `${JSON.stringify({ ...mine, startedAt: new Date(now()).toISOString() })}\n`;
    if (!createExclusive(guard, guardText, `${token}.guard`)) {
      const g = readLease(guard, now());
      const left =
        g.kind === 'damaged'
          ? g.ageMs > GUARD_STALE_MS
          : g.kind === 'holder' && (gone(g.holder) || now() - Date.parse(g.holder.startedAt) > GUARD_STALE_MS);
      if (left) {
        try {
          unlinkSync(guard);
        } catch {
          // another taker removed it first
        }
        return 'changed';
      }
      return 'busy';
    }
    try {
      const cur = readLease(file, now());
      const still = expected === 'damaged' ? cur.kind === 'damaged' : cur.kind === 'holder' && cur.holder.token === expected.token;
      if (!still) return 'changed';
      replaceAtomically(file, text, token);
      const after = readLease(file, now());
      return after.kind === 'holder' && after.holder.token === token ? 'won' : 'changed';
    } finally {
      removeIfToken(guard, token, now());
    }
  };

  let handedOver = false;
  let released = false;
  const lease: DataLease = {
    file,
    holder: mine,
    held: () => {
      const r = readLease(file, now());
      return r.kind === 'holder' && r.holder.token === token;
    },
    release() {
      if (released || handedOver) return false;
      released = true;
      return removeIfToken(file, token, now());
    },
    handOver(o = {}) {
      if (released || handedOver || !lease.held())
        throw new GatewayError(
          'GW_DATA_DIR_IN_USE',
          `cannot hand over the lease of ${dataDir}: this process (pid ${pid}) no longer holds it`,
        );
      const handToken = randomBytes(16).toString('hex');
      const promised: LeaseHolder = {
        ...mine,
        handOver: { ...(o.toPid !== undefined ? { toPid: o.toPid } : {}), token: handToken, at: new Date(now()).toISOString() },
      };
      replaceAtomically(file, `${JSON.stringify(promised)}\n`, `${token}.handover`);
      handedOver = true;
      return { token: handToken };
    },
  };

  /** Temporary files of takers killed mid-write (a SIGKILL during a start); a live taker's are milliseconds old. */
  const sweep = (): DataLease => {
    try {
      for (const n of readdirSync(dataDir)) {
        if (!n.startsWith(`${LEASE_FILE}.`) || !n.endsWith('.tmp')) continue;
        try {
          if (now() - statSync(join(dataDir, n)).mtimeMs > GUARD_STALE_MS) unlinkSync(join(dataDir, n));
        } catch {
          // gone already
        }
      }
    } catch {
      // the folder cannot be listed: litter stays, the lease holds
    }
    return lease;
  };

  // bounded: each round either settles or waits a little for another taker's few milliseconds of work
  let last: LeaseHolder | undefined;
  for (let round = 0; round < 100; round++) {
    if (createExclusive(file, text, token)) return sweep();
    const r = readLease(file, now());
    if (r.kind === 'absent') continue;
    if (r.kind === 'damaged') {
      // a lease cut short (a power cut before its bytes reached the disk); a fresh one may be mid-write with `wx`
      if (r.ageMs < 2000) {
        sleepSync(20);
        continue;
      }
      const t = takeOver('damaged');
      if (t === 'won') return sweep();
      if (t === 'busy') sleepSync(20);
      continue;
    }
    const h = r.holder;
    last = h;
    if (h.token === token) return sweep();
    const promisedToUs =
      opts.handOverToken !== undefined &&
      h.handOver?.token === opts.handOverToken &&
      (h.handOver.toPid === undefined || h.handOver.toPid === pid);
    if (!promisedToUs) {
      if (!sameHost(h))
        throw inUse(
          dataDir,
          file,
          h,
          `it was taken on another machine, whose processes cannot be checked from here; if no gateway runs there on this folder, delete the lease file`,
        );
      if (!gone(h)) throw inUse(dataDir, file, h, 'a second gateway on one data folder would send and delete the same records');
    }
    const t = takeOver(h);
    if (t === 'won') return sweep();
    if (t === 'busy') sleepSync(20);
  }
  throw last
    ? inUse(dataDir, file, last, 'the lease kept changing hands while this process tried to take it')
    : new GatewayError(
        'GW_DATA_DIR_IN_USE',
        `the lease of the data folder ${dataDir} could not be taken: it kept changing while this process tried (${file})`,
      );
}

/** The lease file's holder as written, if there is a readable one (for `status`, which checks whom it talks to). */
export function readDataLease(dataDir: string): LeaseHolder | undefined {
  const r = readLease(join(dataDir, LEASE_FILE), Date.now());
  return r.kind === 'holder' ? r.holder : undefined;
}
