/**
 * Disk full (issue 12): the data folder on a real small tmpfs (test/support/small-disk.ts), driven
 * to full by another program (a filler file taking every free byte) and by the gateway's own
 * intake, for each sink — the file sink (its files on the same small disk), MQTT (a real
 * mosquitto) and HTTPS (the reference cloud) — and a polled source (an HL7 drop folder).
 *
 * What must hold: MLLP senders get AR with ERR 207 "busy, retry later" (never AA for something not
 * committed); `/ready` is false with the reason and the alert `diskLow` (GW_DISK_LOW) raised; the
 * relay's acks and deletes go on while intake is refused; once space returns everything resumes by
 * itself (alert cleared, `/ready` true, the senders' resends answered AA, the poll goes on) and
 * every message answered AA reaches the cloud or the file: lost = 0. A polled source is paused with
 * nothing moved to processed/ and no ledger entry past what was committed.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck, type MllpClient } from '../../adapters/hl7v2/mllp-client.ts';
import { ledgerKey, sha256File } from '../../adapters/file/file-import.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import { DISK_LOW_ALERT } from '../../gateway/outbox/disk-guard.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { startMosquitto, type Broker } from '../support/mosquitto.ts';
import { waitFor } from '../support/net.ts';
import { fillDisk, mountSmallDisk, type SmallDisk } from '../support/small-disk.ts';
import {
  startHttpReferenceCloud,
  startMqttReferenceCloud,
  type HttpReferenceCloud,
  type MqttReferenceCloud,
} from '../reference-cloud/reference-cloud.ts';
import { report, scale } from './scale.ts';

const MiB = 1024 * 1024;
const DISK = scale(16 * MiB, 96 * MiB);
const RESERVE = scale(6 * MiB, 24 * MiB);
/** Messages answered before the filler, and probes sent while the disk is low (each must be AR). */
const BEFORE = scale(20, 200);
const PROBES = scale(10, 100);
/** Per case: filling, draining and resending take seconds, not the default 30. */
const CASE_MS = scale(120_000, 900_000);
/** Bound on the messages sent to fill the disk by the gateway's own intake (and its time). */
const MAX_FILL_MESSAGES = scale(3000, 20_000);
const FILL_TIME_MS = scale(60_000, 300_000);
/** A clinical note of ~16 KiB: the disk fills in hundreds of messages, not tens of thousands. */
const NOTE = 'Synthetic note line for the disk-full test. '.repeat(370);
const keys = makeCloudKeys();
let seq = 0;

/** An MDM^T02 (clinical document) of its own control id, patient and document id. */
function mdm(tag: string): { id: string; text: string } {
  const n = seq++;
  const id = `DF${tag}${n}`;
  const text = [
    `MSH|^~\\&|EMR|CLINIC|EWML|GW|20261125093000||MDM^T02^MDM_T02|${id}|P|2.5.1`,
    'EVN|T02|20261125093000',
    `PID|1||MRN${tag}${n}^^^CLINIC^MR||Synthetic^Pat`,
    'PV1|1|O',
    `TXA|1|OPN^Optometry note|TX|20261125090000||20261125091500|||D100^Provider^Paula^^^Dr|||DOC-${tag}-${n}^EMR|||||AU||AV`,
    `OBX|1|TX|NOTE^Note||${NOTE}|`,
  ].join('\r');
  return { id, text };
}

const fill = fillDisk;

async function ready(h: Harness): Promise<{ ready: boolean; reasons: string[] }> {
  const r = await fetch(`http://127.0.0.1:${h.adminPort}/ready`);
  const { ready, reasons } = (await r.json()) as { ready: boolean; reasons: string[] };
  return { ready, reasons };
}

const diskAlert = (h: Harness) =>
  (h.gw.status().alerts as Record<string, { code: string; blocksReady: boolean; detail: string }>)[DISK_LOW_ALERT];

/** Sends one message; its MSA-1 and ERR segment. */
async function send(c: MllpClient, m: { text: string }): Promise<{ code: string; err?: string }> {
  const a = readAck(await c.send(m.text, 20_000));
  return { code: a.code, err: a.err };
}

