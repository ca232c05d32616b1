/**
 * The outbox writer's request loop, shared by the writer thread and the in-process writer.
 * Requests arrive in order; consecutive enqueues (and consecutive dead letters) are merged into one
 * transaction (group commit): whatever arrived while the last commit ran, or in the same turn of the
 * event loop, shares the next one. Every reply carries the counts, so the outbox's stats need no query.
 */
import type { SqliteWriter } from './sqlite-writer.ts';
import { failedItem, type WriterReply, type WriterRequest } from './writer-protocol.ts';

type Enqueue = Extract<WriterRequest, { op: 'enqueue' }>;
type AddDeadLetter = Extract<WriterRequest, { op: 'addDeadLetter' }>;

export interface WriterLoop {
  push(r: WriterRequest): void;
}

export function createWriterLoop(
  writer: SqliteWriter,
  o: { groupCommitMaxRecords: number },
  reply: (m: WriterReply) => void,
  onClosed: () => void,
): WriterLoop {
  let queue: WriterRequest[] = [];
  let scheduled = false;
  let closed = false;
  const answer = (items: WriterReply['items']) => reply({ items, counts: writer.counts() });

  /** Runs one grouped write and answers each request of the group with its own outcome. */
  function settle(group: Array<{ id: number }>, write: () => unknown[]): void {
    try {
      const outcomes = write();
      answer(group.map((g, k) => ({ id: g.id, ok: true, value: outcomes[k] })));
    } catch (e) {
      answer(group.map((g) => failedItem(g.id, e)));
    }
  }

  function run(): void {
    scheduled = false;
    const work = queue;
    queue = [];
    let i = 0;
    while (i < work.length) {
      const r = work[i];
      if (r.op === 'enqueue') {
        const group: Enqueue[] = [];
        let n = 0;
        while (
          i < work.length &&
          work[i].op === 'enqueue' &&
          (group.length === 0 || n + (work[i] as Enqueue).entry.records.length <= o.groupCommitMaxRecords)
        ) {
          const e = work[i] as Enqueue;
          group.push(e);
          n += e.entry.records.length;
          i++;
        }
        settle(group, () =>
          writer.enqueue(
            group.map((g) => g.entry),
            group[0].now,
          ),
        );
        continue;
      }
      if (r.op === 'addDeadLetter') {
        const group: AddDeadLetter[] = [];
        while (i < work.length && work[i].op === 'addDeadLetter' && group.length < o.groupCommitMaxRecords)
          group.push(work[i++] as AddDeadLetter);
        settle(group, () => writer.addDeadLetters(group.map((g) => g.entry)));
        continue;
      }
      i++;
      try {
        let value: unknown;
        switch (r.op) {
          case 'page':
            value = writer.enqueuePage(r.page, r.now);
            break;
          case 'finishCommand':
            writer.finishCommand(r.commandId);
            break;
          case 'ack':
            writer.ack(r.rows);
            break;
          case 'retryLater':
            writer.retryLater(r.rows, r.at, r.error);
            break;
          case 'deadLetter':
            writer.deadLetter(r.rows, r.code, r.reason, r.now);
            break;
          case 'splitRefused':
            value = writer.splitRefused(r.row, r.entries, r.code, r.reason, r.now);
            break;
          case 'removeDeadLetter':
            value = writer.removeDeadLetter(r.deadLetterId);
            break;
          case 'close':
            closed = true;
            writer.close();
            answer([{ id: r.id, ok: true }]);
            onClosed();
            return;
          default:
            r satisfies never;
        }
        answer([{ id: r.id, ok: true, value }]);
      } catch (e) {
        answer([failedItem(r.id, e)]);
      }
    }
    vacuum();
  }

  /**
   * Between groups: one bounded vacuum step when one is due, then the requests that arrived
   * meanwhile before the next step (an intake waits for one step at most).
   */
  function vacuum(): void {
    if (closed) return;
    const step = writer.vacuumStep();
    if (!step) return;
    reply({ items: [], counts: writer.counts(), vacuum: step });
    if (step.more && !scheduled) {
      scheduled = true;
      setImmediate(run);
    }
  }

  return {
    push(r) {
      queue.push(r);
      // setImmediate: everything that arrives in this turn of the event loop joins the group
      if (!scheduled) {
        scheduled = true;
        setImmediate(run);
      }
    },
  };
}
