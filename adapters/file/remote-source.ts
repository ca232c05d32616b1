/**
 * Export files on an SFTP or FTPS server (remote-folder.ts), listed on a cron schedule (node-cron).
 * The server is pinned (SFTP host key, FTPS certificate) and refused before any secret is sent
 * when it is not the one expected. A file is taken when
 * complete (size and mtime unchanged across listings for `stableMs`, or its marker present),
 * downloaded to a staging folder, imported (file-import.ts, exactly once by its content hash),
 * and then moved to `processed/` on the server (or deleted); a file that cannot be read is moved
 * to `error/` there with a `.reason.txt`. A crash between import and move re-downloads the file
 * and finds it in the ledger: it is moved, not imported again.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import cron from 'node-cron';
import type { AdapterHealth, IntakeContext, SourceAdapter } from '../contracts.ts';
import { importFile, type FileImportOptions } from './file-import.ts';
import { forgetStaged, stagedWriter } from './staged-file.ts';
import { takes, type FileCounts, type PickupOptions } from './file-source.ts';
import { connectFtps, connectSftp, type FtpsConnection, type RemoteFolder, type SftpConnection } from './remote-folder.ts';

export interface RemoteFileSourceOptions extends PickupOptions {
  id: string;
  dir: string;
  /** SFTP or FTPS. */
  remote: { kind: 'sftp'; sftp: SftpConnection } | { kind: 'ftps'; ftps: FtpsConnection };
  import: FileImportOptions;
  stagingDir: string;
}