/** The refusal the sender must see while the disk is low: AR, ERR-3 207, the code in ERR-8. */
function expectBusy(a: { code: string; err?: string }): void {
  expect(a.code).toBe('AR');
  expect(a.err).toMatch(/\|207\^/);
  expect(a.err).toMatch(/GW_DISK_LOW: busy, retry later/);
}

interface Rig {
  name: string;
  h: Harness;
  disk: SmallDisk;
  /** Control ids (MSH-10) of the messages the cloud or file holds. */
  delivered(): Set<string>;
  /** Makes delivery stall (the gateway's own intake then fills the disk), and ends that. */
  outage(): Promise<void> | void;
  restore(): Promise<void> | void;
  stop(): Promise<void>;
}

async function gatewayOn(disk: SmallDisk, over: Record<string, unknown>, reserve = RESERVE): Promise<Harness> {
  const dataDir = join(disk.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  return startHarness(
    {
      ...over,
      outbox: { diskReserveBytes: reserve, diskCheckMs: 50 },
      relay: { batchSize: 20, ackTimeoutMs: 1000, ...(over.relay as object) },
    } as Parameters<typeof startHarness>[0],
    { dataDir, logLevel: 'info' },
  );
}

/** The file sink's NDJSON, opened with the gateway's key: the control ids of every record in it. */
function fileSinkMessages(h: Harness): Set<string> {
  const sealer = createRecordSealer(readFileSync(h.gw.parts.paths.keyFile));
  const out = new Set<string>();
  const dir = h.gw.parts.paths.fileSinkDir;
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    if (!f.endsWith('.ndjson')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const row = JSON.parse(line) as { id: string; sealed: string };
      for (const text of sealer.open(row.id, Buffer.from(row.sealed, 'base64')).toString('utf8').split('\n')) {
        const id = (JSON.parse(text) as { source: { messageId?: string } }).source.messageId;
        if (id) out.add(id);
      }
    }
  }
  return out;
}

const cloudMessages = (store: { records: Map<string, { source: { messageId?: string } }> }) =>
  new Set([...store.records.values()].map((r) => r.source.messageId).filter((x): x is string => !!x));

const drained = (h: Harness) => {
  const s = h.gw.parts.outbox.stats();
  return s.pending + s.inFlight + s.waitingRetry === 0;
};

/** Another program fills the disk: refused while full, everything resumes once the filler goes. */
async function filledByAnotherWriter(rig: Rig): Promise<void> {
  const { h } = rig;
  const c = await h.client();
  const acked: string[] = [];
  for (let i = 0; i < BEFORE; i++) {
    const m = mdm(`${rig.name}a`);
    expect((await send(c, m)).code).toBe('AA');
    acked.push(m.id);
  }
  const filler = join(rig.disk.dir, 'filler');
  const filled = fill(filler);
  await waitFor(async () => !(await ready(h)).ready, 10_000, '/ready false');
  const r = await ready(h);
  expect(r.reasons).toHaveLength(1);
  expect(r.reasons[0]).toMatch(
    /^disk (low: \d+\.\d MiB free on the data volume, below the reserve of \d+\.0 MiB|full: an outbox write failed for lack of space)/,
  );
  expect(diskAlert(h)).toMatchObject({ code: 'GW_DISK_LOW', blocksReady: true });
  const probes = Array.from({ length: PROBES }, () => mdm(`${rig.name}a`));
  for (const m of probes) expectBusy(await send(c, m));
  rmSync(filler);
  await waitFor(async () => (await ready(h)).ready, 10_000, '/ready true');
  expect(diskAlert(h)).toBeUndefined();
  // the senders' resends are taken
  for (const m of probes) {
    expect((await send(c, m)).code).toBe('AA');
    acked.push(m.id);
  }
  await waitFor(() => drained(h), 30_000, 'outbox drained');
  await waitFor(
    () => {
      const d = rig.delivered();
      return acked.every((id) => d.has(id));
    },
    30_000,
    'every AA delivered',
  );
  const d = rig.delivered();
  const lost = acked.filter((id) => !d.has(id)).length;
  report(`disk-full ${rig.name} filler`, {
    diskBytes: DISK,
    fillerBytes: filled,
    acked: acked.length,
    refused: probes.length,
    resentAccepted: probes.length,
    delivered: acked.filter((id) => d.has(id)).length,
    lost,
  });
  expect(lost).toBe(0);
}

