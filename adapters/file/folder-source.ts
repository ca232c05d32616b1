/**
 * A folder source: HL7 v2 files dropped in a local folder or a mounted share (SMB/NFS) by a PMS
 * export. Polled (readdir + stat), which works on network shares where change events are
 * unreliable.
 *
 * Safe pickup: a file is read only after its size and mtime stayed the same for `stableMs`. Each
 * message of the file goes through intake; the outbox's resend check (MSH-3/4/10 and content)
 * makes a re-read after a crash skip what was already committed, so a file is imported exactly
 * once per message, without a gap. When every message is settled the file moves to `processed/`;
 * a file that is not HL7 at all moves to `error/` with a `.reason.txt` beside it; a file whose
 * intake was refused for now (outbox full) stays and is tried again.
 */
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AdapterHealth, IntakeContext, SourceAdapter } from '../contracts.ts';
import { splitHl7Messages } from '../hl7v2/hl7-batch.ts';
import { decodeHl7Bytes } from '../hl7v2/hl7-charset.ts';

export interface FolderSourceOptions {
  id: string;
  dir: string;
  /** File name endings taken (lower case). */
  extensions: readonly string[];
  stableMs: number;
  pollMs: number;
  now?: () => number;
}

interface Seen { size: number; mtimeMs: number; since: number }

export function createFolderSource(o: FolderSourceOptions): SourceAdapter {
  const now = o.now ?? Date.now;
  const processed = join(o.dir, 'processed');
  const errors = join(o.dir, 'error');
  const seen = new Map<string, Seen>();
  const counts = { files: 0, messages: 0, errorFiles: 0, retries: 0 };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let ctx: IntakeContext | undefined;
  let stopped = true;

  async function moveTo(folder: string, file: string): Promise<string> {
    let target = join(folder, basename(file));
    try { await stat(target); target = join(folder, `${now()}-${basename(file)}`); } catch { /* free */ }
    await rename(file, target);
    return target;
  }

  async function importFile(file: string, c: IntakeContext): Promise<void> {
    const bytes = await readFile(file);
    const messages = splitHl7Messages(decodeHl7Bytes(bytes));
    if (messages.length === 0 || !messages[0].startsWith('MSH')) {
      const target = await moveTo(errors, file);
      await writeFile(`${target}.reason.txt`, 'GW_PARSE_FAILED: the file holds no HL7 v2 message (no MSH segment)\n');
      counts.errorFiles++;
      c.logger.warn({ file: basename(file), code: 'GW_PARSE_FAILED' }, 'file is not HL7; moved to error/');
      return;
    }
    let refusedForNow = 0;
    for (const text of messages) {
      const r = await c.intake({ adapter: o.id, format: 'hl7v2', text });
      if (r.status === 'rejected' && r.retry !== 'permanent') refusedForNow++;
      else counts.messages++;
    }
    if (refusedForNow) {
      counts.retries++;
      c.logger.warn({ file: basename(file), refused: refusedForNow }, 'outbox refused part of the file for now; it stays and is read again');
      return;
    }
    await moveTo(processed, file);
    counts.files++;
    c.logger.info({ file: basename(file), messages: messages.length }, 'file imported; moved to processed/');
  }

  async function poll(c: IntakeContext): Promise<void> {
    let names: string[];
    try { names = await readdir(o.dir); } catch (e) { c.logger.warn({ code: (e as NodeJS.ErrnoException).code }, 'cannot list the folder'); return; }
    const t = now();
    for (const name of names.sort()) {
      if (stopped) return;
      if (!o.extensions.some((x) => name.toLowerCase().endsWith(x))) continue;
      const file = join(o.dir, name);
      let st;
      try { st = await stat(file); } catch { continue; }
      if (!st.isFile()) continue;
      const prev = seen.get(file);
      if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) { seen.set(file, { size: st.size, mtimeMs: st.mtimeMs, since: t }); continue; }
      if (t - prev.since < o.stableMs) continue;
      seen.delete(file);
      try { await importFile(file, c); } catch (e) {
        c.logger.error({ file: name, code: (e as NodeJS.ErrnoException).code ?? 'error' }, 'file import failed; it stays and is tried again');
      }
    }
  }

  function schedule(c: IntakeContext): void {
    if (stopped) return;
    timer = setTimeout(() => { running = poll(c).finally(() => { running = undefined; schedule(c); }); }, o.pollMs);
  }

  return {
    id: o.id,
    async start(c) {
      if (!stopped) return;
      mkdirSync(processed, { recursive: true });
      mkdirSync(errors, { recursive: true });
      ctx = c;
      stopped = false;
      schedule(c);
      c.logger.info({ dir: o.dir }, 'watching folder');
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      ctx?.logger.info('folder source stopped');
    },
    health(): AdapterHealth {
      return { status: stopped ? 'down' : 'up', detail: { ...counts, waiting: seen.size } };
    },
  };
}
