/**
 * The switch-over (issue 16 point 7): a verified new executable replaces the running one, the new
 * process takes the data folder's lease from the old one, and it must pass its health gate within a
 * window, else the old one restores itself.
 *
 * Run by the old process, which stays alive as the switch-over's supervisor until the gate decides:
 * 1. **Preflight**: the staged file runs `version` and must answer the manifest's version (a file
 *    that cannot start is refused before anything stops).
 * 2. `state.json` says `switching` (a process started after a power cut knows where this stopped).
 * 3. The old gateway stops: listeners close after their in-flight messages are acknowledged (or not
 *    acknowledged, so the sender resends), the outbox is closed. Nothing is written from here on.
 * 4. The lease is promised to the successor (`handOver`: a token; no moment with two writers).
 * 5. The file: Linux keeps the old executable as `<exe>.previous` (a hard link, so the running file
 *    is never absent) and renames the staged file over `<exe>` (atomic); Windows renames the running
 *    `.exe` aside to `<exe>.previous` (a running `.exe` can be renamed, not replaced) and the staged
 *    one to `<exe>`.
 * 6. The new process starts with the token (`EWML_LEASE_HANDOVER`) and the same arguments.
 * 7. **Health gate**: within the window its `/ready` must answer 200 with the new version and its
 *    pid, twice in a row, and when the old gateway's sink was connected, the new one's must be too;
 *    the new process must not exit. Then the old process leaves it running and exits.
 * 8. **Rollback** otherwise: the new process is stopped (SIGTERM, then SIGKILL), `<exe>.previous`
 *    is renamed back over `<exe>`, the old process takes its lease back and starts its gateway again,
 *    and the reason goes to history.jsonl, the log and up/status.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDir } from '../gateway/crypto/key-file.ts';
import { HANDOVER_ENV } from '../gateway/data-lease.ts';
import { GatewayError } from '../gateway/errors.ts';
import { writeProbationMarker } from './probation.ts';
import { appendHistory, writeUpdateState, type UpdateState } from './update-state.ts';

/** The environment variable that tells the new process which version it replaces (its status shows it). */
export const UPDATE_FROM_ENV = 'EWML_UPDATE_FROM';

