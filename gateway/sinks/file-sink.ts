/**
 * The local file sink (the embedded default, before enrolment): appends each outbox row as one
 * NDJSON line `{id, type, sealedAt, sealed}` — a bundle's line also has `ids`, its records in order
 * — to `<dataDir>/<dir>/records-YYYY-MM-DD.ndjson`, sealed with the gateway's own key
 * (`eyewear-gateway unseal FILE` reads it back, one record per line). The blobs are the outbox's
 * own (AES-256-GCM, the row id as AAD): nothing is decrypted or re-encrypted on the way.
 *
 * "Delivered" here means on the disk: every byte of the batch written (a write may take fewer
 * bytes than it was given, with no error, when the disk fills — it is looped until all are taken)
 * and fsynced. Anything short of that is GW_SINK_WRITE_FAILED (transient: the relay keeps the rows
 * and retries with backoff), and the day's file is cut back to its size before the batch, so no
 * half line is left for `unseal` to trip over and a retry does not leave half a batch twice. When
 * the cut itself fails the handle is dropped and the cut is made on the next open; a file found
 * ending in a half line at open (a crash between write and fsync) loses that line's bytes, which
 * were never reported delivered.
 *
 * Batches are written one group at a time — those that arrived while the previous write ran go
 * together, in one write and one fsync — so a failed group's cut never takes bytes of another's
 * that was reported delivered.
 */
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { GatewayError } from '../errors.ts';
import type { DeliveryResult, RecordBatch, Sink } from './sink.ts';

