/**
 * A recorded fault on a real filesystem: another program fills the gateway's data volume (a small
 * tmpfs of its own, root only as CI runs). The monitor draws the trend from its statfs samples and
 * names AGENT_HEALTH_DISK_FILLING — a warning while the reserve is hours away, an error once it is
 * close — published once per severity, and cleared when the space is freed.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountSmallDisk, type SmallDisk } from '../../support/small-disk.ts';
import { POLL_MS, startHealthRig } from './health-gateway.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
let disk: SmallDisk;
beforeAll(() => {
  disk = mountSmallDisk(64 * MiB);
});
afterAll(() => disk?.unmount());

describe('health monitor: the data disk fills', () => {
  it('predicts the hours left from the trend, escalates, and clears when space is freed', async () => {
    const rig = await startHealthRig({ outbox: { diskReserveBytes: 8 * MiB } }, { dataDir: disk.dir });
    const filler = join(disk.dir, 'other-program.log');
    type Report = {
      disk: { freeBytes: number; bytesPerHour?: number; hoursLeft?: number; samples: number };
      findings: Array<{ code: string; severity: string; evidence: Record<string, number> }>;
    };
    const report = () => rig.gw.parts.agents.report('health') as Report;
    try {
      // 64 KiB a minute: 3.75 MiB an hour, so ~40 MiB over the reserve lasts hours (a warning)
      for (let m = 1; m <= 9; m++) {
        appendFileSync(filler, Buffer.alloc(64 * KiB, 1));
        await rig.step(POLL_MS);
      }
      // 10 samples over 9 min: under minSpanMs (10 min), so no prediction yet
      expect(report().disk.samples).toBe(10);
      expect(rig.findings).toEqual([]);
      appendFileSync(filler, Buffer.alloc(64 * KiB, 1));
      await rig.step(POLL_MS);
      const r = report();
      expect(r.disk.bytesPerHour).toBe(60 * 64 * KiB);
      const hoursLeft = Math.round(((r.disk.freeBytes - 8 * MiB) / (60 * 64 * KiB)) * 10) / 10;
      expect(r.disk.hoursLeft).toBe(hoursLeft);
      expect(hoursLeft).toBeGreaterThan(6);
      expect(hoursLeft).toBeLessThan(24);
      expect(rig.findings.map((f) => [f.code, f.severity, f.subject])).toEqual([['AGENT_HEALTH_DISK_FILLING', 'warning', 'disk']]);
      expect(rig.findings[0].summary).toMatch(/^the data disk will reach its reserve in about [0-9.]+ h at this rate \(3\.8 MiB\/h, /);
      expect(r.findings[0].evidence).toEqual({
        freeBytes: r.disk.freeBytes,
        reserveBytes: 8 * MiB,
        samples: 11,
        spanMinutes: 10,
        bytesPerHour: 60 * 64 * KiB,
        hoursLeft,
      });
      // the same rate for 10 more minutes: the same finding, not published again
      for (let m = 0; m < 10; m++) {
        appendFileSync(filler, Buffer.alloc(64 * KiB, 1));
        await rig.step(POLL_MS);
      }
      expect(rig.findings).toHaveLength(1);
      // faster: 2 MiB a minute; within errorHours (6 h), it is an error, published once more
      for (let m = 0; m < 5; m++) {
        appendFileSync(filler, Buffer.alloc(2 * MiB, 1));
        await rig.step(POLL_MS);
      }
      expect(rig.findings.map((f) => [f.code, f.severity])).toEqual([
        ['AGENT_HEALTH_DISK_FILLING', 'warning'],
        ['AGENT_HEALTH_DISK_FILLING', 'error'],
      ]);
      expect(rig.cleared).toEqual([]);
      // the other program's file is removed: space is back, the old trend is dropped, the finding clears
      rmSync(filler);
      await rig.step(POLL_MS);
      expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_DISK_FILLING', subject: 'disk' }]);
      expect(report().disk.samples).toBe(1);
      expect(report().findings).toEqual([]);
      for (let m = 0; m < 30; m++) await rig.step(POLL_MS);
      expect(rig.findings).toHaveLength(2);
      expect(rig.cleared).toHaveLength(1);
    } finally {
      await rig.stop();
    }
  });
});
