/**
 * Giving disk space back (issue 14). SQLite never shrinks a file by itself: pages freed by acked
 * rows go to the freelist and are reused before the file grows, but a drained backlog leaves the
 * file at its peak size, mostly free pages (figures: BENCHMARKS.md, "Measured design choices").
 *
 * - New outboxes are created with `auto_vacuum = INCREMENTAL` (set before the first table: it is
 *   part of the file's header and cannot be switched on later without a full VACUUM).
 * - An existing outbox without it is converted once at open by a full VACUUM, which rewrites the
 *   file (needs free disk of its size, and blocks writers while it runs): only when it holds little
 *   (≤ {@link CONVERT_MAX_LIVE_BYTES} live) and the volume has room. Otherwise it stays as it is and
 *   `storage().autoVacuum` says `none` (the file is then only reused, never shrunk).
 * - The writer returns free pages in small steps (`PRAGMA incremental_vacuum(n)`, at most
 *   {@link VACUUM_STEP_PAGES} pages, each step its own short transaction between commits, so an
 *   intake waits for one step at most): started once free pages exceed {@link VACUUM_START_RATIO}
 *   of the file and {@link VACUUM_START_BYTES}, continued until at most {@link VACUUM_KEEP_BYTES}
 *   are free (kept for the next writes to reuse). The file therefore stays within
 *   max(live / (1 − 0.2), live + 8 MiB) ≤ 1.3 × live + 8 MiB, plus the WAL (bounded by
 *   `journal_size_limit` once checkpointed).
 */
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';

/** Pages returned per step (its time: BENCHMARKS.md, "Measured design choices"; the vacuum test prints it). */
export const VACUUM_STEP_PAGES = 512;
/** A vacuum starts when free pages are more than this share of the file ... */
export const VACUUM_START_RATIO = 0.2;
/** ... and more than this many bytes (the fixed slack: a file is never shrunk for less). */
export const VACUUM_START_BYTES = 8 * 1024 * 1024;
/** A vacuum that started goes on until at most this many free bytes are left. */
export const VACUUM_KEEP_BYTES = 1024 * 1024;
/** The WAL is truncated to this after a checkpoint that reset it. */
export const WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024;
/** An outbox without incremental vacuum is converted at open only while it holds at most this. */
export const CONVERT_MAX_LIVE_BYTES = 64 * 1024 * 1024;

export type AutoVacuumMode = 'none' | 'full' | 'incremental';

export interface PageCounts {
  pageSize: number;
  pageCount: number;
  freePages: number;
}

const pragma = (d: DatabaseSync, name: string): number => Number(Object.values(d.prepare(`PRAGMA ${name}`).get() as object)[0]);

export function pageCounts(d: DatabaseSync): PageCounts {
  return { pageSize: pragma(d, 'page_size'), pageCount: pragma(d, 'page_count'), freePages: pragma(d, 'freelist_count') };
}

export function autoVacuumMode(d: DatabaseSync): AutoVacuumMode {
  const m = pragma(d, 'auto_vacuum');
  return m === 2 ? 'incremental' : m === 1 ? 'full' : 'none';
}

/**
 * Whether the writer should return pages now. `active`: a vacuum already under way goes on down
 * to the kept free space (hysteresis: it does not stop at the start threshold, so a drained file
 * ends near its live size instead of at 1.25×).
 */
export function vacuumDue(p: PageCounts, active: boolean): boolean {
  const freeBytes = p.freePages * p.pageSize;
  if (active) return freeBytes > VACUUM_KEEP_BYTES;
  return freeBytes > VACUUM_START_BYTES && p.freePages > p.pageCount * VACUUM_START_RATIO;
}

export type ConversionOutcome =
  | { state: 'incremental'; converted: boolean; ms?: number }
  | { state: 'none'; reason: 'too-big' | 'no-room' | 'failed'; liveBytes: number; fileBytes: number; code?: string };

