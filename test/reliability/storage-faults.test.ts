/**
 * Issue 12 (2, 3, 5): damaged storage and key custody, on the real gateway with the reference
 * cloud. A data folder holds N acknowledged records, queued while the cloud was away; then the
 * outbox is truncated at many offsets (0 bytes, inside the header, page boundaries, mid-page), has
 * bytes flipped at many places, or the seal key is deleted, cut short or replaced. For each:
 *
 * - damage: the gateway starts and takes input, the damaged file is moved aside, the salvage counts
 *   add up (salvaged + lost = N where the walk could count; at a page boundary exactly the rows
 *   whose leaf and overflow pages were kept are salvaged, read from the leaves where the interior
 *   pages above them were cut off), and every record the cloud gets is the one acknowledged, unaltered;
 * - keys: the start stops with GW_KEY_MISSING; after `keys import` of the backup it starts and
 *   delivers every record.
 */
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { validateConfig } from '../../config/load.ts';
import { runCommand, type CliIo } from '../../cli/index.ts';
import { isGatewayError } from '../../gateway/errors.ts';
import type { Outbox } from '../../gateway/outbox/outbox.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { adtA04, controlId } from '../support/hl7-fixtures.ts';
import { waitFor } from '../support/net.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { copyDataDir, queuedDataDir, type QueuedDataDir } from '../gateway/crypto/queued-data-dir.ts';
import { report, scale } from './scale.ts';
import { rowidsOnKeptLeaves } from '../gateway/outbox/leaf-pages.ts';

const N = scale(300, 3000);
const PLACES = scale(6, 24);
const PAGE = 4096;
const PASS = 'storage faults passphrase';

let q: QueuedDataDir;
let size = 0;
let backup = '';

beforeAll(async () => {
  q = await queuedDataDir(N);
  size = statSync(join(q.dataDir, 'outbox.db')).size;
  backup = join(q.dataDir, '..', `${q.dataDir.split('/').pop()}-key.jwe`);
  expect(await cli(q.dataDir).run('keys', 'export', backup, '--passphrase-env', 'PASS')).toBe(0);
}, 120_000);
afterAll(() => rmSync(backup, { force: true }));

function cli(dataDir: string) {
  const err: string[] = [];
  const io: CliIo = {
    out: () => undefined,
    err: (s) => err.push(s),
    readFile: (p) => readFileSync(p, 'utf8'),
    env: { PASS },
    loadConfig: () => {
      const v = validateConfig({ gateway: { dataDir } });
      if (!v.ok) throw new Error('bad config');
      return v.config;
    },
  };
  return { run: (...args: string[]) => runCommand(args, io), err };
}

interface Counts {
  salvaged: number;
  lost: number;
  lostUnknown: boolean;
  unreadable: number;
}
interface Outcome {
  delivered: number;
  deadLettered: number;
  altered: number;
  newAcked: boolean;
  salvage?: Counts;
}

/** The queued rows' salvage counts from the gateway's own error line (the alert's fields). */
function loggedSalvage(logs: string[]): Counts | undefined {
  const line = logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.code === 'GW_OUTBOX_DAMAGED' && l.alert === 'outboxSalvaged');
  if (!line) return undefined;
  expect(line.level).toBe('error');
  return {
    salvaged: Number(line.queuedSalvaged),
    lost: Number(line.queuedLost),
    lostUnknown: Boolean(line.queuedLostUnknown),
    unreadable: Number(line.queuedUnreadable),
  };
}

/** Starts the gateway on `dataDir` against a fresh reference cloud, sends one new message, and waits until the outbox is drained. */
async function runOn(dataDir: string, check: (h: Harness) => void | Promise<void> = () => undefined): Promise<Outcome> {
  const cloud: HttpReferenceCloud = await startHttpReferenceCloud({ privateKey: q.cloudKeys.privateKey });
  const h = await startHarness(
    { relay: { sink: 'https', batchSize: 200 }, https: { url: cloud.url }, cloud: { publicKey: q.cloudKeys.publicPem } },
    { dataDir, logLevel: 'warn' },
  );
  try {
    await check(h);
    const c = await h.client();
    const id = controlId('NEW');
    const newAcked = readAck(await c.send(adtA04({ id, mrn: 'NEW1' }), 10_000)).code === 'AA';
    const box: Outbox = h.gw.parts.outbox;
    await waitFor(
      () => {
        const s = box.stats();
        return s.pending + s.inFlight + s.waitingRetry === 0;
      },
      60_000,
      'the outbox drained',
    );
    let altered = 0;
    for (const [rid, rec] of cloud.store.records) {
      const orig = q.records.get(rid);
      if (orig !== undefined && JSON.stringify(rec) !== JSON.stringify(JSON.parse(orig))) altered++;
    }
    const deliveredRows = q.bundles.filter((ids) => ids.every((r) => cloud.store.records.has(r))).length;
    const dead = box
      .listDeadLetters({ limit: 10_000 })
      .filter((d) => d.code === 'GW_RECORD_UNREADABLE' || d.code === 'GW_STORE_CORRUPT').length;
    return { delivered: deliveredRows, deadLettered: dead, altered, newAcked, salvage: loggedSalvage(h.logs) };
  } finally {
    await h.stop();
    await cloud.stop();
  }
}

