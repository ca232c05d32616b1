/**
 * Rule 1 under fire, every source at once: while MLLP senders, a file drop, an SFTP folder and a
 * changing database keep feeding it, the child gateway is killed with SIGKILL at random moments —
 * while it ingests and relays, in the middle of its start-up (a few hundred ms after spawning),
 * and in the middle of an orderly stop (SIGTERM, then SIGKILL shortly after). Sources keep
 * changing while it is down. After the last restart the cloud must hold every acknowledged record
 * (missing = 0 exactly), every start-up must have come up (none failed on its own), and a mere
 * kill must never leave the outbox reported damaged.
 *
 * test/e2e/crash.test.ts kills an MLLP-only gateway during ingest; this case adds the other sources
 * and the start-up and shutdown moments rather than repeating it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/net.ts';
import { allDelivered, check, checkFigures } from './support/checker.ts';
import { createLedger } from './support/ledger.ts';
import { startLoad } from './support/load-driver.ts';
import { activeAlerts, startMixedRig, waitReady, type MixedRig } from './support/mixed-rig.ts';
import { showHits, sweepFigures, sweepRig } from './support/phi-scan.ts';
import { report, scale } from './scale.ts';

const KILLS = scale(8, 50);
/** Alerts that would mean a kill damaged something: a kill must only ever cost a re-read. */
const DAMAGE_CODES = new Set(['GW_OUTBOX_DAMAGED', 'GW_RECORD_UNREADABLE', 'GW_KEY_MISSING', 'GW_KEY_IMPORT']);
type Moment = 'running' | 'startup' | 'shutdown';
/** Every fourth kill in the start-up, every fourth in the shutdown, the rest while running. */
const momentOf = (i: number): Moment => (i % 4 === 1 ? 'startup' : i % 4 === 3 ? 'shutdown' : 'running');
const between = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash safety with every source kind at once', () => {
  let rig: MixedRig;
  beforeAll(async () => {
    rig = await startMixedRig({ name: 'crash-mixed' });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it(`loses no acknowledged record across ${KILLS} kills while running, starting and stopping`, {
    timeout: KILLS * 8_000 + 180_000,
  }, async () => {
    const ledger = createLedger();
    const load = startLoad(
      rig.targets,
      ledger,
      {
        mllpPerSecond: scale(60, 150),
        mllpSenders: 2,
        filesPerSecond: 2,
        sftpFilesPerSecond: 1,
        rowsPerFile: 10,
        dbPerSecond: 20,
        rxEvery: 10,
      },
      { seconds: KILLS * 8 + 60, maxUnits: 1_000_000 },
    );
    const moments: Record<Moment, number> = { running: 0, startup: 0, shutdown: 0 };
    const notReady: string[] = [];
    const damage: string[] = [];
    const allAlerts = new Set<string>();
    const delays: number[] = [];
    /** Spawn to ready, per start: a start-up kill falls within the quickest start-up seen (or its first 400 ms, whichever is longer). */
    const startups: number[] = [];
    const startAndCheck = async (round: number) => {
      const t0 = Date.now();
      await rig.gateway.start();
      const r = await waitReady(rig);
      startups.push(Date.now() - t0);
      if (!r.ready) notReady.push(`round ${round}: ${r.reasons.join('; ')}`);
      for (const [key, code] of Object.entries(await activeAlerts(rig))) {
        allAlerts.add(`${key}:${code}`);
        if (DAMAGE_CODES.has(code)) damage.push(`round ${round}: ${key} ${code}`);
      }
    };
    try {
      for (let i = 0; i < KILLS; i++) {
        const m = momentOf(i);
        moments[m]++;
        if (m === 'startup') {
          rig.gateway.spawn();
          const d = between(0, Math.max(400, Math.min(...startups)));
          delays.push(d);
          await sleep(d);
          await rig.gateway.kill();
        } else if (m === 'shutdown') {
          await startAndCheck(i);
          await sleep(between(200, 1500));
          await rig.gateway.terminate(between(0, 300));
        } else {
          await startAndCheck(i);
          await sleep(between(200, 2500));
          await rig.gateway.kill();
        }
      }
      await startAndCheck(KILLS);
      await sleep(1000);
    } finally {
      await load.stop();
    }
    await waitFor(
      () => {
        load.settleFiles();
        return load.pendingFiles() === 0 && allDelivered(ledger, rig.received);
      },
      120_000,
      'every file processed and every acknowledged record at the cloud',
    ).catch(() => undefined);
    const status = (await rig.admin('/status'))?.body as { counts: Record<string, number> } | undefined;
    await rig.gateway.terminate(10_000);
    const r = check(ledger, rig.received);
    const phi = sweepRig(rig);
    report('crash-mixed-phi', sweepFigures(phi));
    report('crash-mixed', {
      kills: KILLS,
      ...moments,
      startupKillDelaysMs: delays.join('/'),
      startupMsMin: Math.min(...startups),
      startupMsMax: Math.max(...startups),
      ...checkFigures(r),
      pendingFiles: load.pendingFiles(),
      deadLettered: status?.counts.deadLettered ?? -1,
      alertsSeen: [...allAlerts].join(',') || 'none',
    });
    for (const k of Object.keys(r.perKind) as Array<keyof typeof r.perKind>) expect(r.perKind[k].missing.slice(0, 10), k).toEqual([]);
    expect(r.missing).toBe(0);
    expect(r.invalid).toBe(0);
    expect(notReady).toEqual([]);
    expect(rig.unexpectedExits).toEqual([]);
    expect(damage).toEqual([]);
    expect(load.pendingFiles()).toBe(0);
    expect(load.errorFiles()).toEqual([]);
    expect(status?.counts.deadLettered).toBe(0);
    // the kills did fall among acknowledged work from every source
    for (const k of ['mllp', 'file', 'sftp', 'db'] as const) expect(r.perKind[k].acked, k).toBeGreaterThan(KILLS);
    // no seeded PHI in the logs (crash output included), temporary files or the data folder but the outbox (phi.test.ts sweeps further)
    expect(showHits([...phi.logHits, ...phi.tmpHits, ...phi.dataHits])).toEqual([]);
    expect(showHits(phi.outboxHits)).toEqual([]);
  });
});