/** The gateway's own intake fills the disk down to the reserve: refused there; resumes once space returns. */
async function filledByOwnIntake(rig: Rig): Promise<void> {
  const { h } = rig;
  await rig.outage();
  const c = await h.client();
  const acked: string[] = [];
  const refused: Array<{ id: string; text: string }> = [];
  const t0 = performance.now();
  for (let i = 0; i < MAX_FILL_MESSAGES && performance.now() - t0 < FILL_TIME_MS; i++) {
    const m = mdm(`${rig.name}b`);
    const a = await send(c, m);
    if (a.code === 'AA') {
      acked.push(m.id);
      continue;
    }
    expectBusy(a);
    refused.push(m);
    break;
  }
  expect(refused).toHaveLength(1);
  for (let i = 1; i < PROBES; i++) {
    const m = mdm(`${rig.name}b`);
    expectBusy(await send(c, m));
    refused.push(m);
  }
  const r = await ready(h);
  expect(r.ready).toBe(false);
  expect(r.reasons).toHaveLength(1);
  expect(r.reasons[0]).toMatch(
    /^disk low: \d+\.\d MiB free on the data volume, below the reserve of \d+\.0 MiB \(outbox\.diskReserveBytes\): new input is refused/,
  );
  expect(diskAlert(h)).toMatchObject({ code: 'GW_DISK_LOW', blocksReady: true });
  const queuedAtRefusal = h.gw.parts.outbox.stats().pending;
  await rig.restore();
  // no one frees space by hand here but what restore() does; the guard sees it by itself
  await waitFor(async () => (await ready(h)).ready, 30_000, '/ready true');
  expect(diskAlert(h)).toBeUndefined();
  for (const m of refused) {
    expect((await send(c, m)).code).toBe('AA');
    acked.push(m.id);
  }
  await waitFor(() => drained(h), 60_000, 'outbox drained');
  await waitFor(
    () => {
      const d = rig.delivered();
      return acked.every((id) => d.has(id));
    },
    30_000,
    'every AA delivered',
  );
  const d = rig.delivered();
  const lost = acked.filter((id) => !d.has(id)).length;
  report(`disk-full ${rig.name} own intake`, {
    diskBytes: DISK,
    reserveBytes: RESERVE,
    acked: acked.length,
    refused: refused.length,
    resentAccepted: refused.length,
    queuedAtRefusal,
    delivered: acked.filter((id) => d.has(id)).length,
    lost,
  });
  expect(lost).toBe(0);
}

describe('disk full: file sink (its files on the same small disk)', () => {
  let rig: Rig;
  let ballast = '';
  beforeAll(async () => {
    const disk = mountSmallDisk(DISK);
    const h = await gatewayOn(disk, {});
    rig = {
      name: 'file',
      h,
      disk,
      delivered: () => fileSinkMessages(h),
      // the sink's own files fill the disk: a ballast file takes part of it, and its removal gives space back
      outage: () => {
        ballast = join(disk.dir, 'ballast');
        fill(ballast, Math.floor((DISK - RESERVE) / 2));
      },
      restore: () => rmSync(ballast),
      stop: async () => {
        await h.stop();
        disk.unmount();
      },
    };
  });
  afterAll(async () => rig?.stop());

  it(
    'another program fills the disk: AR 207 and /ready false with the reason while full, then every resend AA and every AA in the file',
    async () => {
      await filledByAnotherWriter(rig);
    },
    CASE_MS,
  );

  it(
    "the gateway's own output fills the disk to the reserve: refused there while the relay goes on, resumes when space is freed, nothing lost",
    async () => {
      await filledByOwnIntake(rig);
    },
    CASE_MS,
  );
});

