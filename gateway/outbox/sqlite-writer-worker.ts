/**
 * The outbox writer thread (writer modes `thread` and `auto`): the writer loop on its own
 * connection, so that an fsync never blocks the event loop that reads sockets.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSqliteWriter, type SqliteWriterOptions } from './sqlite-writer.ts';
import { createWriterLoop } from './writer-loop.ts';
import type { WriterRequest, WriterReply } from './writer-protocol.ts';

const opts = workerData as SqliteWriterOptions & { file: string; groupCommitMaxRecords: number; counts?: BigInt64Array };
const port = parentPort!;
const writer = createSqliteWriter(opts.file, opts, opts.counts);
const loop = createWriterLoop(
  writer,
  opts,
  (m) => port.postMessage(m),
  () => port.close(),
);
port.on('message', (r: WriterRequest) => loop.push(r));
port.postMessage({ items: [], counts: writer.counts(), ready: true } satisfies WriterReply);
