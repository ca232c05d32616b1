/**
 * The sync scheduler's learned state across restarts: written atomically at each hour's end and at
 * stop and read back whole; a damaged file is moved aside (never replaced silently), reported with
 * its code, and learning starts fresh; a write that fails (a real read-only filesystem) is reported
 * once, leaves the previous file as it was, and loses nothing: the next write has it all.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STATE_FILE } from '../../../agents/sync/state-file.ts';
import { mountSmallDisk, type SmallDisk } from '../../support/small-disk.ts';
import { pollThrough, startSyncRig, type SyncRig } from './sync-rig.ts';

/** Changes every poll from 08:00 to 18:00 on weekdays (UTC). */
const clinic = (t: number) => {
  const d = new Date(t);
  return d.getUTCDay() >= 1 && d.getUTCDay() <= 5 && d.getUTCHours() >= 8 && d.getUTCHours() < 18 ? 1 : 0;
};
type SourceReport = { cycles: number; changes: number; plan: string; changeDays: number };
const pmsOf = (rig: SyncRig) => (rig.agent.report().sources as Record<string, SourceReport>).pms;

let rigs: SyncRig[] = [];
let disk: SmallDisk | undefined;
afterEach(async () => {
  for (const r of rigs) await r.stop();
  rigs = [];
  disk?.unmount();
  disk = undefined;
});
const start = async (...a: Parameters<typeof startSyncRig>) => {
  const r = await startSyncRig(...a);
  rigs.push(r);
  return r;
};

describe('sync scheduler: learned state across restarts', () => {
  it('writes it at each hour’s end and at stop, and a restart goes on from all of it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-sync-'));
    const a = await start(dataDir);
    pollThrough(a, 26, clinic);
    const before = pmsOf(a);
    const file = join(dataDir, 'agents', 'sync', STATE_FILE);
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);
    await a.stop();
    rigs = [];
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { sources: Record<string, { cycles: number }>; history: unknown[] };
    expect(saved.sources.pms.cycles).toBe(before.cycles);

    const b = await start(dataDir, {}, a.clock.now());
    expect(pmsOf(b)).toMatchObject({ cycles: before.cycles, changes: before.changes, plan: before.plan, changeDays: 1 });
    expect(before.plan).toBe('clinic hours learned 08:00–18:00 Mon–Sun from 1 day of changes; interval 30 s → 10 min outside them');
    expect((b.agent.report().history as unknown[]).length).toBe(saved.history.length);
    // Tue 02:00: the night learned on Monday
    expect(b.cycle(0)).toBe(600_000);
  });

  it('moves a damaged file aside with its code, keeps its bytes, and learns afresh', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-sync-'));
    const dir = join(dataDir, 'agents', 'sync');
    mkdirSync(dir, { recursive: true });
    const torn = '{"version":1,"sources":{"pms":{"obs":[1,2';
    writeFileSync(join(dir, STATE_FILE), torn);
    const rig = await start(dataDir);
    const damaged = rig.logs.filter((l) => l.code === 'AGENT_SYNC_STATE_DAMAGED');
    expect(damaged.length).toBe(1);
    expect(damaged[0].movedTo).toBe(join(dir, `${STATE_FILE}.damaged-2026-03-02T00-00-00-000Z`));
    expect(readdirSync(dir).sort()).toEqual([`${STATE_FILE}.damaged-2026-03-02T00-00-00-000Z`]);
    expect(readFileSync(join(dir, `${STATE_FILE}.damaged-2026-03-02T00-00-00-000Z`), 'utf8')).toBe(torn);
    const report = rig.agent.report();
    expect(report.sources).toEqual({});
    expect(report.damagedStateMovedTo).toBe(damaged[0].movedTo);
    expect((report.history as Array<{ change: string }>).map((h) => h.change)).toEqual(['reset']);
    // learning goes on, and the next hour's end writes a good file beside the damaged one
    pollThrough(rig, 2, () => 0);
    expect(JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')).sources.pms.cycles).toBeGreaterThan(0);
  });

  it('a failed write (read-only filesystem) is reported once, the old file stays, and nothing is lost', async () => {
    disk = mountSmallDisk(4 * 1024 * 1024);
    const rig = await start(disk.dir);
    const file = join(disk.dir, 'agents', 'sync', STATE_FILE);
    pollThrough(rig, 2, clinic);
    const good = readFileSync(file, 'utf8');
    execFileSync('mount', ['-o', 'remount,ro', disk.dir]);
    let cyclesRead: number;
    try {
      pollThrough(rig, 3, clinic);
      cyclesRead = pmsOf(rig).cycles;
      const failed = rig.logs.filter((l) => l.code === 'AGENT_SYNC_STATE_WRITE_FAILED');
      expect(failed.length).toBe(1);
      expect(failed[0].cause).toBe('EROFS');
      expect(rig.agent.health()).toMatchObject({ status: 'degraded', detail: { stateError: 'AGENT_SYNC_STATE_WRITE_FAILED: EROFS' } });
      // six half hours ended while the folder was read-only
      expect(rig.agent.report().cost).toMatchObject({ saveFailures: 6 });
      expect(readFileSync(file, 'utf8')).toBe(good);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', disk.dir]);
    }
    pollThrough(rig, 1, clinic);
    expect(rig.agent.health().status).toBe('up');
    expect(rig.logs.filter((l) => l.msg === 'learned state written again').length).toBe(1);
    // the first half hour's end after the remount wrote what the read-only hours learned
    const good2 = JSON.parse(readFileSync(file, 'utf8')) as { sources: { pms: { cycles: number } } };
    expect(good2.sources.pms.cycles).toBeGreaterThanOrEqual(cyclesRead);
    const cycles = pmsOf(rig).cycles;
    await rig.stop();
    rigs = [];
    expect(JSON.parse(readFileSync(file, 'utf8')).sources.pms.cycles).toBe(cycles);
  });
});
