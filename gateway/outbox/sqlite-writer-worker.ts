/**
 * The outbox writer thread. Requests arrive in order; consecutive enqueues (and consecutive dead
 * letters) are merged into one transaction (group commit) — while one commit fsyncs, the next group gathers in the port.
 * Every reply carries the counts, so the main thread's stats need no query.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSqliteWriter } from './sqlite-writer.ts';
import type { WriterRequest, WriterReply } from './writer-protocol.ts';

const opts = workerData as { file: string; maxBytes: number; maxDeadLetterBytes: number; dedupeWindowMs: number; groupCommitMaxRecords: number };
const port = parentPort!;
const writer = createSqliteWriter(opts.file, opts);
let queue: WriterRequest[] = [];
let scheduled = false;

function reply(items: WriterReply['items']): void {
  port.postMessage({ items, counts: writer.counts() } satisfies WriterReply);
}

/** Runs one grouped write and answers each request of the group with its own outcome. */
function settle(group: Array<{ id: number }>, write: () => unknown[]): void {
  try {
    const outcomes = write();
    reply(group.map((g, k) => ({ id: g.id, ok: true, value: outcomes[k] })));
  } catch (e) {
    reply(group.map((g) => ({ id: g.id, ok: false, error: String((e as Error).message) })));
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
      const group: Array<Extract<WriterRequest, { op: 'enqueue' }>> = [];
      let n = 0;
      while (i < work.length && work[i].op === 'enqueue' && (group.length === 0 || n + (work[i] as Extract<WriterRequest, { op: 'enqueue' }>).entry.records.length <= opts.groupCommitMaxRecords)) {
        const e = work[i] as Extract<WriterRequest, { op: 'enqueue' }>;
        group.push(e);
        n += e.entry.records.length;
        i++;
      }
      settle(group, () => writer.enqueue(group.map((g) => g.entry), group[0].now));
      continue;
    }
    if (r.op === 'addDeadLetter') {
      const group: Array<Extract<WriterRequest, { op: 'addDeadLetter' }>> = [];
      while (i < work.length && work[i].op === 'addDeadLetter' && group.length < opts.groupCommitMaxRecords) group.push(work[i++] as Extract<WriterRequest, { op: 'addDeadLetter' }>);
      settle(group, () => writer.addDeadLetters(group.map((g) => g.entry)));
      continue;
    }
    i++;
    try {
      let value: unknown;
      switch (r.op) {
        case 'page': value = writer.enqueuePage(r.page, r.now); break;
        case 'finishCommand': writer.finishCommand(r.commandId); break;
        case 'ack': writer.ack(r.rows); break;
        case 'retryLater': writer.retryLater(r.rows, r.at, r.error); break;
        case 'deadLetter': writer.deadLetter(r.rows, r.code, r.reason, r.now); break;
        case 'removeDeadLetter': value = writer.removeDeadLetter(r.deadLetterId); break;
        case 'close': writer.close(); reply([{ id: r.id, ok: true }]); port.close(); return;
        default: r satisfies never;
      }
      reply([{ id: r.id, ok: true, value }]);
    } catch (e) {
      reply([{ id: r.id, ok: false, error: String((e as Error).message) }]);
    }
  }
}

port.on('message', (r: WriterRequest) => {
  queue.push(r);
  if (!scheduled) { scheduled = true; setImmediate(run); }
});
port.postMessage({ items: [], counts: writer.counts(), ready: true } satisfies WriterReply);
