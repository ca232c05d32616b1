/**
 * The disk guard: refuses new input while free space on the data volume is below a reserve
 * (`outbox.diskReserveBytes`), so the outbox can still commit what it owes — the relay's acks,
 * deletes and dead-lettering — when the disk fills. Without it a full disk made every intake fail
 * while `/ready` said ready and no alert was raised (issue 12).
 *
 * Free space is sampled with `statfs` (a few microseconds a call) on a timer, and at once when a
 * write fails for lack of space (SQLITE_FULL / ENOSPC: another program filled the disk faster than
 * the sampling). While low, the alert `diskLow` (GW_DISK_LOW, blocks ready) is on the board and
 * `admits()` is false; the intake pipeline then answers every input "busy, retry later" (HL7 AR with
 * ERR 207, pollers pause with their cursors where they were), the same path as a full outbox. Once
 * a sample finds enough space the alert is cleared and input is taken again, by itself.
 *
 * Space the outbox holds free inside its own file (pages freed by delivered rows, which SQLite
 * reuses but never gives back to the file system) counts as free: otherwise an outbox that grew
 * while the cloud was away would keep the disk "low" after it drained, refusing input it has room for.
 *
 * States: ok ──sample below reserve──► low(reserve) ──sample at or above reserve──► ok;
 * any ──write failed, disk full──► low(write-failed) ──a later sample above reserve──► ok.
 * A reserve of 0 turns the sampling off; a write that fails for lack of space is still reported
 * (and held until a sample finds space again).
 */
import { statfs as statfsAsync } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { AlertBoard } from '../alerts.ts';
import type { Clock } from '../clock.ts';

/** What the guard knows, as `/status` shows it (`disk`). */
export interface DiskState {
  /** Free bytes on the data volume (for the guard: plus the outbox's reusable space) at the last sample; null before the first. */
  freeBytes: number | null;
  reserveBytes: number;
  /** Input is refused. */
  low: boolean;
  /** Why: free space below the reserve, or a write that failed for lack of space. */
  cause?: 'reserve' | 'write-failed';
  /** When the last sample was taken (ISO 8601). */
  checkedAt: string | null;
}

export interface DiskGuardOptions {
  /** A folder on the data volume (the data folder). */
  dir: string;
  reserveBytes: number;
  /** How often free space is sampled. */
  intervalMs: number;
  clock: Clock;
  logger: Logger;
  /** Where `diskLow` is raised and cleared. */
  alerts: AlertBoard;
  /** Bytes free inside the outbox's file (reused by new rows before the file grows); 0 when unknown. */
  reusableBytes?: () => number;
  /** Tests only: another `statfs`. */
  statfs?: (dir: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }>;
}

export interface DiskGuard {
  /** Takes the first sample, then samples every `intervalMs`. Idempotent. */
  start(): Promise<void>;
  /** Stops the timer and waits for a sample under way. Idempotent. */
  stop(): Promise<void>;
  /** Whether new input may be written now. */
  admits(): boolean;
  /** A write failed for lack of space: refuse input now and sample at once. */
  writeFailed(): void;
  /** Samples now (a sample already under way is shared). */
  sample(): Promise<DiskState>;
  state(): DiskState;
}

/** The alert key on the board (docs/ERRORS.md names it beside GW_DISK_LOW). */
export const DISK_LOW_ALERT = 'diskLow';

const MiB = 1024 * 1024;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

