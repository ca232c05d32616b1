/** Messages between the outbox (main thread) and its writer thread. */
import type { DeadLetterEntry, EnqueueEntry, PageEntry } from './outbox.ts';
import type { WriterCounts } from './sqlite-writer.ts';
import type { VacuumStep } from './outbox-vacuum.ts';

export type WriterRequest =
  | { id: number; op: 'enqueue'; entry: EnqueueEntry; now: number }
  | { id: number; op: 'page'; page: PageEntry; now: number }
  | { id: number; op: 'finishCommand'; commandId: string }
  | { id: number; op: 'ack'; rows: Array<{ id: string; seq?: number }> }
  | { id: number; op: 'retryLater'; rows: Array<{ id: string; seq?: number }>; at: number; error: string }
  | { id: number; op: 'deadLetter'; rows: Array<{ id: string; seq?: number }>; code: string; reason: string; now: number }
  | { id: number; op: 'addDeadLetter'; entry: DeadLetterEntry }
  | {
      id: number;
      op: 'splitRefused';
      row: { id: string; seq?: number };
      entries: DeadLetterEntry[];
      code: string;
      reason: string;
      now: number;
    }
  | { id: number; op: 'removeDeadLetter'; deadLetterId: string }
  | { id: number; op: 'close' };

export interface WriterReply {
  /** `diskFull`: the write failed for lack of space (SQLITE_FULL, ENOSPC); SQLite rolled it back whole. */
  items: Array<{ id: number; ok: boolean; value?: unknown; error?: string; diskFull?: boolean }>;
  counts: WriterCounts;
  ready?: boolean;
  /** A vacuum step the writer ran between requests (outbox-vacuum.ts). */
  vacuum?: VacuumStep;
}

/** SQLite's primary result code for "database or disk is full" (extended codes keep it in the low byte). */
const SQLITE_FULL = 13;

/**
 * Whether a write failed for lack of space: SQLITE_FULL from node:sqlite (`errcode`), or ENOSPC
 * from the file system. Decided on the codes, never on the message text.
 */
export function isDiskFull(e: unknown): boolean {
  const x = e as { errcode?: unknown; code?: unknown } | null;
  if (!x || typeof x !== 'object') return false;
  return (typeof x.errcode === 'number' && (x.errcode & 0xff) === SQLITE_FULL) || x.code === 'ENOSPC';
}

/** The reply item for a request whose write threw. */
export function failedItem(id: number, e: unknown): WriterReply['items'][number] {
  return { id, ok: false, error: String((e as Error)?.message ?? e), ...(isDiskFull(e) ? { diskFull: true } : {}) };
}
