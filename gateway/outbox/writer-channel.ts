/**
 * The outbox's way to its writer (sqlite-writer.ts), whichever side of a thread boundary it is on:
 * `thread` (requests posted to the writer thread, sqlite-writer-worker.ts), `inline` (a writer on
 * this thread, grouped per turn of the event loop) or `auto` (a lone intake commits on this thread
 * while the writer thread is idle; everything else goes to the thread). Replies come back through
 * `onReply`; a writer thread that dies or exits is reported through `onGone`.
 */
import { Worker } from 'node:worker_threads';
import { GatewayError } from '../errors.ts';
import type { StoreRecord } from './outbox.ts';
import { createSharedCounts, createSqliteWriter, type WriterCounts } from './sqlite-writer.ts';
import { createWriterLoop } from './writer-loop.ts';
import { failedItem, type WriterReply, type WriterRequest } from './writer-protocol.ts';

export interface WriterOptions {
  file: string;
  maxBytes: number;
  maxDeadLetterBytes: number;
  dedupeWindowMs: number;
  dedupeMaxEntries?: number;
  groupCommitMaxRecords: number;
  counts?: BigInt64Array;
  sealKey?: Uint8Array;
}

/** Set by the single-executable build: the writer thread's bundled code (there are no files to load). */
declare const __OUTBOX_WRITER_CODE__: string | undefined;

/** The outbox's way to its writer, whichever side of a thread boundary the writer is on. */
export interface WriterChannel {
  send(r: WriterRequest): void;
  /** Commits made on this thread so far. */
  inlineCommits(): number;
  /** After the writer has answered `close`. */
  dispose(): Promise<void>;
}

/**
 * The writer thread's heap bounds, for a process started without the gateway's heap flags
 * (gateway/node-flags.ts: `node bin/eyewear-gateway.js start`, tests). V8 flags given to the
 * process apply to every thread and take precedence over these, so the single executable and `npm
 * start` run the thread with those instead. The old-generation bound is several times the thread's
 * measured live heap under load (requests arrive as transferred bytes, outside the heap), and a
 * thread that still ran out would die and be restarted like any writer death, losing nothing
 * committed. The figures: BENCHMARKS.md (footprint).
 */
export const WRITER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 3, maxOldGenerationSizeMb: 64 } as const;

function spawnWriter(workerData: WriterOptions): Worker {
  const resourceLimits = WRITER_RESOURCE_LIMITS;
  if (typeof __OUTBOX_WRITER_CODE__ === 'string') return new Worker(__OUTBOX_WRITER_CODE__, { eval: true, workerData, resourceLimits });
  return new Worker(new URL('./sqlite-writer-worker.ts', import.meta.url), { workerData, resourceLimits });
}

/**
 * A request for the writer thread with all its bytes — sealed blobs, and plain records' JSON as
 * UTF-8 — in one new buffer, which is transferred rather than cloned. (A sealed blob is usually a
 * slice of Node's shared 8 KiB buffer pool, and cloning a slice copies its whole pool buffer,
 * measured in BENCHMARKS.md; strings would be copied into the writer thread's heap.)
 */
function packForThread(r: WriterRequest): { message: WriterRequest; transfer: ArrayBuffer[] } {
  const parts: Array<Uint8Array | string> = [];
  const recs = (list: readonly StoreRecord[]) => {
    for (const x of list) parts.push('sealed' in x ? x.sealed : x.plain);
  };
  if (r.op === 'enqueue') {
    recs(r.entry.records);
    if (r.entry.command) parts.push(r.entry.command.sealed);
  } else if (r.op === 'page')
    for (const row of r.page.rows) {
      recs(row.records);
      if (row.deadLetter) parts.push(row.deadLetter.sealed);
    }
  else if (r.op === 'addDeadLetter') parts.push(r.entry.sealed);
  else if (r.op === 'splitRefused') for (const e of r.entries) parts.push(e.sealed);
  if (parts.length === 0) return { message: r, transfer: [] };
  let total = 0;
  for (const p of parts) total += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.byteLength;
  const packed = Buffer.allocUnsafeSlow(total);
  // views in the order the parts were taken; each record takes the next one
  const views: Uint8Array[] = [];
  let at = 0;
  for (const p of parts) {
    const n = typeof p === 'string' ? packed.write(p, at, 'utf8') : (packed.set(p, at), p.byteLength);
    views.push(packed.subarray(at, at + n));
    at += n;
  }
  let k = 0;
  const next = () => views[k++];
  const vrecs = (list: readonly StoreRecord[]): StoreRecord[] =>
    list.map((x) => ('sealed' in x ? { ...x, sealed: next() } : { ...x, plain: next() }));
  let message: WriterRequest;
  if (r.op === 'enqueue') {
    const records = vrecs(r.entry.records);
    message = { ...r, entry: { ...r.entry, records, command: r.entry.command && { ...r.entry.command, sealed: next() } } };
  } else if (r.op === 'page')
    message = {
      ...r,
      page: {
        ...r.page,
        rows: r.page.rows.map((row) => {
          const records = vrecs(row.records);
          return { ...row, records, deadLetter: row.deadLetter && { ...row.deadLetter, sealed: next() } };
        }),
      },
    };
  else if (r.op === 'addDeadLetter') message = { ...r, entry: { ...r.entry, sealed: next() } };
  else if (r.op === 'splitRefused') message = { ...r, entries: r.entries.map((e) => ({ ...e, sealed: next() })) };
  else message = r;
  return { message, transfer: [packed.buffer as ArrayBuffer] };
}

