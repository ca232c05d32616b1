/**
 * The disk guard on a real small tmpfs (ENOSPC from the kernel, not a mock), and the outbox's
 * answer to a write that finds the disk full: GW_DISK_LOW, rolled back whole, the writer alive.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAlertBoard } from '../../../gateway/alerts.ts';
import { systemClock } from '../../../gateway/clock.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { isGatewayError } from '../../../gateway/errors.ts';
import { createDiskGuard, DISK_LOW_ALERT } from '../../../gateway/outbox/disk-guard.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { fillDisk, mountSmallDisk, type SmallDisk } from '../../support/small-disk.ts';
import { waitFor } from '../../support/net.ts';

const MiB = 1024 * 1024;
const silent = pino({ level: 'silent' });

const fill = fillDisk;

function board() {
  return createAlertBoard({ clock: systemClock, logger: silent, bus: createEventBus(() => undefined) });
}

describe('disk guard', () => {
  let disk: SmallDisk;
  beforeAll(() => {
    disk = mountSmallDisk(4 * MiB);
  });
  afterAll(() => disk.unmount());
  afterEach(() => rmSync(join(disk.dir, 'filler'), { force: true }));

  it('refuses input while free space is below the reserve, raises diskLow, and resumes by itself when space returns', async () => {
    const alerts = board();
    const guard = createDiskGuard({ dir: disk.dir, reserveBytes: 1 * MiB, intervalMs: 50, clock: systemClock, logger: silent, alerts });
    await guard.start();
    try {
      expect(guard.state()).toMatchObject({ freeBytes: 4 * MiB, reserveBytes: 1 * MiB, low: false });
      expect(guard.admits()).toBe(true);
      fill(join(disk.dir, 'filler'), 3.5 * MiB);
      const low = await guard.sample();
      expect(low).toMatchObject({ freeBytes: 0.5 * MiB, low: true, cause: 'reserve' });
      expect(guard.admits()).toBe(false);
      expect(alerts.active[DISK_LOW_ALERT]).toMatchObject({ code: 'GW_DISK_LOW', blocksReady: true });
      expect(alerts.readyBlockers()).toEqual([
        `disk low: 0.5 MiB free on the data volume, below the reserve of 1.0 MiB (outbox.diskReserveBytes): new input is refused (negative ACK, polls paused) so the outbox can still commit acks and deletes; free disk space on the data volume (${disk.dir}); intake resumes by itself`,
      ]);
      rmSync(join(disk.dir, 'filler'));
      // no sample asked for: the timer finds the space
      await waitFor(() => guard.admits(), 5000, 'guard admits again');
      expect(alerts.isActive(DISK_LOW_ALERT)).toBe(false);
      expect(guard.state()).toMatchObject({ freeBytes: 4 * MiB, low: false });
    } finally {
      await guard.stop();
    }
  });

  it('a write that failed for lack of space refuses at once, even with the reserve off, until a later sample finds space', async () => {
    const alerts = board();
    const guard = createDiskGuard({ dir: disk.dir, reserveBytes: 0, intervalMs: 50, clock: systemClock, logger: silent, alerts });
    await guard.start();
    try {
      fill(join(disk.dir, 'filler'));
      // reserve 0: sampling alone never refuses
      expect((await guard.sample()).low).toBe(false);
      expect(guard.admits()).toBe(true);
      guard.writeFailed();
      expect(guard.admits()).toBe(false);
      expect(alerts.active[DISK_LOW_ALERT]?.detail).toMatch(/^disk full: an outbox write failed for lack of space on the data volume/);
      // samples of a still-full volume keep it refused
      expect(await guard.sample()).toMatchObject({ freeBytes: 0, low: true, cause: 'write-failed' });
      rmSync(join(disk.dir, 'filler'));
      await waitFor(() => guard.admits(), 5000, 'guard admits again');
      expect(alerts.isActive(DISK_LOW_ALERT)).toBe(false);
    } finally {
      await guard.stop();
    }
  });

  it('counts the space the outbox holds free inside its file as free', async () => {
    const alerts = board();
    const guard = createDiskGuard({
      dir: disk.dir,
      reserveBytes: 1 * MiB,
      intervalMs: 50,
      clock: systemClock,
      logger: silent,
      alerts,
      reusableBytes: () => 2 * MiB,
    });
    await guard.start();
    try {
      fill(join(disk.dir, 'filler'), 3.5 * MiB);
      expect(await guard.sample()).toMatchObject({ freeBytes: 2.5 * MiB, low: false });
      expect(guard.admits()).toBe(true);
    } finally {
      await guard.stop();
    }
  });
});

describe('outbox write on a full disk', () => {
  let disk: SmallDisk;
  beforeAll(() => {
    disk = mountSmallDisk(4 * MiB);
  });
  afterAll(() => disk.unmount());

  for (const writer of ['inline', 'thread', 'auto'] as const) {
    it(`fails with GW_DISK_LOW and stores nothing of it; the writer stays up; the same entry goes in once space returns (writer ${writer})`, async () => {
      const dir = join(disk.dir, writer);
      mkdirSync(dir);
      const file = join(dir, 'outbox.db');
      const outbox = createSqliteOutbox({ file, maxBytes: 64 * MiB, clock: systemClock, writer });
      await outbox.open();
      const filler = join(disk.dir, 'filler');
      try {
        const rec = (id: string, bytes: number) => ({ id, type: 'patient', partitionKey: id, sealed: randomBytes(bytes) });
        expect(await outbox.enqueue({ records: [rec('r1', 1000)], dedupe: { key: 'k1', hash: 'h1' } })).toBe('accepted');
        fill(filler);
        const big = { records: [rec('r2', 300_000)], dedupe: { key: 'k2', hash: 'h2' } };
        const err = await outbox.enqueue(big).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isGatewayError(err, 'GW_DISK_LOW')).toBe(true);
        expect(outbox.stats()).toMatchObject({ pending: 1, writer: 'running', writerRestarts: 0 });
        rmSync(filler);
        // the dedupe key was rolled back with the rows: the resend is new, not a duplicate
        expect(await outbox.enqueue(big)).toBe('accepted');
        expect(outbox.stats()).toMatchObject({ pending: 2, writer: 'running', writerRestarts: 0 });
      } finally {
        rmSync(filler, { force: true });
        await outbox.close();
      }
      const again = createSqliteOutbox({ file, maxBytes: 64 * MiB, clock: systemClock, writer: 'inline' });
      await again.open();
      try {
        expect(again.claim(10).rows.map((r) => [r.id, r.sealed.byteLength])).toEqual([
          ['r1', 1000],
          ['r2', 300_000],
        ]);
      } finally {
        await again.close();
      }
      rmSync(dir, { recursive: true, force: true });
    });
  }
});