export function createDiskGuard(o: DiskGuardOptions): DiskGuard {
  const statfs = o.statfs ?? ((dir: string) => statfsAsync(dir));
  let freeBytes: number | null = null;
  let checkedAt: number | null = null;
  let cause: DiskState['cause'];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inFlight: Promise<DiskState> | undefined;
  let statfsFailing = false;
  /** A write failed after the sample under way began: that sample cannot clear it. */
  let failedAt = 0;
  let samples = 0;

  const state = (): DiskState => ({
    freeBytes,
    reserveBytes: o.reserveBytes,
    low: cause !== undefined,
    ...(cause ? { cause } : {}),
    checkedAt: checkedAt === null ? null : new Date(checkedAt).toISOString(),
  });

  function raise(): void {
    const free = freeBytes === null ? 'unknown' : mib(freeBytes);
    const detail =
      cause === 'write-failed'
        ? `disk full: an outbox write failed for lack of space on the data volume (${free} free): new input is refused (negative ACK, polls paused) until space is freed; free disk space on the data volume (${o.dir}); intake resumes by itself`
        : `disk low: ${free} free on the data volume, below the reserve of ${mib(o.reserveBytes)} (outbox.diskReserveBytes): new input is refused (negative ACK, polls paused) so the outbox can still commit acks and deletes; free disk space on the data volume (${o.dir}); intake resumes by itself`;
    o.alerts.raise(DISK_LOW_ALERT, {
      code: 'GW_DISK_LOW',
      blocksReady: true,
      detail,
      fields: { freeBytes: freeBytes ?? -1, reserveBytes: o.reserveBytes, cause: cause ?? 'reserve' },
    });
  }

  function apply(volumeFree: number, reusable: number, sampleNo: number): void {
    const free = volumeFree + reusable;
    freeBytes = free;
    checkedAt = o.clock.now();
    const below = o.reserveBytes > 0 && free < o.reserveBytes;
    if (cause === 'write-failed') {
      // held until a sample that began after the failure finds the volume itself above the reserve
      // (space inside the outbox's file did not stop that write failing)
      if (sampleNo <= failedAt || volumeFree <= o.reserveBytes) {
        raise();
        return;
      }
      cause = below ? 'reserve' : undefined;
    } else cause = below ? 'reserve' : undefined;
    if (cause) raise();
    else o.alerts.clear(DISK_LOW_ALERT, `disk space back above the reserve (${mib(free)} free); input is accepted again`);
    arm();
  }

  function sample(): Promise<DiskState> {
    if (inFlight) return inFlight;
    const sampleNo = ++samples;
    inFlight = (async () => {
      try {
        const s = await statfs(o.dir);
        if (statfsFailing) {
          statfsFailing = false;
          o.logger.info({ dir: o.dir }, 'free disk space readable again');
        }
        let reusable = 0;
        try {
          reusable = Math.max(0, o.reusableBytes?.() ?? 0);
        } catch {
          /* the outbox is closing: count none */
        }
        apply(Number(s.bavail) * Number(s.bsize), reusable, sampleNo);
      } catch (err) {
        // not knowing is no reason to refuse input: a write that finds the disk full still reports it
        if (!statfsFailing)
          o.logger.warn(
            { code: 'GW_DISK_LOW', cause: (err as NodeJS.ErrnoException).code ?? 'unknown', dir: o.dir },
            'free disk space could not be read; the disk guard relies on write failures until it can',
          );
        statfsFailing = true;
      } finally {
        inFlight = undefined;
      }
      return state();
    })();
    return inFlight;
  }

  /** The timer runs while there is something to watch: a reserve, or a failure to see cleared. */
  function arm(): void {
    const wanted = running && (o.reserveBytes > 0 || cause !== undefined);
    if (wanted && !timer) {
      timer = setInterval(() => {
        void sample();
      }, o.intervalMs);
      timer.unref?.();
    } else if (!wanted && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  return {
    async start() {
      if (running) return;
      running = true;
      if (o.reserveBytes > 0) await sample();
      arm();
    },
    async stop() {
      running = false;
      arm();
      await inFlight;
    },
    admits: () => cause === undefined,
    writeFailed() {
      const first = cause !== 'write-failed';
      cause = 'write-failed';
      failedAt = samples;
      if (first) {
        o.logger.warn(
          { code: 'GW_DISK_LOW', freeBytes: freeBytes ?? -1 },
          'an outbox write failed for lack of space; input refused, free space checked now',
        );
        raise();
      }
      arm();
      // a sample begun before the failure cannot clear it: take a fresh one after it
      void (inFlight ? inFlight.then(() => sample()) : sample());
    },
    sample,
    state,
  };
}
