/**
 * The end-to-end oracle: every source kind fed at once (MLLP senders, a folder file drop, an SFTP
 * folder on a real sshd, a changing PostgreSQL), a ledger of what each source was told was taken,
 * and the reference cloud (HTTPS, decrypting and validating) compared with it as exact sets. With
 * no faults injected every record sent is acknowledged and delivered: the sets are equal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/net.ts';
import { allDelivered, check, checkFigures, markerStore, MARKER_PREFIX } from './support/checker.ts';
import { createLedger, SOURCE_KINDS } from './support/ledger.ts';
import { startLoad } from './support/load-driver.ts';
import { activeAlerts, startMixedRig, waitReady, type MixedRig } from './support/mixed-rig.ts';
import { report, scale } from './scale.ts';

const SECONDS = scale(8, 120);

describe('the oracle: every source kind at once, against the reference cloud', () => {
  let rig: MixedRig;
  beforeAll(async () => {
    rig = await startMixedRig({ name: 'oracle' });
  }, 120_000);
  afterAll(async () => {
    await rig?.stop();
  });

  it('the checker reports an acknowledged record the cloud never got, and one it got twice', async () => {
    const ledger = createLedger();
    const cloud = markerStore();
    const rec = (id: string, value: string) => ({ id, type: 'patient', data: { identifiers: [{ system: 'X', value }] } }) as never;
    ledger.noteSent('mllp', [`${MARKER_PREFIX}a`, `${MARKER_PREFIX}b`]);
    ledger.noteAcked('mllp', [`${MARKER_PREFIX}a`, `${MARKER_PREFIX}b`]);
    cloud.store.records.set('id-1', rec('id-1', `${MARKER_PREFIX}a`));
    cloud.store.records.set('id-2', rec('id-2', `${MARKER_PREFIX}a`));
    const r = check(ledger, cloud);
    expect(r.missing).toBe(1);
    expect(r.perKind.mllp.missing).toEqual([`${MARKER_PREFIX}b`]);
    expect(r.markersUnderManyIds).toBe(1);
    expect(allDelivered(ledger, cloud)).toBe(false);
  });

  it(`delivers every acknowledged record of ${SECONDS} s of mixed load: the ledger and the cloud hold the same sets`, {
    timeout: SECONDS * 1000 + 120_000,
  }, async () => {
    await rig.gateway.start();
    expect(await waitReady(rig)).toEqual({ ready: true, reasons: [] });
    const ledger = createLedger();
    const load = startLoad(
      rig.targets,
      ledger,
      {
        mllpPerSecond: scale(60, 200),
        mllpSenders: 2,
        filesPerSecond: 2,
        sftpFilesPerSecond: 1,
        rowsPerFile: scale(10, 50),
        dbPerSecond: scale(20, 50),
        rxEvery: 10,
      },
      { seconds: SECONDS, maxUnits: 1_000_000 },
    );
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    await load.stop();
    await waitFor(
      () => {
        load.settleFiles();
        return load.pendingFiles() === 0 && allDelivered(ledger, rig.received);
      },
      90_000,
      'every file processed and every acknowledged record at the cloud',
    );
    const status = (await rig.admin('/status'))?.body as { counts: Record<string, number>; outbox: Record<string, number> };
    const alerts = await activeAlerts(rig);
    await rig.gateway.terminate(10_000);
    const r = check(ledger, rig.received);
    report('oracle', {
      seconds: SECONDS,
      ...checkFigures(r),
      rxRecords: rig.received.markers.byType.get('spectacle-rx') ?? 0,
      deadLettered: status.counts.deadLettered,
      batches: rig.cloud.store.batches,
    });
    expect(r.missing).toBe(0);
    expect(r.invalid).toBe(0);
    // no fault: every record sent was acknowledged, and the cloud has exactly those
    for (const k of SOURCE_KINDS) {
      expect(r.perKind[k].acked, k).toBe(r.perKind[k].sent);
      expect(r.perKind[k].delivered, k).toBe(r.perKind[k].sent);
      expect(r.perKind[k].sent, k).toBeGreaterThan(0);
    }
    expect(rig.received.markers.idsByMarker.size).toBe(r.acked);
    expect(r.markersUnderManyIds).toBe(0);
    // the Rx the sources carried (HL7 ORU refractions, Rx files, Rx rows), each delivered once
    expect(rig.received.markers.byType.get('spectacle-rx')).toBe(load.rxAcked());
    expect(load.errorFiles()).toEqual([]);
    expect(status.counts.deadLettered).toBe(0);
    expect(alerts).toEqual({});
    expect(rig.unexpectedExits).toEqual([]);
  });
});
