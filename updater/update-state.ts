/**
 * What the updater remembers across processes, in `<dataDir>/update/`:
 * - `state.json` — the switch-over in progress or the last one: `{phase, from, to, executable,
 *   previous, at, outcome?, reason?, reported?}`, written atomically (temporary file, fsync, rename)
 *   before each step, so a process that starts after a power cut knows where the last one stopped.
 * - `history.jsonl` — one line per decision (applied, rolled back, refused manifest, failed check):
 *   the audit trail of updates, appended and fsynced, never rewritten. Ids, versions and reasons only.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../gateway/crypto/key-file.ts';

export type UpdatePhase = 'staged' | 'switching' | 'probation' | 'committed' | 'rolled-back';

export interface UpdateState {
  phase: UpdatePhase;
  from: string;
  to: string;
  /** The executable the service runs (replaced by the new version). */
  executable: string;
  /** The previous version's executable, kept for the rollback. */
  previous: string;
  at: string;
  outcome?: 'updated' | 'rolled-back';
  reason?: string;
  /** Whether the outcome went out on up/status (or to the log when there is no cloud). */
  reported?: boolean;
  /** The `gateway.update` command that asked for it (its outcome is reported under this id). */
  commandId?: string;
  /** How the new version was started: by the old process (which judges its gate) or by the service manager (it judges its own). */
  mode?: 'hand-over' | 'restart';
  /** Hand-over: the old process judging the gate (if it is gone with no verdict, the new one judges itself). */
  supervisorPid?: number;
  /** The old version's sink was connected: the new one's must connect within the window too. */
  requireSink?: boolean;
}

export interface HistoryEntry {
  at: string;
  /** `interrupted`: a crash or power cut cut a switch-over short (not the release's fault: it is tried again). */
  event: 'applied' | 'rolled-back' | 'interrupted' | 'refused' | 'check-failed' | 'download-failed';
  from?: string;
  to?: string;
  reason?: string;
  code?: string;
}

export const updateDir = (dataDir: string): string => join(dataDir, 'update');
const stateFile = (dataDir: string) => join(updateDir(dataDir), 'state.json');

export function readUpdateState(dataDir: string): UpdateState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile(dataDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as UpdateState;
  } catch {
    // written atomically, so a damaged file is a disk fault: say so, keep it for a person to read
    throw new Error(`${stateFile(dataDir)} is not JSON (a disk fault?): move it aside to let updates run again`);
  }
}

export function writeUpdateState(dataDir: string, s: UpdateState): void {
  writeFileAtomic(stateFile(dataDir), Buffer.from(`${JSON.stringify(s, null, 1)}\n`));
}

/** Appends one line to history.jsonl and fsyncs it: the audit trail of update decisions. */
export function appendHistory(dataDir: string, e: HistoryEntry): void {
  const dir = updateDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fd = openSync(join(dir, 'history.jsonl'), 'a', 0o600);
  try {
    const b = Buffer.from(`${JSON.stringify(e)}\n`);
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The history, oldest first (small: one line per update decision). */
export function readHistory(dataDir: string): HistoryEntry[] {
  let text: string;
  try {
    text = readFileSync(join(updateDir(dataDir), 'history.jsonl'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as HistoryEntry];
      } catch {
        return []; // a line cut by a power loss while appending
      }
    });
}