/**
 * Switches an outbox without incremental vacuum to it by a full VACUUM, when it holds little and
 * the volume has room for a second copy (VACUUM writes the new file through the WAL). Never
 * throws: a conversion that cannot or did not run leaves the outbox as it was, and says why.
 */
export function convertToIncremental(d: DatabaseSync, file: string, freeDiskBytes?: number): ConversionOutcome {
  if (autoVacuumMode(d) === 'incremental') return { state: 'incremental', converted: false };
  const p = pageCounts(d);
  const fileBytes = p.pageCount * p.pageSize;
  const liveBytes = (p.pageCount - p.freePages) * p.pageSize;
  if (liveBytes > CONVERT_MAX_LIVE_BYTES) return { state: 'none', reason: 'too-big', liveBytes, fileBytes };
  let free = freeDiskBytes;
  if (free === undefined) {
    try {
      const s = statfsSync(dirname(file));
      free = Number(s.bavail) * Number(s.bsize);
    } catch {
      free = 0;
    }
  }
  // the rewritten copy (live bytes, in the WAL) and the old file both exist until the checkpoint
  if (free < 2 * liveBytes + VACUUM_START_BYTES) return { state: 'none', reason: 'no-room', liveBytes, fileBytes };
  const t = performance.now();
  try {
    d.exec('PRAGMA auto_vacuum = INCREMENTAL; VACUUM;');
    d.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } catch (e) {
    const code = (e as { errcode?: number; code?: string }).errcode ?? (e as { code?: string }).code;
    return { state: 'none', reason: 'failed', liveBytes, fileBytes, code: String(code ?? 'unknown') };
  }
  return autoVacuumMode(d) === 'incremental'
    ? { state: 'incremental', converted: true, ms: Math.round(performance.now() - t) }
    : { state: 'none', reason: 'failed', liveBytes, fileBytes };
}

/** One vacuum step as the writer reports it. */
export interface VacuumStep {
  /** Pages returned to the file system by this step. */
  pages: number;
  ms: number;
  freePages: number;
  pageCount: number;
  /** More steps follow. */
  more: boolean;
  /** The step failed (SQLite's error code, or the error's code): logged, never fatal to intake. */
  error?: string;
}

/** What `SqliteOutboxOptions.onStorage` reports. */
export type StorageEvent =
  | { event: 'converted' | 'notConverted'; outcome: ConversionOutcome }
  | { event: 'vacuumFailed'; step: VacuumStep };

/**
 * The log line for a storage event: codes, counts and sizes only. The gateway logs it as
 * `logger[l.level](l.fields, l.message)`.
 */
export function storageLogLine(e: StorageEvent): { level: 'info' | 'warn'; fields: Record<string, unknown>; message: string } {
  if (e.event === 'vacuumFailed')
    return {
      level: 'warn',
      fields: { code: 'GW_OUTBOX_IO', sqlite: e.step.error },
      message:
        'outbox vacuum step failed (freed space is still reused, only not given back yet); tried again in 10 s. Intake is not affected',
    };
  const o = e.outcome;
  if (o.state === 'incremental')
    return {
      level: 'info',
      fields: { ms: o.ms },
      message: 'outbox converted to incremental vacuum: it now gives disk space back after a drain',
    };
  const why =
    o.reason === 'too-big'
      ? `it holds more than ${CONVERT_MAX_LIVE_BYTES / 1048576} MiB (converted at the first start after a drain)`
      : o.reason === 'no-room'
        ? 'the data volume has no room for the copy a conversion writes (free space, then restart)'
        : 'the conversion failed';
  return {
    level: 'warn',
    fields: { reason: o.reason, liveBytes: o.liveBytes, fileBytes: o.fileBytes, ...(o.code ? { sqlite: o.code } : {}) },
    message: `outbox file does not give disk space back (auto_vacuum off; freed space is reused only): not converted, as ${why}`,
  };
}
