/**
 * What a starting gateway does with a switch-over that state.json says is not decided yet:
 *
 * - **self-gate**: this process is the new version and nobody judges it — the service manager
 *   started it (restart mode: Windows, where the service wrapper owns the process), or the old
 *   process that was judging it is gone (killed, power cut). It judges its own gate: ready twice in
 *   a row within `updates.healthWindowSeconds`, then the update is committed; otherwise it puts the
 *   previous executable back and exits non-zero, and the service manager starts the previous one.
 * - **supervised**: the old process started this one and judges it; this one waits for the verdict.
 * - **interrupted**: this process is the old version, started again before any verdict (a power cut
 *   or a crash during the switch-over): the switch-over did not happen; it is recorded as rolled back.
 */
import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../gateway/crypto/key-file.ts';
import { pidAlive } from '../gateway/data-lease.ts';
import { holdMs, restore, UPDATE_FROM_ENV } from './switch-over.ts';
import { appendHistory, readUpdateState, writeUpdateState, type UpdateState } from './update-state.ts';

export type StartVerdict =
  | { kind: 'none' }
  | { kind: 'self-gate'; state: UpdateState }
  | { kind: 'supervised'; state: UpdateState }
  | { kind: 'interrupted'; state: UpdateState };

export function startVerdict(
  dataDir: string,
  version: string,
  env: Readonly<Record<string, string | undefined>>,
  isAlive: (pid: number) => boolean = pidAlive,
): StartVerdict {
  const s = readUpdateState(dataDir);
  if (!s || s.outcome || (s.phase !== 'switching' && s.phase !== 'probation')) return { kind: 'none' };
  if (s.to === version) {
    const supervised = s.mode !== 'restart' && env[UPDATE_FROM_ENV] === s.from && s.supervisorPid !== undefined && isAlive(s.supervisorPid);
    return { kind: supervised ? 'supervised' : 'self-gate', state: s };
  }
  if (s.from === version) return { kind: 'interrupted', state: s };
  return { kind: 'none' };
}

/** The old version started again before a verdict: the switch-over is recorded as rolled back. */
export function markInterrupted(dataDir: string, s: UpdateState, now: number): void {
  const reason = `the switch-over to ${s.to} was interrupted (a crash or power cut) before the new version passed its gate; ${s.from} runs`;
  writeUpdateState(dataDir, {
    ...s,
    phase: 'rolled-back',
    outcome: 'rolled-back',
    reason,
    reported: false,
    at: new Date(now).toISOString(),
  });
  appendHistory(dataDir, { at: new Date(now).toISOString(), event: 'interrupted', from: s.from, to: s.to, reason });
}

export interface SelfGateOptions {
  dataDir: string;
  state: UpdateState;
  windowMs: number;
  ready(): { ready: boolean; reasons: string[] };
  /** Whether this gateway's sink is connected (checked when the state says the old one's was). */
  sinkConnected?: () => boolean;
  platform?: NodeJS.Platform;
  now?: () => number;
  pollMs?: number;
}

/** Judges this process's own gate; on a failure the previous executable is back in place when it resolves. */
export async function selfGate(o: SelfGateOptions): Promise<{ passed: true } | { passed: false; reason: string }> {
  const now = o.now ?? Date.now;
  const deadline = now() + o.windowMs;
  const hold = holdMs(o.windowMs);
  let readySince: number | undefined;
  let looks = 0;
  let last = 'not ready';
  while (now() < deadline) {
    let r: { ready: boolean; reasons: string[] };
    try {
      r = o.ready();
    } catch (e) {
      r = { ready: false, reasons: [`its status could not be read (${(e as Error).message})`] };
    }
    if (r.ready && o.state.requireSink && o.sinkConnected && !o.sinkConnected())
      r = { ready: false, reasons: ['its sink did not connect (the old version was connected)'] };
    if (r.ready) {
      readySince ??= now();
      looks++;
    } else {
      readySince = undefined;
      looks = 0;
      last = `not ready: ${r.reasons.join('; ')}`;
    }
    if (readySince !== undefined && looks >= 2 && now() - readySince >= hold) {
      const at = new Date(now()).toISOString();
      writeUpdateState(o.dataDir, { ...o.state, phase: 'committed', outcome: 'updated', reported: false, at });
      appendHistory(o.dataDir, { at, event: 'applied', from: o.state.from, to: o.state.to });
      return { passed: true };
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
  const reason = `it did not pass its health gate within ${Math.round(o.windowMs / 1000)} s: ${last}`;
  restore(o.state.executable, o.state.previous, o.platform ?? process.platform);
  const at = new Date(now()).toISOString();
  writeUpdateState(o.dataDir, { ...o.state, phase: 'rolled-back', outcome: 'rolled-back', reason, reported: false, at });
  appendHistory(o.dataDir, { at, event: 'rolled-back', from: o.state.from, to: o.state.to, reason });
  return { passed: false, reason };
}

/**
 * Restart mode's marker beside the executable, `<exe>.probation.json`: written by the old process
 * once the new file is in place, counted by every start of the new version before it reads its
 * config, removed when its gate decided. A start that finds a count already taken knows the last
 * start of this version ended with no verdict — it exited (a config it refuses, a migration that
 * failed, a crash), hung or was killed before its gate — and puts the previous executable back
 * before anything else can fail: the service manager then starts the previous version.
 */
export interface ProbationMarker {
  from: string;
  to: string;
  previous: string;
  /** The data folder, as the old version's config named it (this version may not be able to read its config). */
  dataDir: string;
  starts: number;
}

export const probationMarkerOf = (exe: string): string => `${exe}.probation.json`;

export function writeProbationMarker(exe: string, m: ProbationMarker): void {
  writeFileAtomic(probationMarkerOf(exe), Buffer.from(`${JSON.stringify(m)}\n`));
}

export function removeProbationMarker(exe: string): void {
  rmSync(probationMarkerOf(exe), { force: true });
}

/** At the very start of `start`: counts this start, or restores the previous executable (returns why). */
export function launchGuard(
  exe: string | undefined,
  version: string,
  o: { platform?: NodeJS.Platform; now?: () => number } = {},
): { restored: false } | { restored: true; reason: string } {
  if (!exe) return { restored: false };
  const file = probationMarkerOf(exe);
  let m: ProbationMarker;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as ProbationMarker;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { restored: false };
    // written atomically: unreadable means a disk fault; it cannot be trusted to restore anything
    rmSync(file, { force: true });
    return { restored: false };
  }
  if (m.to !== version) {
    // the previous version runs (restored, or never switched): the marker is stale
    removeProbationMarker(exe);
    return { restored: false };
  }
  if (m.starts < 1) {
    writeProbationMarker(exe, { ...m, starts: m.starts + 1 });
    return { restored: false };
  }
  const reason = `${m.to} did not reach its health gate: its last start ended (it exited, hung or was stopped) before it was judged`;
  restore(exe, m.previous, o.platform ?? process.platform);
  removeProbationMarker(exe);
  const at = new Date((o.now ?? Date.now)()).toISOString();
  const s = readUpdateState(m.dataDir);
  if (s && !s.outcome && s.to === m.to)
    writeUpdateState(m.dataDir, { ...s, phase: 'rolled-back', outcome: 'rolled-back', reason, reported: false, at });
  appendHistory(m.dataDir, { at, event: 'rolled-back', from: m.from, to: m.to, reason });
  return { restored: true, reason };
}
