/**
 * The sync scheduler's learned state on disk: one small JSON file in the agent's folder of the
 * data folder, written atomically (temporary file, fsync, rename, fsync of the folder:
 * gateway/crypto/key-file.ts), so a crash leaves the old state or the new one, never half of one.
 * A file that cannot be read as a state is never silently replaced: it is renamed aside as
 * `<name>.damaged-<time>` (kept for a person to look at), reported with a code, and learning
 * starts fresh. Bounded: at most MAX_SOURCES sources and the history's own bound.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../gateway/crypto/key-file.ts';
import { checkState, type SourceModelState } from './model.ts';

export const STATE_FILE = 'sync-state.json';
export const MAX_SOURCES = 64;

/** One schedule change, as the history keeps it (PHI-free: ids, intervals, hours, counts). */
export interface ScheduleChange {
  at: string;
  sourceId: string;
  change: 'plan' | 'burst' | 'budget' | 'budget-lifted' | 'reset';
  fromMs?: number;
  toMs: number;
  reason: string;
}

export interface SyncState {
  version: 1;
  sources: Record<string, SourceModelState>;
  history: ScheduleChange[];
}

export type LoadResult =
  | { kind: 'fresh'; state: SyncState }
  | { kind: 'loaded'; state: SyncState }
  | { kind: 'damaged'; state: SyncState; movedTo: string; why: string };

export const freshState = (): SyncState => ({ version: 1, sources: {}, history: [] });

function parse(text: string): SyncState {
  const v = JSON.parse(text) as SyncState;
  if (!v || typeof v !== 'object' || v.version !== 1) throw new Error('not a version 1 sync state');
  if (!v.sources || typeof v.sources !== 'object' || !Array.isArray(v.history)) throw new Error('sources or history missing');
  if (Object.keys(v.sources).length > MAX_SOURCES) throw new Error(`more than ${MAX_SOURCES} sources`);
  for (const [id, s] of Object.entries(v.sources)) {
    try {
      checkState(s);
    } catch (e) {
      throw new Error(`source ${JSON.stringify(id)}: ${(e as Error).message}`);
    }
  }
  return v;
}

/** Reads the state in `dir`; a damaged file is moved aside (`now` names it) and a fresh state returned. */
export function loadState(dir: string, now: number): LoadResult {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return { kind: 'fresh', state: freshState() };
  try {
    return { kind: 'loaded', state: parse(readFileSync(file, 'utf8')) };
  } catch (e) {
    const movedTo = `${file}.damaged-${new Date(now).toISOString().replace(/[:.]/g, '-')}`;
    renameSync(file, movedTo);
    return { kind: 'damaged', state: freshState(), movedTo, why: (e as Error).message.slice(0, 200) };
  }
}

/** Writes the state atomically; throws (the old file untouched) when it cannot. */
export function saveState(dir: string, state: SyncState): void {
  writeFileAtomic(join(dir, STATE_FILE), Buffer.from(JSON.stringify(state)));
}