/** The part of a file handle the sink uses (node:fs/promises FileHandle has it; tests wrap one to inject faults). */
export interface SinkFileHandle {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

export interface FileSinkOptions {
  dir: string;
  clock: Clock;
  logger?: Logger;
  /** Opens a day's file for appending (default: node:fs/promises `open(path, 'a+', 0o600)`). */
  openFile?: (path: string) => Promise<SinkFileHandle>;
}

export function fileSinkPath(dir: string, ms: number): string {
  return join(dir, `records-${new Date(ms).toISOString().slice(0, 10)}.ndjson`);
}

/** A batch's lines, waiting to be written with the others that arrived meanwhile. */
interface Waiting {
  buf: Buffer;
  at: number;
  rows: number;
  records: number;
  resolve: (r: DeliveryResult) => void;
  reject: (e: unknown) => void;
}

const defaultOpen = (path: string): Promise<SinkFileHandle> => open(path, 'a+', 0o600);

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** How far back open looks for the end of the last whole line (a batch is far smaller). */
const TAIL_CHUNK = 64 * 1024;

/** The length of the file up to and including its last newline (0 when it holds none). */
async function wholeLinesLength(fh: SinkFileHandle, size: number): Promise<number> {
  const buf = Buffer.allocUnsafe(TAIL_CHUNK);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

export function createFileSink(opts: FileSinkOptions): Sink {
  const openFile = opts.openFile ?? defaultOpen;
  let written = 0;
  let writeFailures = 0;
  let lastError: string | undefined;
  let started = false;
  /** Set by stop(): a send after it is refused, so no file is opened again behind the stop. */
  let stopped = false;
  // the day's file stays open between batches (one open per day, not per batch), with the size
  // its whole batches make: the length a failed batch is cut back to
  let current: { path: string; fh: SinkFileHandle; size: number } | undefined;
  // a cut that failed: made when the file is next opened
  let pendingCut: { path: string; size: number } | undefined;
  // batches waiting for the write in progress to finish, and that write (undefined when none)
  const waiting: Waiting[] = [];
  let draining: Promise<void> | undefined;

  async function handleFor(path: string): Promise<{ path: string; fh: SinkFileHandle; size: number }> {
    if (current?.path === path) return current;
    await closeCurrent();
    const fh = await openFile(path);
    try {
      // the folder's entry for a new day's file must outlast a power cut as the file's bytes do
      await syncDir(opts.dir);
      let size = (await fh.stat()).size;
      const cutTo = pendingCut?.path === path ? Math.min(pendingCut.size, size) : await wholeLinesLength(fh, size);
      if (cutTo < size) {
        await fh.truncate(cutTo);
        await fh.sync();
        opts.logger?.warn(
          { bytes: size - cutTo },
          "file sink cut an unfinished line off the end of the day's file (a batch never reported delivered; it is resent)",
        );
        size = cutTo;
      }
      pendingCut = undefined;
      current = { path, fh, size };
      return current;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  async function closeCurrent(): Promise<void> {
    const old = current;
    current = undefined;
    await old?.fh.close().catch(() => undefined);
  }

  /** Writes all of `buf` at the end of the file: a write that takes fewer bytes is followed by one for the rest. */
  async function writeAll(fh: SinkFileHandle, buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off);
      // no progress and no error: stop rather than spin (each turn otherwise takes at least a byte)
      if (!(bytesWritten > 0))
        throw new GatewayError('GW_SINK_WRITE_FAILED', `file sink wrote ${off} of ${buf.length} bytes (the disk took no more)`);
      off += bytesWritten;
    }
  }

  /**
   * Writes the batches waiting, all at once: one write and one fsync for the lot (batches that
   * arrive during a write wait for the next group). All of a group is on the disk, or none of it.
   */
  async function writeGroup(group: Waiting[]): Promise<void> {
    const buf = group.length === 1 ? group[0].buf : Buffer.concat(group.map((g) => g.buf));
    const rows = group.reduce((n, g) => n + g.rows, 0);
    let file: { path: string; fh: SinkFileHandle; size: number } | undefined;
    try {
      file = await handleFor(fileSinkPath(opts.dir, group[0].at));
      await writeAll(file.fh, buf);
      await file.fh.sync();
    } catch (e) {
      writeFailures++;
      lastError = e instanceof GatewayError ? 'short-write' : ((e as NodeJS.ErrnoException).code ?? 'io');
      if (file) await cutBack(file);
      const err = new GatewayError(
        'GW_SINK_WRITE_FAILED',
        `file sink could not write ${rows} rows (${lastError}); nothing was reported delivered and the day's file is as it was before them. Free disk space or fix the sink folder's permissions; delivery resumes with backoff`,
        { cause: e },
      );
      for (const g of group) g.reject(err);
      return;
    }
    file.size += buf.length;
    lastError = undefined;
    for (const g of group) {
      written += g.records;
      g.resolve({ rejected: [] });
    }
  }

  async function drain(): Promise<void> {
    try {
      while (waiting.length) await writeGroup(waiting.splice(0));
    } finally {
      draining = undefined;
    }
  }

  /** Takes a failed batch's bytes off the end of the file; if that fails too, the next open does it. */
  async function cutBack(file: { path: string; fh: SinkFileHandle; size: number }): Promise<void> {
    try {
      await file.fh.truncate(file.size);
      await file.fh.sync();
    } catch {
      pendingCut = { path: file.path, size: file.size };
      await closeCurrent();
    }
  }

  return {
    kind: 'file',
    takesSealed: true,
    async start() {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
      started = true;
      stopped = false;
    },
    /** Waits for the write in progress (and the batches queued behind it: local I/O, they finish), then closes the file. */
    async stop() {
      started = false;
      stopped = true;
      await draining;
      await closeCurrent();
    },
    deliver(batch: RecordBatch): Promise<DeliveryResult> {
      if (stopped)
        return Promise.reject(
          new GatewayError('GW_SINK_UNREACHABLE', 'file sink stopped; the batch stays queued and is written after the next start'),
        );
      const at = opts.clock.now();
      const sealedAt = new Date(at).toISOString();
      if (!batch.sealed) return Promise.reject(new GatewayError('GW_SINK_REJECTED', 'file sink needs the sealed rows of the batch'));
      const lines =
        batch.sealed
          .map((r) =>
            JSON.stringify({
              id: r.id,
              type: r.type,
              ...(r.recordIds ? { ids: r.recordIds } : {}),
              sealedAt,
              sealed: Buffer.from(r.sealed.buffer, r.sealed.byteOffset, r.sealed.byteLength).toString('base64'),
            }),
          )
          .join('\n') + '\n';
      return new Promise<DeliveryResult>((resolve, reject) => {
        waiting.push({ buf: Buffer.from(lines, 'utf8'), at, rows: batch.sealed!.length, records: batch.ids.length, resolve, reject });
        draining ??= drain();
      });
    },
    health: () => ({ connected: started, detail: { written, writeFailures, ...(lastError ? { lastError } : {}) } }),
  };
}