describe('disk full: MQTT sink (mosquitto)', () => {
  let rig: Rig;
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  beforeAll(async () => {
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    const disk = mountSmallDisk(DISK);
    const h = await gatewayOn(disk, { relay: { sink: 'mqtt' }, mqtt: { url: broker.url }, cloud: { publicKey: keys.publicPem } });
    rig = {
      name: 'mqtt',
      h,
      disk,
      delivered: () => cloudMessages(cloud.store),
      // the cloud stops acking: the outbox holds everything and grows to the reserve
      outage: () => {
        cloud.controls.dropAcks = true;
      },
      restore: () => {
        cloud.controls.dropAcks = false;
      },
      stop: async () => {
        await h.stop();
        disk.unmount();
        await cloud.stop();
        await broker.stop();
      },
    };
  });
  afterAll(async () => rig?.stop());

  it(
    'another program fills the disk: AR 207 and /ready false with the reason while full, then every resend AA and every AA at the cloud',
    async () => {
      await filledByAnotherWriter(rig);
    },
    CASE_MS,
  );

  it(
    'the outbox grows to the reserve while the cloud does not ack: refused there; the cloud back, the relay drains it and intake resumes by itself',
    async () => {
      await filledByOwnIntake(rig);
    },
    CASE_MS,
  );
});

describe('disk full: HTTPS sink (reference cloud)', () => {
  let rig: Rig;
  let cloud: HttpReferenceCloud;
  beforeAll(async () => {
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    const disk = mountSmallDisk(DISK);
    const h = await gatewayOn(disk, { relay: { sink: 'https' }, https: { url: cloud.url }, cloud: { publicKey: keys.publicPem } });
    rig = {
      name: 'https',
      h,
      disk,
      delivered: () => cloudMessages(cloud.store),
      outage: () => {
        cloud.controls.failNext = new Array<number>(1_000_000).fill(503);
      },
      restore: () => {
        cloud.controls.failNext.splice(0);
      },
      stop: async () => {
        await h.stop();
        disk.unmount();
        await cloud.stop();
      },
    };
  });
  afterAll(async () => rig?.stop());

  it(
    'another program fills the disk: AR 207 and /ready false with the reason while full, then every resend AA and every AA at the cloud',
    async () => {
      await filledByAnotherWriter(rig);
    },
    CASE_MS,
  );

  it(
    'the outbox grows to the reserve while the cloud answers 503: refused there; the cloud back, the relay drains it and intake resumes by itself',
    async () => {
      await filledByOwnIntake(rig);
    },
    CASE_MS,
  );
});

describe('disk full: an HL7 drop folder (polled source)', () => {
  let disk: SmallDisk;
  let h: Harness;
  let drop: string;
  beforeAll(async () => {
    disk = mountSmallDisk(DISK);
    drop = mkdtempSync(join(tmpdir(), 'ewml-disk-full-drop-'));
    h = await gatewayOn(disk, { folders: [{ id: 'drop', dir: drop, stableMs: 0, pollMs: 100 }] });
  });
  afterAll(async () => {
    await h?.stop();
    disk?.unmount();
    rmSync(drop, { recursive: true, force: true });
  });

  const hl7File = (tag: string, n: number) => Array.from({ length: n }, () => mdm(tag));
  /** Dropped whole (written under a name the source does not take, then renamed), as a PMS export should be. */
  const drop1 = (name: string, msgs: Array<{ text: string }>) => {
    writeFileSync(join(drop, `${name}.tmp`), msgs.map((m) => m.text).join('\r\n'));
    renameSync(join(drop, `${name}.tmp`), join(drop, name));
  };
  const folderHealth = () => h.gw.parts.adapters.find((a) => a.id === 'drop')!.health().detail as { files: number; retries: number };

  it(
    'pauses while the disk is full (the file stays, no ledger entry, nothing of it committed) and imports it once space returns',
    async () => {
      const perFile = scale(5, 50);
      const first = hl7File('fa', perFile);
      drop1('first.hl7', first);
      await waitFor(() => existsSync(join(drop, 'processed', 'first.hl7')), 20_000, 'first file processed');
      const filler = join(disk.dir, 'filler');
      fill(filler);
      await waitFor(async () => !(await ready(h)).ready, 10_000, '/ready false');
      const second = hl7File('fb', perFile);
      const secondPath = join(drop, 'second.hl7');
      drop1('second.hl7', second);
      const sha = await sha256File(secondPath);
      await waitFor(() => folderHealth().retries >= 1, 20_000, 'import paused');
      expect(existsSync(secondPath)).toBe(true);
      expect(existsSync(join(drop, 'processed', 'second.hl7'))).toBe(false);
      // the ledger (the outbox's cursor table) holds nothing for it: nothing of it was committed
      expect(h.gw.parts.outbox.getCursor(ledgerKey('drop', sha))).toBeUndefined();
      expect(diskAlert(h)).toMatchObject({ code: 'GW_DISK_LOW', blocksReady: true });
      rmSync(filler);
      await waitFor(() => existsSync(join(drop, 'processed', 'second.hl7')), 30_000, 'second file processed');
      expect(JSON.parse(h.gw.parts.outbox.getCursor(ledgerKey('drop', sha))!)).toMatchObject({ rows: perFile, done: true });
      await waitFor(() => drained(h), 30_000, 'outbox drained');
      const d = fileSinkMessages(h);
      const all = [...first, ...second].map((m) => m.id);
      const lost = all.filter((id) => !d.has(id)).length;
      report('disk-full drop folder', {
        files: 2,
        messages: all.length,
        pausedRetries: folderHealth().retries,
        delivered: all.length - lost,
        lost,
      });
      expect(lost).toBe(0);
      expect(folderHealth().files).toBe(2);
    },
    CASE_MS,
  );
});