export function createRemoteFileSource(o: RemoteFileSourceOptions): SourceAdapter {
  const counts: FileCounts = { files: 0, rows: 0, alreadyImported: 0, errorFiles: 0, retries: 0, deadLettered: 0 };
  const seen = new Map<string, { size: number; mtime: number; since: number }>();
  let task: ReturnType<typeof cron.schedule> | undefined;
  let ctx: IntakeContext | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  let lastError: string | undefined;
  /** The last error came before the listing (connect, login, list): nothing was read, the source is down. */
  let listFailed = false;
  let lastListAt: number | undefined;
  const remote = (...p: string[]) => posix.join(o.dir, ...p);

  const schedule = o.remote.kind === 'sftp' ? o.remote.sftp.schedule : o.remote.ftps.schedule;
  const where = o.remote.kind === 'sftp' ? o.remote.sftp.host : o.remote.ftps.host;
  const label = o.remote.kind.toUpperCase();
  const connect = (): Promise<RemoteFolder> => (o.remote.kind === 'sftp' ? connectSftp(o.remote.sftp) : connectFtps(o.remote.ftps));

  async function moveRemote(client: RemoteFolder, name: string, folder: 'processed' | 'error'): Promise<string> {
    await client.mkdir(remote(folder));
    let target = remote(folder, name);
    if (await client.exists(target)) target = remote(folder, `${o.import.now()}-${name}`);
    await client.rename(remote(name), target);
    return target;
  }

  async function once(c: IntakeContext): Promise<void> {
    let client: RemoteFolder | undefined;
    let listed = false;
    try {
      client = await connect();
      const list = await client.list(o.dir);
      lastListAt = o.import.now();
      lastError = undefined;
      listFailed = false;
      listed = true;
      const names = new Set(list.filter((f) => f.file).map((f) => f.name));
      for (const f of list.filter((x) => x.file && takes(x.name, o)).sort((a, b) => a.name.localeCompare(b.name))) {
        if (stopped) return;
        const now = o.import.now();
        if (o.marker) {
          if (!names.has(f.name + o.marker)) continue;
        } else {
          const prev = seen.get(f.name);
          if (!prev || prev.size !== f.size || prev.mtime !== f.mtime) {
            seen.set(f.name, { size: f.size, mtime: f.mtime, since: now });
            if (o.stableMs > 0) continue;
          } else if (now - prev.since < o.stableMs) continue;
        }
        seen.delete(f.name);
        const local = join(o.stagingDir, f.name);
        try {
          // inside the try: a download cut short (the server gone, a stop) leaves no partial copy behind;
          // it is written encrypted under a key only this process holds, so a kill leaves no plaintext
          const staged = stagedWriter(local);
          try {
            await client.download(remote(f.name), staged.stream);
          } finally {
            await staged.done();
          }
          const st = await stat(local);
          if (st.size !== f.size) {
            c.logger.warn({ file: f.name }, 'file changed while downloading; taken at the next listing');
            continue;
          }
          const r = await importFile(c, o.import, { path: local, name: f.name, size: f.size, mtimeMs: f.mtime });
          if (r.status === 'imported' || r.status === 'already') {
            if (r.status === 'imported') {
              counts.files++;
              counts.rows += r.rows - r.resumedAfter;
              counts.deadLettered += r.deadLettered;
            } else counts.alreadyImported++;
            if (o.after === 'delete') await client.remove(remote(f.name));
            else await moveRemote(client, f.name, 'processed');
            if (o.marker) await client.remove(remote(f.name + o.marker)).catch(() => undefined);
            c.logger.info(
              { file: f.name, outcome: r.status, ...(r.status === 'imported' ? { rows: r.rows, resumedAfter: r.resumedAfter } : {}) },
              r.status === 'imported' ? `${label} file imported` : `${label} file already imported (same content); not imported again`,
            );
          } else if (r.status === 'failed') {
            const target = await moveRemote(client, f.name, 'error');
            // put under a temporary name and renamed: whoever sees the reason file sees all of it
            await client.put(Buffer.from(`${r.code}: ${r.reason}\n`), `${target}.reason.txt.tmp`);
            await client.replace(`${target}.reason.txt.tmp`, `${target}.reason.txt`);
            if (o.marker) await client.remove(remote(f.name + o.marker)).catch(() => undefined);
            counts.errorFiles++;
            c.logger.warn(
              { file: f.name, code: r.code },
              `${label} file could not be imported; moved to error/ on the server with a reason file`,
            );
          } else {
            counts.retries++;
            c.logger.warn({ file: f.name, reason: r.reason }, `${label} file import paused; it resumes at a later listing`);
          }
        } finally {
          await rm(local, { force: true });
          forgetStaged(local);
        }
      }
    } catch (e) {
      // the code only: a server's message can name the file, and export file names can carry a patient's name
      const code = (e as { code?: unknown }).code;
      lastError = typeof code === 'string' || typeof code === 'number' ? String(code) : e instanceof Error ? e.name : 'unknown';
      // listed: the error is a file's (a download, a move), and the next file or listing goes on
      listFailed = !listed;
      c.logger.warn(
        { code: 'GW_SOURCE_UNREACHABLE', cause: lastError },
        listFailed
          ? `${label} listing failed; tried again at the next scheduled time`
          : `${label} file handling failed; tried again at the next listing`,
      );
    } finally {
      await client?.close();
    }
  }

  function tick(): void {
    if (stopped || running || !ctx) return;
    running = once(ctx).finally(() => {
      running = undefined;
    });
  }

  return {
    id: o.id,
    async start(c) {
      if (!stopped) return;
      if (!cron.validate(schedule)) throw new Error(`files.${o.id}.${o.remote.kind}.schedule "${schedule}" is not a cron expression`);
      // A copy left here by a run that died between moving the file on the server and removing
      // the copy is plaintext PHI nothing will ever read or remove again; the server keeps the
      // original (still in the folder, or in processed/ or error/), so clearing loses nothing.
      rmSync(o.stagingDir, { recursive: true, force: true });
      mkdirSync(o.stagingDir, { recursive: true, mode: 0o700 });
      // a fresh start says nothing yet: an error shown is one this start met
      lastError = undefined;
      listFailed = false;
      ctx = c;
      stopped = false;
      task = cron.schedule(schedule, tick);
      tick();
      c.logger.info({ host: where, dir: o.dir, schedule, protocol: o.remote.kind }, `polling ${label} folder for export files`);
    },
    async stop() {
      stopped = true;
      await task?.stop();
      task = undefined;
      await running;
      // nothing of an export file stays in the data folder while the gateway is stopped
      rmSync(o.stagingDir, { recursive: true, force: true });
    },
    health(): AdapterHealth {
      return {
        // a listing that fails reads nothing: the source is down until one succeeds; a file's error is a degradation
        status: stopped || listFailed ? 'down' : lastError ? 'degraded' : 'up',
        detail: {
          ...counts,
          ...(lastError ? { error: lastError } : {}),
          ...(lastListAt ? { lastListAt: new Date(lastListAt).toISOString() } : {}),
        },
      };
    },
  };
}