/** In `auto`, intakes that overlapped this recently mean concurrent senders: no inline commits. */
const OVERLAP_MEMORY_MS = 250;

/** Starts the writer; resolves with its channel once it has opened the database and sent its counts. */
export async function startWriter(
  mode: 'thread' | 'inline' | 'auto',
  o: WriterOptions,
  onReply: (m: WriterReply) => void,
  onGone: (e: GatewayError) => void,
  onThread?: (w: Worker) => void,
): Promise<{ channel: WriterChannel; counts: WriterCounts }> {
  // replies are delivered from this thread's own turn; a throwing handler must not break the loop
  const safeReply = (m: WriterReply) => {
    try {
      onReply(m);
    } catch (e) {
      onGone(new GatewayError('GW_OUTBOX_IO', 'outbox reply handling failed', { cause: e }));
    }
  };
  if (mode === 'inline') {
    const writer = createSqliteWriter(o.file, o);
    const loop = createWriterLoop(writer, o, safeReply, () => undefined);
    return {
      channel: { send: (r) => loop.push(r), inlineCommits: () => writer.counts().commits, dispose: async () => undefined },
      counts: writer.counts(),
    };
  }
  // auto: both writers count in shared memory (the inline one reads the file's counts first)
  const counts = mode === 'auto' ? createSharedCounts() : undefined;
  const local = mode === 'auto' ? createSqliteWriter(o.file, o, counts) : undefined;
  const w = spawnWriter({ ...o, counts });
  let started: WriterCounts;
  try {
    started = await new Promise<WriterCounts>((resolve, reject) => {
      w.once('error', reject);
      w.once('message', (m: WriterReply) => {
        w.off('error', reject);
        resolve(m.counts);
      });
    });
  } catch (e) {
    local?.close();
    throw new GatewayError('GW_OUTBOX_IO', 'outbox writer failed to start', { cause: e });
  }
  let open = true;
  /** Requests the thread has not answered yet: while there are any, intakes go to the thread too. */
  let threadPending = 0;
  /** Auto mode: intakes the thread has yet to answer, and when one last arrived while another was unanswered. */
  const intakeIds = new Set<number>();
  let lastOverlap = -Infinity;
  w.on('message', (m: WriterReply) => {
    threadPending -= m.items.length;
    for (const item of m.items) intakeIds.delete(item.id);
    onReply(m);
  });
  w.on('error', (e) => onGone(new GatewayError('GW_OUTBOX_IO', 'outbox writer crashed', { cause: e })));
  w.on('exit', () => {
    if (open) {
      open = false;
      onGone(new GatewayError('GW_OUTBOX_IO', 'outbox writer exited'));
    }
  });
  onThread?.(w);
  const toThread = (r: WriterRequest) => {
    threadPending++;
    const { message, transfer } = packForThread(r);
    w.postMessage(message, transfer);
  };
  if (!local)
    return {
      channel: {
        send: toThread,
        inlineCommits: () => 0,
        dispose: async () => {
          open = false;
          await w.terminate().catch(() => undefined);
        },
      },
      counts: started,
    };

  // intakes of one turn are held until the turn ends, then committed here (one alone, thread idle)
  // or handed to the thread together (it groups them into one commit)
  let intakes: WriterRequest[] = [];
  let flushing = false;
  let inline = 0;
  const flush = () => {
    flushing = false;
    const batch = intakes;
    intakes = [];
    // inline only for a lone sender: with concurrent senders an inline fsync would stall the
    // others' sockets, and the thread commits them together while this thread goes on parsing
    if (batch.length === 1 && threadPending === 0 && open && performance.now() - lastOverlap > OVERLAP_MEMORY_MS) {
      const r = batch[0] as Extract<WriterRequest, { op: 'enqueue' }>;
      let item: WriterReply['items'][number];
      try {
        item = { id: r.id, ok: true, value: local.enqueue([r.entry], r.now)[0] };
        inline++;
      } catch (e) {
        item = failedItem(r.id, e);
      }
      safeReply({ items: [item], counts: local.counts() });
      return;
    }
    for (const r of batch) {
      intakeIds.add(r.id);
      toThread(r);
    }
  };
  return {
    channel: {
      send(r) {
        if (r.op !== 'enqueue') {
          toThread(r);
          return;
        }
        const now = performance.now();
        // unanswered intakes: those held for this turn's end and those the thread has not answered
        if (intakes.length + intakeIds.size > 0) lastOverlap = now;
        // concurrent senders lately: straight to the thread, which starts committing at once —
        // after any intake held from earlier in this turn, so that commits keep the order of arrival
        if (threadPending > 0 || now - lastOverlap <= OVERLAP_MEMORY_MS) {
          const held = intakes;
          intakes = [];
          for (const h of [...held, r]) {
            intakeIds.add(h.id);
            toThread(h);
          }
          return;
        }
        intakes.push(r);
        if (!flushing) {
          flushing = true;
          setImmediate(flush);
        }
      },
      inlineCommits: () => inline,
      dispose: async () => {
        open = false;
        await w.terminate().catch(() => undefined);
        try {
          local.close();
        } catch {
          /* closed already */
        }
      },
    },
    counts: started,
  };
}
