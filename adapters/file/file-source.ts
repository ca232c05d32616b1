/**
 * A file source: export files from a local folder or mounted share (watched with chokidar; its
 * polling mode for SMB/NFS mounts, where change events are unreliable) or from an SFTP server
 * (or FTPS, listed on a cron schedule, remote-source.ts). Each file is imported exactly once (file-import.ts)
 * and then moved to `processed/` (or deleted); a file that cannot be read goes to `error/` with a
 * `.reason.txt` beside it; one the outbox cannot take now stays and is tried again.
 *
 * Safe pickup: a file is read only when complete — its size and mtime unchanged for `stableMs`, or,
 * with `marker` set (e.g. `.done`), once `<file><marker>` appears beside it (the marker is removed
 * with the file).
 *
 * A folder that does not exist is not created: it is most often a share not mounted yet, and
 * creating it would hide that (exports written into the empty mount point, then covered by the
 * mount). The source reports itself `down` with GW_SOURCE_FOLDER_MISSING, looks again every
 * `pollMs`, and starts reading once the folder is there.
 *
 * States: stopped → (start) → waiting-for-folder ⇄ … → watching → (stop) → stopped.
 */
import { mkdirSync, statSync } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { AdapterHealth, IntakeContext, SourceAdapter } from '../contracts.ts';
import { systemClock, type Clock, type TimerHandle } from '../../gateway/clock.ts';
import { importFile, type FileImportOptions, type ImportOutcome } from './file-import.ts';

export interface PickupOptions {
  /** File name endings taken (lower case), e.g. `.csv`. */
  extensions: readonly string[];
  stableMs: number;
  /** Non-empty: a file is ready when `<file><marker>` exists. */
  marker: string;
  /** After import: move to `processed/`, or delete. */
  after: 'move' | 'delete';
}

export interface FolderFileSourceOptions extends PickupOptions {
  id: string;
  dir: string;
  /** Poll the folder (mounted shares) instead of relying on change events. */
  polling: boolean;
  pollMs: number;
  import: FileImportOptions;
  retryMs?: number;
  /** Timers for retries and the look for a missing folder (default systemClock). */
  clock?: Clock;
}

/** The code a folder source reports while its folder does not exist (gateway/errors.ts). */
export const FOLDER_MISSING = 'GW_SOURCE_FOLDER_MISSING';

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export interface FileCounts {
  files: number;
  rows: number;
  alreadyImported: number;
  errorFiles: number;
  retries: number;
  deadLettered: number;
}

/** Whether a name is one the source takes (not a marker, temp file or hidden file). */
export function takes(name: string, p: PickupOptions): boolean {
  const lower = name.toLowerCase();
  if (name.startsWith('.') || lower.endsWith('.tmp') || lower.endsWith('.part') || lower.endsWith('.reason.txt') || lower.endsWith('~'))
    return false;
  if (p.marker && lower.endsWith(p.marker.toLowerCase())) return false;
  return p.extensions.some((x) => lower.endsWith(x));
}

