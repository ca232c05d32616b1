/** Messages between the outbox (main thread) and its writer thread. */
import type { DeadLetterEntry, EnqueueEntry, PageEntry } from './outbox.ts';
import type { WriterCounts } from './sqlite-writer.ts';

export type WriterRequest =
  | { id: number; op: 'enqueue'; entry: EnqueueEntry; now: number }
  | { id: number; op: 'page'; page: PageEntry; now: number }
  | { id: number; op: 'finishCommand'; commandId: string }
  | { id: number; op: 'ack'; rows: Array<{ id: string; seq?: number }> }
  | { id: number; op: 'retryLater'; rows: Array<{ id: string; seq?: number }>; at: number; error: string }
  | { id: number; op: 'deadLetter'; rows: Array<{ id: string; seq?: number }>; code: string; reason: string; now: number }
  | { id: number; op: 'addDeadLetter'; entry: DeadLetterEntry }
  | { id: number; op: 'splitRefused'; row: { id: string; seq?: number }; entries: DeadLetterEntry[]; code: string; reason: string; now: number }
  | { id: number; op: 'removeDeadLetter'; deadLetterId: string }
  | { id: number; op: 'close' };

export interface WriterReply {
  items: Array<{ id: number; ok: boolean; value?: unknown; error?: string }>;
  counts: WriterCounts;
  ready?: boolean;
}