export interface SwitchOverOptions {
  dataDir: string;
  /** The executable the service runs: replaced by the staged one. */
  executable: string;
  /** The verified new executable (size and SHA-256 checked against the signed manifest). */
  staged: string;
  from: string;
  to: string;
  /** The new process's arguments (this process's, e.g. `start --config FILE`). */
  args: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  healthWindowMs: number;
  /** The admin API's `/ready` (open) and `/status` (bearer token) of this gateway's config. */
  readyUrl: string;
  statusUrl?: string;
  adminToken?: string;
  /** The old gateway's sink was connected: the new one's must connect within the window too. */
  requireSink: boolean;
  /** Stops this process's gateway (listeners after their in-flight acks, relay, outbox). */
  stopGateway(): Promise<void>;
  /** Promises the lease to the successor; returns the token it must show. */
  handOver(): string;
  /** After a rollback: takes the lease back (with the hand-over token) and starts this gateway again. */
  resumeGateway(handOverToken: string): Promise<void>;
  log(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void;
  /** The `gateway.update` command that asked for it, kept in state.json for the outcome report. */
  commandId?: string;
  platform?: NodeJS.Platform;
  now?: () => number;
  /** Between two looks at the new process's health (default 500 ms). */
  pollMs?: number;
  /**
   * `hand-over` (Linux default): this process starts the new one and judges its gate. `restart`
   * (Windows default, where the service wrapper owns the process): the file is put in place, this
   * process exits through `exitForRestart` and the service manager starts the new one, which judges
   * its own gate (probation.ts) and restores the previous file if it fails.
   */
  mode?: 'hand-over' | 'restart';
  /** Restart mode: releases the lease and exits non-zero, so the service manager starts the executable again. */
  exitForRestart?: () => void;
}

export type SwitchOutcome = { outcome: 'updated'; pid: number } | { outcome: 'rolled-back'; reason: string } | { outcome: 'restarting' };

/** How long a new version must stay ready before its gate passes: a third of the window, at most 10 s (a crash soon after ready fails it). */
export function holdMs(windowMs: number): number {
  return Math.min(10_000, Math.floor(windowMs / 3));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `exe version` (bounded); returns what it printed or throws GW_UPDATE_REFUSED. */
export function preflight(exe: string, expected: string, env: Readonly<Record<string, string | undefined>>): void {
  const r = spawnSync(exe, ['version'], { encoding: 'utf8', timeout: 30_000, env: { ...env, [HANDOVER_ENV]: undefined } });
  if (r.error)
    throw new GatewayError(
      'GW_UPDATE_REFUSED',
      `the new executable ${exe} does not run: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`,
    );
  const said = (r.stdout ?? '').trim();
  if (r.status !== 0 || said !== expected)
    throw new GatewayError(
      'GW_UPDATE_REFUSED',
      `the new executable answered "version" with ${r.status === 0 ? `"${said.slice(0, 80)}"` : `exit code ${String(r.status ?? r.signal)}`}, not ${expected}: it was not built from the release the manifest names`,
    );
}

/** Puts the staged file at `exe` and keeps the running one as `previous`. */
function place(exe: string, staged: string, previous: string, platform: NodeJS.Platform): void {
  rmSync(previous, { force: true });
  if (platform === 'win32') {
    renameRetrying(exe, previous);
    renameRetrying(staged, exe);
  } else {
    linkSync(exe, previous);
    renameSync(staged, exe);
  }
  fsyncDir(dirname(exe));
}

/**
 * Windows: a file just written is often held a moment by an antivirus scan (EBUSY, EPERM, EACCES);
 * a rename is tried again for up to ~5 s before it counts as failed.
 */
function renameRetrying(from: string, to: string): void {
  for (let i = 0; ; i++) {
    try {
      renameSync(from, to);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (i >= 25 || (code !== 'EBUSY' && code !== 'EPERM' && code !== 'EACCES')) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
}

/**
 * Puts `previous` back at `exe`, judged by what exists, so a switch-over cut at any step ends with
 * an executable at `exe`: no `previous` means nothing was moved yet (the old file is still at
 * `exe`); Windows moves a new `exe` aside to `<exe>.failed` first (a running .exe cannot be
 * replaced, only renamed); Linux renames over it (atomic).
 */
export function restore(exe: string, previous: string, platform: NodeJS.Platform): void {
  if (!existsSync(previous)) {
    if (existsSync(exe)) return;
    throw new Error(`neither ${exe} nor ${previous} exists: reinstall the gateway (eyewear-gateway install)`);
  }
  if (platform === 'win32' && existsSync(exe)) {
    rmSync(`${exe}.failed`, { force: true });
    renameRetrying(exe, `${exe}.failed`);
  }
  renameRetrying(previous, exe);
  fsyncDir(dirname(exe));
}

async function fetchJson(url: string, token?: string): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON: the status alone decides
    }
    return { status: res.status, body };
  } catch {
    return undefined; // not listening (yet)
  }
}

/** Waits until the child passes the gate, exits, or the window ends; returns undefined when it passed, else why not. */
async function healthGate(child: ChildProcess, o: SwitchOverOptions): Promise<string | undefined> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.healthWindowMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `the new version exited (${signal ? `signal ${signal}` : `code ${String(code)}`}) during its health gate`;
  });
  // ready (and connected, when the old one was) without a break for holdMs: a crash soon after ready fails the gate
  const hold = holdMs(o.healthWindowMs);
  let readySince: number | undefined;
  let looks = 0;
  let last = 'it never answered /ready';
  while (now() < deadline) {
    if (exited) return exited;
    const r = await fetchJson(o.readyUrl);
    if (exited) return exited;
    let ok = false;
    if (!r) last = `its admin API (${o.readyUrl}) did not answer`;
    else if (r.body.pid !== child.pid || r.body.version !== o.to)
      last = `${o.readyUrl} answered for pid ${String(r.body.pid)} version ${String(r.body.version)}, not the new process`;
    else if (r.status !== 200) last = `not ready: ${((r.body.reasons as string[] | undefined) ?? []).join('; ') || `HTTP ${r.status}`}`;
    else if (o.requireSink && o.statusUrl) {
      const s = await fetchJson(o.statusUrl, o.adminToken);
      ok = (s?.body.sink as { connected?: boolean } | undefined)?.connected === true;
      if (!ok) last = 'its sink did not connect (the old version was connected)';
    } else ok = true;
    if (ok) {
      readySince ??= now();
      looks++;
    } else {
      readySince = undefined;
      looks = 0;
    }
    if (readySince !== undefined && looks >= 2 && now() - readySince >= hold) return exited;
    await sleep(o.pollMs ?? 500);
  }
  return exited ?? `it did not pass its health gate within ${Math.round(o.healthWindowMs / 1000)} s: ${last}`;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(t);
}