const salvageAlert = (h: Harness) =>
  (h.gw.status().alerts as Record<string, { code: string; detail: string; blocksReady: boolean }>).outboxSalvaged;

/** The offsets truncation cuts at: 0, inside the header, page boundaries and mid-page points spread over the file. */
function truncationOffsets(): number[] {
  const pages = size / PAGE;
  const out = [0, 50];
  for (let i = 0; out.length < PLACES; i++) {
    const at = Math.max(1, Math.floor((pages * (i + 1)) / (PLACES / 2 + 1)));
    out.push(at * PAGE);
    if (out.length < PLACES) out.push(at * PAGE + 1000 + ((i * 517) % 3000));
  }
  return out.slice(0, PLACES);
}

describe('storage faults at start', () => {
  it(`the outbox truncated at ${PLACES} offsets: starts, takes input, moves the file aside, salvages every readable row unaltered`, {
    timeout: 600_000,
  }, async () => {
    expect(q.rows).toBe(N);
    expect(q.acked.length).toBe(N);
    for (const offset of truncationOffsets()) {
      const dir = copyDataDir(q.dataDir);
      const file = join(dir, 'outbox.db');
      const boundary = offset >= PAGE && offset % PAGE === 0;
      // the rows whose leaf and overflow pages lie in the whole pages kept: salvage reads them from
      // the leaves even when the interior pages above them were cut off
      const onKeptLeaves = rowidsOnKeptLeaves(file, 'outbox', Math.floor(offset / PAGE)).size;
      truncateSync(file, offset);
      const o = await runOn(dir, (h) => {
        const a = salvageAlert(h);
        expect(a?.code).toBe('GW_OUTBOX_DAMAGED');
        expect(a.blocksReady).toBe(false);
      });
      const dmg = existsSync(join(dir, 'damaged')) ? readdirSync(join(dir, 'damaged')).filter((f) => f.endsWith('.db')) : [];
      expect(dmg).toHaveLength(1);
      expect(statSync(join(dir, 'damaged', dmg[0])).size).toBe(offset);
      expect(o.newAcked).toBe(true);
      expect(o.altered).toBe(0);
      const counts = o.salvage!;
      const fig = {
        offset,
        boundary,
        salvaged: counts.salvaged,
        lost: counts.lost,
        lostUnknown: counts.lostUnknown,
        unreadable: counts.unreadable,
        delivered: o.delivered,
      };
      report('storage-faults/truncate', fig);
      // every salvaged row reached the cloud unaltered, or is an unreadable dead letter
      expect(o.delivered + o.deadLettered).toBe(counts.salvaged);
      if (boundary) {
        expect(counts.salvaged).toBe(onKeptLeaves);
        expect(counts.lost).toBe(N - onKeptLeaves);
      } else if (!counts.lostUnknown) {
        // mid-page: the walk counts lost rows by rowid gaps, an upper bound (the outbox's rowids have
        // gaps where intake's transactions rolled back or rows were replaced); never fewer than were lost
        expect(counts.salvaged).toBeLessThanOrEqual(N);
        expect(counts.salvaged + counts.lost).toBeGreaterThanOrEqual(N);
      } else expect(counts.salvaged).toBeLessThanOrEqual(N);
      expect(counts.salvaged).toBeGreaterThanOrEqual(onKeptLeaves);
      if (offset === 0) expect(fig.salvaged).toBe(0);
    }
  });

  it(`bytes flipped at ${PLACES} places: starts, takes input, and every record the cloud gets is unaltered; the rest is accounted for`, {
    timeout: 600_000,
  }, async () => {
    for (let i = 0; i < PLACES; i++) {
      const dir = copyDataDir(q.dataDir);
      const file = join(dir, 'outbox.db');
      // 8 bytes flipped at a place spread over the file (header, b-tree pages, record bytes alike)
      const at = Math.min(size - 8, Math.floor((size * (i + 0.5)) / PLACES) + ((i * 131) % 97));
      const fd = openSync(file, 'r+');
      const b = Buffer.alloc(8);
      readSync(fd, b, 0, 8, at);
      for (let k = 0; k < 8; k++) b[k] ^= 0xff;
      writeSync(fd, b, 0, 8, at);
      closeSync(fd);
      let detected = false;
      const o = await runOn(dir, (h) => {
        detected = salvageAlert(h) !== undefined;
      });
      expect(o.newAcked).toBe(true);
      expect(o.altered).toBe(0);
      const counts = detected ? o.salvage! : { salvaged: N, lost: 0, lostUnknown: false, unreadable: 0 };
      report('storage-faults/flip', {
        at,
        detected,
        salvaged: counts.salvaged,
        lost: counts.lost,
        lostUnknown: counts.lostUnknown,
        unreadable: counts.unreadable,
        delivered: o.delivered,
        deadLettered: o.deadLettered,
      });
      expect(existsSync(join(dir, 'damaged'))).toBe(detected);
      // rows: delivered, or quarantined as unreadable (by the salvage or by the relay), or counted lost
      expect(o.delivered + o.deadLettered).toBe(counts.salvaged);
      if (!counts.lostUnknown) expect(counts.salvaged + counts.lost).toBe(N);
    }
  });

  it('a salvage alert is acknowledged with POST /alerts/outboxSalvaged/clear; /ready stays true throughout', async () => {
    const dir = copyDataDir(q.dataDir);
    truncateSync(join(dir, 'outbox.db'), Math.floor(size / PAGE / 2) * PAGE);
    await runOn(dir, async (h) => {
      const app = h.gw.parts.admin!.app;
      const auth = { authorization: `Bearer ${h.gw.parts.token}` };
      expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
      expect(salvageAlert(h).detail).toContain(`damaged/outbox-`);
      expect((await app.inject({ method: 'POST', url: '/alerts/outboxSalvaged/clear' })).statusCode).toBe(401);
      const r = await app.inject({ method: 'POST', url: '/alerts/outboxSalvaged/clear', headers: auth });
      expect([r.statusCode, r.json()]).toEqual([200, { key: 'outboxSalvaged', cleared: true }]);
      expect(salvageAlert(h)).toBeUndefined();
      expect((await app.inject({ method: 'POST', url: '/alerts/outboxSalvaged/clear', headers: auth })).statusCode).toBe(404);
      expect(h.logs.some((l) => l.includes('"code":"GW_OUTBOX_DAMAGED"') && l.includes('"queuedSalvaged"'))).toBe(true);
    });
  });

  const KEY_CASES = [
    { name: 'deleted', harm: (k: string) => rmSync(k), replace: false },
    { name: 'damaged (31 bytes)', harm: (k: string) => writeFileSync(k, readFileSync(k).subarray(0, 31)), replace: true },
    { name: 'replaced by another key', harm: (k: string) => writeFileSync(k, randomBytes(32)), replace: true },
  ];
  for (const kc of KEY_CASES) {
    it(`seal key ${kc.name}: stops with GW_KEY_MISSING; after keys import of the backup it starts and delivers every record`, {
      timeout: 120_000,
    }, async () => {
      const dir = copyDataDir(q.dataDir);
      const keyFile = join(dir, 'keys', 'seal.key');
      kc.harm(keyFile);
      const err = await startHarness({}, { dataDir: dir, logLevel: 'warn' }).then(
        async (h) => {
          await h.stop();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
      expect((err as Error).message).toContain(keyFile);
      const c = cli(dir);
      const args = ['keys', 'import', backup, '--passphrase-env', 'PASS', ...(kc.replace ? ['--replace'] : [])];
      expect(await c.run(...args)).toBe(0);
      const o = await runOn(dir, (h) => {
        expect(h.gw.status().alerts).toEqual({});
      });
      expect(o.delivered).toBe(N);
      expect(o.altered).toBe(0);
      expect(o.deadLettered).toBe(0);
      report('storage-faults/key', { case: kc.name.split(' ')[0], stopped: true, delivered: o.delivered });
    });
  }
});
