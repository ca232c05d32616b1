/**
 * A soak: steady mixed load (MLLP, a file drop, an SFTP folder, a changing database) on the child
 * gateway for a minute under `npm test` and 30 minutes at full size, at a steady rate higher than
 * a practice's (time compressed by rate, never by skipping time). Its file descriptors, sockets,
 * resident memory and threads are sampled from /proc every few seconds and printed (first, last,
 * max, slope). The test asserts only what must hold: nothing acknowledged is lost, and the file
 * descriptors come back once the load stops (no leak per message, file, listing or poll).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/net.ts';
import { allDelivered, check, checkFigures } from './support/checker.ts';
import { createLedger, SOURCE_KINDS } from './support/ledger.ts';
import { startLoad } from './support/load-driver.ts';
import { activeAlerts, startMixedRig, waitReady, type MixedRig } from './support/mixed-rig.ts';
import { sampleProc, startProcSampler, summarise } from './support/proc-sampler.ts';
import { showHits, sweepFigures, sweepRig } from './support/phi-scan.ts';
import { report, scale } from './scale.ts';

/** `EWML_SOAK_SECONDS` sets another length (e.g. 300, to see where memory settles) without the other cases' full sizes. */
const SECONDS = Number(process.env.EWML_SOAK_SECONDS) || scale(60, 30 * 60);
const SAMPLE_MS = scale(2000, 5000);
/**
 * How many more descriptors the idle gateway may hold after the load than before it, without a
 * leak: the HTTPS sink's connections (up to relay.maxInFlight = 4; the baseline had none, nothing
 * was queued), an SFTP listing's connection if one runs at the moment of the sample (1), the
 * database pool (2) if it was between polls at the baseline, and 1 to spare. A leak per message,
 * file, listing or poll would add hundreds at the fast size and tens of thousands at full size.
 */
const FD_ALLOWANCE = 8;
/** Idle time before the last sample: past the reference cloud's keep-alive timeout (Node's 5 s), so idle HTTPS connections have closed. */
const IDLE_BEFORE_LAST_MS = 7000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('soak: steady mixed load', () => {
  let rig: MixedRig;
  beforeAll(async () => {
    rig = await startMixedRig({ name: 'soak' });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it(`keeps every acknowledged record and its file descriptors over ${SECONDS} s of steady mixed load`, {
    timeout: SECONDS * 1000 + 180_000,
  }, async () => {
    await rig.gateway.start();
    expect(await waitReady(rig)).toEqual({ ready: true, reasons: [] });
    const pid = rig.gateway.pid()!;
    await sleep(3000); // the database pool connected, a first SFTP listing done: the idle baseline
    const baseline = sampleProc(pid, 0)!;
    const sampler = startProcSampler(pid, SAMPLE_MS);
    const ledger = createLedger();
    const load = startLoad(
      rig.targets,
      ledger,
      {
        mllpPerSecond: scale(100, 150),
        mllpSenders: 2,
        filesPerSecond: 2,
        sftpFilesPerSecond: 1,
        rowsPerFile: 20,
        dbPerSecond: 30,
        rxEvery: 10,
      },
      { seconds: SECONDS, maxUnits: 10_000_000 },
    );
    await sleep(SECONDS * 1000);
    await load.stop();
    const underLoad = [...sampler.samples];
    await waitFor(
      () => {
        load.settleFiles();
        return load.pendingFiles() === 0 && allDelivered(ledger, rig.received);
      },
      120_000,
      'every file processed and every acknowledged record at the cloud',
    );
    await sleep(IDLE_BEFORE_LAST_MS);
    sampler.stop();
    const after = sampleProc(pid, Date.now())!;
    const status = (await rig.admin('/status'))?.body as { counts: Record<string, number> };
    const alerts = await activeAlerts(rig);
    await rig.gateway.terminate(10_000);
    const r = check(ledger, rig.received);
    const phi = sweepRig(rig);
    report('soak-phi', sweepFigures(phi));
    const mib = (k: number) => Math.round(k / 1024);
    report('soak', {
      seconds: SECONDS,
      samples: underLoad.length,
      ...checkFigures(r),
      ...summarise(underLoad, 'fds', (s) => s.fds),
      ...summarise(underLoad, 'sockets', (s) => s.sockets),
      ...summarise(underLoad, 'rssMiB', (s) => mib(s.rssKiB)),
      ...summarise(underLoad, 'threads', (s) => s.threads),
      fdsIdleBefore: baseline.fds,
      fdsIdleAfter: after.fds,
      socketsIdleBefore: baseline.sockets,
      socketsIdleAfter: after.sockets,
      rssMiBIdleBefore: mib(baseline.rssKiB),
      rssMiBIdleAfter: mib(after.rssKiB),
    });
    expect(r.missing).toBe(0);
    expect(r.invalid).toBe(0);
    // no fault was injected: every record sent was acknowledged and delivered
    for (const k of SOURCE_KINDS) expect(r.perKind[k].acked, k).toBe(r.perKind[k].sent);
    expect(status.counts.deadLettered).toBe(0);
    expect(alerts).toEqual({});
    expect(rig.unexpectedExits).toEqual([]);
    expect(after.fds).toBeLessThanOrEqual(baseline.fds + FD_ALLOWANCE);
    // no seeded PHI in the logs (crash output included), temporary files or the data folder but the outbox (phi.test.ts sweeps further)
    expect(showHits([...phi.logHits, ...phi.tmpHits, ...phi.dataHits])).toEqual([]);
    expect(showHits(phi.outboxHits)).toEqual([]);
  });
});