describe('disk full with the reserve off (0): the write that finds the disk full', () => {
  let disk: SmallDisk;
  let h: Harness;
  beforeAll(async () => {
    disk = mountSmallDisk(DISK);
    h = await gatewayOn(disk, {}, 0);
  });
  afterAll(async () => {
    await h?.stop();
    disk?.unmount();
  });

  it(
    'is answered AR 207 GW_DISK_LOW with nothing of it stored, raises diskLow (not a dead writer), and the resend is AA once space returns',
    async () => {
      const c = await h.client();
      const first = mdm('z');
      expect((await send(c, first)).code).toBe('AA');
      await waitFor(() => drained(h), 10_000, 'outbox drained');
      const filler = join(disk.dir, 'filler');
      fill(filler);
      // reserve 0: no sample refuses it; the write itself meets SQLITE_FULL (the WAL must grow for it)
      expect(await ready(h)).toEqual({ ready: true, reasons: [] });
      const m = mdm('z');
      expectBusy(await send(c, m));
      const st = h.gw.parts.outbox.stats();
      expect(st).toMatchObject({ pending: 0, inFlight: 0, writer: 'running', writerRestarts: 0 });
      expect(fileSinkMessages(h).has(m.id)).toBe(false);
      expect(diskAlert(h)).toMatchObject({ code: 'GW_DISK_LOW', blocksReady: true });
      expect(diskAlert(h).detail).toMatch(/^disk full: an outbox write failed for lack of space on the data volume/);
      expect((await ready(h)).ready).toBe(false);
      // refused at once from now on, without another write
      const probes = Array.from({ length: PROBES }, () => mdm('z'));
      for (const p of probes) expectBusy(await send(c, p));
      rmSync(filler);
      await waitFor(async () => (await ready(h)).ready, 10_000, '/ready true');
      expect(diskAlert(h)).toBeUndefined();
      const acked = [first.id];
      for (const p of [m, ...probes]) {
        expect((await send(c, p)).code).toBe('AA');
        acked.push(p.id);
      }
      // each resend was new to the outbox: the refused write left no resend-log entry behind
      expect(h.gw.status().counts).toMatchObject({ accepted: acked.length, duplicate: 0 });
      await waitFor(() => drained(h), 30_000, 'outbox drained');
      const d = fileSinkMessages(h);
      const lost = acked.filter((id) => !d.has(id)).length;
      report('disk-full reserve off, SQLITE_FULL', {
        acked: acked.length,
        refused: 1 + probes.length,
        writerRestarts: h.gw.parts.outbox.stats().writerRestarts ?? 0,
        delivered: acked.length - lost,
        lost,
      });
      expect(lost).toBe(0);
    },
    CASE_MS,
  );
});