export function createFolderFileSource(opts: FolderFileSourceOptions): SourceAdapter {
  // one absolute spelling: chokidar reports paths as given, and `./export` ≠ `export`
  const o = { ...opts, dir: resolve(opts.dir) };
  const processed = join(o.dir, 'processed');
  const errors = join(o.dir, 'error');
  const counts: FileCounts = { files: 0, rows: 0, alreadyImported: 0, errorFiles: 0, retries: 0, deadLettered: 0 };
  const queue: string[] = [];
  const queued = new Set<string>();
  const clock = o.clock ?? systemClock;
  const retryTimers = new Set<TimerHandle>();
  let watcher: FSWatcher | undefined;
  /** Set while the folder is missing: the timer of the next look. */
  let lookTimer: TimerHandle | undefined;
  let missing = false;
  /** The watch being set up (start or a folder that appeared), so stop waits for it. */
  let opening: Promise<void> | undefined;
  let ctx: IntakeContext | undefined;
  let working: Promise<void> | undefined;
  let stopped = true;
  let current: string | undefined;

  async function moveTo(folder: string, file: string): Promise<string> {
    let target = join(folder, basename(file));
    try {
      await stat(target);
      target = join(folder, `${o.import.now()}-${basename(file)}`);
    } catch {
      /* free */
    }
    await rename(file, target);
    return target;
  }

  async function settle(file: string, r: ImportOutcome, c: IntakeContext): Promise<void> {
    const name = basename(file);
    const marker = o.marker ? file + o.marker : undefined;
    if (r.status === 'imported' || r.status === 'already') {
      if (r.status === 'imported') {
        counts.files++;
        counts.rows += r.rows - r.resumedAfter;
        counts.deadLettered += r.deadLettered;
      } else counts.alreadyImported++;
      if (o.after === 'delete') await rm(file, { force: true });
      else await moveTo(processed, file);
      if (marker) await rm(marker, { force: true });
      c.logger.info(
        {
          file: name,
          outcome: r.status,
          ...(r.status === 'imported' ? { rows: r.rows, resumedAfter: r.resumedAfter, deadLettered: r.deadLettered } : {}),
        },
        r.status === 'imported' ? 'file imported' : 'file already imported (same content); not imported again',
      );
      return;
    }
    if (r.status === 'failed') {
      const target = await moveTo(errors, file);
      // written under a temporary name and renamed: whoever sees the reason file sees all of it
      await writeFile(`${target}.reason.txt.tmp`, `${r.code}: ${r.reason}\n`);
      await rename(`${target}.reason.txt.tmp`, `${target}.reason.txt`);
      if (marker) await rm(marker, { force: true });
      counts.errorFiles++;
      c.logger.warn({ file: name, code: r.code }, 'file could not be imported; moved to error/ with a reason file');
      return;
    }
    counts.retries++;
    c.logger.warn({ file: name, reason: r.reason }, 'file import paused (it resumes where it stopped)');
    retry(file);
  }

  function retry(file: string): void {
    const t = clock.setTimeout(() => {
      retryTimers.delete(t);
      enqueue(file);
    }, o.retryMs ?? 5000);
    retryTimers.add(t);
  }

  async function work(): Promise<void> {
    while (!stopped && queue.length) {
      const file = queue.shift()!;
      queued.delete(file);
      current = file;
      try {
        let st;
        try {
          st = await stat(file);
        } catch {
          continue;
        } // gone (moved by hand, or a duplicate event)
        if (!st.isFile()) continue;
        const r = await importFile(ctx!, o.import, { path: file, name: basename(file), size: st.size, mtimeMs: st.mtimeMs });
        if (!stopped) await settle(file, r, ctx!);
      } catch (e) {
        ctx!.logger.error({ file: basename(file), err: e }, 'file import failed; it stays and is tried again');
        retry(file);
      } finally {
        current = undefined;
      }
    }
  }

  function enqueue(file: string): void {
    if (stopped || queued.has(file) || current === file) return;
    queued.add(file);
    queue.push(file);
    kick();
  }

  function kick(): void {
    working ??= work().finally(() => {
      working = undefined;
      if (queue.length && !stopped) kick();
    });
  }

  function onFile(p: string): void {
    const path = resolve(p);
    if (dirname(path) !== o.dir) return;
    const name = basename(path);
    if (o.marker && name.toLowerCase().endsWith(o.marker.toLowerCase())) {
      const target = path.slice(0, -o.marker.length);
      if (takes(basename(target), o))
        void stat(target).then(
          () => enqueue(target),
          () => undefined,
        );
      return;
    }
    if (!takes(name, o)) return;
    if (o.marker) {
      void stat(path + o.marker).then(
        () => enqueue(path),
        () => undefined,
      );
      return;
    }
    enqueue(path);
  }

  /** Creates processed/ and error/ inside the (existing) folder and watches it. */
  async function openWatch(c: IntakeContext): Promise<void> {
    mkdirSync(processed, { recursive: true });
    mkdirSync(errors, { recursive: true });
    // imported here, not at the top: a gateway without a folder source never loads the watcher
    const { watch } = await import('chokidar');
    const w = watch(o.dir, {
      depth: 0,
      ignoreInitial: false,
      usePolling: o.polling,
      interval: o.pollMs,
      binaryInterval: o.pollMs,
      // with a marker the marker says when; otherwise size and mtime must hold still
      awaitWriteFinish:
        o.marker || o.stableMs === 0
          ? false
          : { stabilityThreshold: o.stableMs, pollInterval: Math.max(20, Math.min(200, Math.floor(o.stableMs / 4))) },
      ignored: (p: string) => p === processed || p === errors || p.startsWith(processed + '/') || p.startsWith(errors + '/'),
    });
    w.on('add', onFile);
    w.on('change', onFile);
    w.on('error', (e) => c.logger.warn({ err: e }, 'folder watch error'));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    // a stop that came while the watch was being set up: it must not outlive the stop
    if (stopped) {
      await w.close();
      return;
    }
    watcher = w;
    c.logger.info({ dir: o.dir, polling: o.polling }, 'watching folder for export files');
  }

  /** While the folder is missing: look again every pollMs; open the watch once it is there. */
  function lookLater(c: IntakeContext): void {
    lookTimer = clock.setTimeout(() => {
      lookTimer = undefined;
      if (stopped) return;
      if (!isFolder(o.dir)) {
        lookLater(c);
        return;
      }
      missing = false;
      c.logger.info({ code: FOLDER_MISSING, id: o.id }, 'export folder is there now; reading it');
      opening = openWatch(c)
        .catch((e: unknown) => {
          // e.g. processed/ cannot be created: report it and look again, as for a missing folder
          missing = true;
          c.logger.error(
            { code: (e as NodeJS.ErrnoException).code ?? 'unknown', id: o.id },
            'export folder could not be opened; looking again',
          );
          if (!stopped) lookLater(c);
        })
        .finally(() => {
          opening = undefined;
        });
    }, o.pollMs);
  }

  return {
    id: o.id,
    async start(c) {
      if (!stopped) return;
      ctx = c;
      if (!isFolder(o.dir)) {
        // not created: an unmounted share must show as one, not as an empty folder
        stopped = false;
        missing = true;
        c.logger.error(
          { code: FOLDER_MISSING, id: o.id, pollMs: o.pollMs },
          'export folder does not exist (share not mounted?); not created, looked for again',
        );
        lookLater(c);
        return;
      }
      // processed/ and error/ first: a folder they cannot be made in rejects the start, and the
      // source stays stopped so the composition root's retry starts it afresh
      mkdirSync(processed, { recursive: true });
      mkdirSync(errors, { recursive: true });
      stopped = false;
      missing = false;
      opening = openWatch(c).finally(() => {
        opening = undefined;
      });
      try {
        await opening;
      } catch (e) {
        stopped = true;
        throw e;
      }
    },
    async stop() {
      stopped = true;
      clock.clearTimeout(lookTimer);
      lookTimer = undefined;
      for (const t of retryTimers) clock.clearTimeout(t);
      retryTimers.clear();
      await opening?.catch(() => undefined);
      await watcher?.close();
      watcher = undefined;
      await working;
      missing = false;
    },
    health(): AdapterHealth {
      if (!stopped && missing)
        return { status: 'down', detail: { code: FOLDER_MISSING, state: 'folder missing (share not mounted?)', ...counts } };
      return {
        status: stopped ? 'down' : 'up',
        detail: { ...counts, queued: queue.length, ...(current ? { importing: basename(current) } : {}) },
      };
    },
  };
}
