/**
 * The folder file source against the SourceAdapter contract (a real folder, chokidar watching it),
 * and the unmounted-share case: a folder that does not exist is reported down with
 * GW_SOURCE_FOLDER_MISSING, is not created, and is read once it appears.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFolderFileSource } from '../../adapters/file/file-source.ts';
import { createManualClock, type ManualClock } from '../../gateway/clock.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { waitFor } from '../support/net.ts';
import { recordingContext, sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

const POLL_MS = 50;

function folderSource(dir: string, clock: ManualClock = createManualClock()) {
  return createFolderFileSource({
    id: 'folder-contract',
    dir,
    polling: false,
    pollMs: POLL_MS,
    extensions: ['.hl7'],
    stableMs: 0,
    marker: '',
    after: 'move',
    clock,
    import: {
      adapterId: 'folder-contract',
      profile: 'hl7v2',
      format: 'hl7v2',
      csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' },
      maxWholeFileBytes: 1 << 20,
      pageSize: 50,
      timezone: 'UTC',
      now: () => clock.now(),
    },
  });
}

/** Written under a name the source skips, then renamed: the source never sees half a file. */
function dropFile(dir: string, n: number): void {
  const tmp = join(dir, `${tagOf(n)}.hl7.tmp`);
  writeFileSync(tmp, adtA04({ id: tagOf(n) }));
  renameSync(tmp, join(dir, `${tagOf(n)}.hl7`));
}

sourceAdapterContract({
  name: 'folder file source',
  whileStopped: 'queued',
  async make() {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-folder-contract-'));
    const clock = createManualClock();
    const adapter = folderSource(dir, clock);
    return {
      adapter,
      clock,
      async feed(n) {
        dropFile(dir, n);
      },
      async cleanup() {
        await adapter.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    // processed/ cannot be made inside the folder (a file holds its name): the start rejects
    const dir = mkdtempSync(join(tmpdir(), 'ewml-folder-contract-'));
    writeFileSync(join(dir, 'processed'), 'not a folder');
    const adapter = folderSource(dir);
    return {
      adapter,
      async fix() {
        rmSync(join(dir, 'processed'));
      },
      async cleanup() {
        await adapter.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

describe('folder source on a folder that does not exist (an unmounted share)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is down with GW_SOURCE_FOLDER_MISSING, does not create it, and reads it once it appears', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'ewml-folder-missing-'));
    dirs.push(parent);
    const dir = join(parent, 'share');
    const clock = createManualClock();
    const adapter = folderSource(dir, clock);
    const ctx = recordingContext();
    await adapter.start(ctx);
    expect(adapter.health()).toMatchObject({ status: 'down', detail: { code: 'GW_SOURCE_FOLDER_MISSING' } });
    clock.advance(POLL_MS * 3);
    expect(existsSync(dir)).toBe(false);
    expect(adapter.health().status).toBe('down');
    expect(clock.pending()).toBe(1);

    // the share is mounted, with an export already in it
    mkdirSync(dir);
    dropFile(dir, 7);
    clock.advance(POLL_MS);
    await waitFor(() => adapter.health().status === 'up', 10_000, 'the source to open the folder once it appeared');
    await waitFor(() => ctx.taken(7) === 1, 10_000, 'the export in the folder to be taken');
    await waitFor(() => existsSync(join(dir, 'processed', `${tagOf(7)}.hl7`)), 10_000, 'the export moved to processed/');
    await adapter.stop();
    expect(adapter.health().status).toBe('down');
    expect(clock.pending()).toBe(0);
  });

  it('a stop while waiting for the folder cancels the look, and a restart looks again', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'ewml-folder-missing-'));
    dirs.push(parent);
    const dir = join(parent, 'share');
    const clock = createManualClock();
    const adapter = folderSource(dir, clock);
    await adapter.start(recordingContext());
    await adapter.stop();
    expect(clock.pending()).toBe(0);
    expect(adapter.health().status).toBe('down');
    mkdirSync(dir);
    clock.advance(POLL_MS * 2);
    expect(existsSync(join(dir, 'processed'))).toBe(false);
    await adapter.start(recordingContext());
    expect(adapter.health().status).toBe('up');
    expect(existsSync(join(dir, 'processed'))).toBe(true);
    await adapter.stop();
  });
});

describe('folder source retries on its clock', () => {
  it('a file the outbox cannot take now is tried again after retryMs of clock time, not before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-folder-retry-'));
    const clock = createManualClock();
    const adapter = createFolderFileSource({
      id: 'folder-retry',
      dir,
      polling: false,
      pollMs: POLL_MS,
      extensions: ['.hl7'],
      stableMs: 0,
      marker: '',
      after: 'move',
      clock,
      retryMs: 5000,
      import: {
        adapterId: 'folder-retry',
        profile: 'hl7v2',
        format: 'hl7v2',
        csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' },
        maxWholeFileBytes: 1 << 20,
        pageSize: 50,
        timezone: 'UTC',
        now: () => clock.now(),
      },
    });
    const ctx = recordingContext();
    const take = ctx.intake.bind(ctx);
    let full = true;
    let tries = 0;
    ctx.intake = async (raw) => {
      tries++;
      if (full) return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
      return take(raw);
    };
    try {
      await adapter.start(ctx);
      dropFile(dir, 9);
      await waitFor(() => tries === 1 && clock.pending() === 1, 10_000, 'the refused file and its retry timer');
      expect(clock.nextDue()).toBe(clock.now() + 5000);
      full = false;
      clock.advance(4999);
      expect(tries).toBe(1);
      clock.advance(1);
      await waitFor(() => ctx.taken(9) === 1, 10_000, 'the file taken on its retry');
      await waitFor(() => existsSync(join(dir, 'processed', `${tagOf(9)}.hl7`)), 10_000, 'the file moved to processed/');
      expect(tries).toBe(2);
      await adapter.stop();
      expect(clock.pending()).toBe(0);
    } finally {
      await adapter.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