export async function switchOver(o: SwitchOverOptions): Promise<SwitchOutcome> {
  const platform = o.platform ?? process.platform;
  const now = o.now ?? Date.now;
  const previous = `${o.executable}.previous`;
  const at = () => new Date(now()).toISOString();
  const state: UpdateState = {
    phase: 'switching',
    from: o.from,
    to: o.to,
    executable: o.executable,
    previous,
    at: at(),
    ...(o.commandId ? { commandId: o.commandId } : {}),
    requireSink: o.requireSink,
  };
  preflight(o.staged, o.to, o.env);
  writeUpdateState(o.dataDir, state);
  o.log('info', { code: 'GW_UPDATE', from: o.from, to: o.to }, 'update: stopping this version to hand over to the new one');
  const mode = o.mode ?? (platform === 'win32' ? 'restart' : 'hand-over');
  await o.stopGateway();
  // promised even in restart mode: a rollback takes it back with the token; an exit leaves it to the next start (its pid gone)
  const token = o.handOver();
  let child: ChildProcess | undefined;
  let reason: string | undefined;
  try {
    place(o.executable, o.staged, previous, platform);
  } catch (e) {
    reason = `the new executable could not be put in place: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (!reason && mode === 'restart') {
    // the new version judges its own gate once the service manager started it (probation.ts)
    writeUpdateState(o.dataDir, { ...state, phase: 'probation', mode: 'restart', at: at() });
    writeProbationMarker(o.executable, { from: o.from, to: o.to, previous, dataDir: o.dataDir, starts: 0 });
    o.log(
      'info',
      { code: 'GW_UPDATE', from: o.from, to: o.to },
      'update: the new executable is in place; exiting for the service manager to start it',
    );
    o.exitForRestart?.();
    return { outcome: 'restarting' };
  }
  if (!reason) {
    try {
      child = spawn(o.executable, [...o.args], {
        env: { ...o.env, [HANDOVER_ENV]: token, [UPDATE_FROM_ENV]: o.from },
        detached: platform !== 'win32',
        stdio: 'inherit',
      });
      const started = await new Promise<string | undefined>((r) => {
        child!.once('spawn', () => r(undefined));
        child!.once('error', (e) => r((e as NodeJS.ErrnoException).code ?? e.message));
      });
      if (started) reason = `the new executable did not start: ${started}`;
    } catch (e) {
      reason = `the new executable did not start: ${(e as Error).message}`;
    }
  }
  if (!reason && child) {
    writeUpdateState(o.dataDir, { ...state, phase: 'probation', mode: 'hand-over', supervisorPid: process.pid, at: at() });
    reason = await healthGate(child, o);
  }
  if (!reason && child) {
    child.unref();
    writeUpdateState(o.dataDir, { ...state, phase: 'committed', outcome: 'updated', at: at(), reported: false });
    appendHistory(o.dataDir, { at: at(), event: 'applied', from: o.from, to: o.to });
    o.log(
      'info',
      { code: 'GW_UPDATE', from: o.from, to: o.to, pid: child.pid },
      'update: the new version passed its health gate; this process exits',
    );
    return { outcome: 'updated', pid: child.pid! };
  }
  // rollback: the new process goes, the old file comes back, this process takes its folder again
  const why = reason ?? 'unknown';
  o.log('error', { code: 'GW_UPDATE_ROLLED_BACK', from: o.from, to: o.to, reason: why }, 'update: rolling back to the previous version');
  if (child) await stopChild(child);
  restore(o.executable, previous, platform);
  writeUpdateState(o.dataDir, { ...state, phase: 'rolled-back', outcome: 'rolled-back', reason: why, at: at(), reported: false });
  appendHistory(o.dataDir, { at: at(), event: 'rolled-back', from: o.from, to: o.to, reason: why });
  await o.resumeGateway(token);
  return { outcome: 'rolled-back', reason: why };
}
