/**
 * A damaged outbox is found at open, moved aside and salvaged row by row into a fresh one: the
 * counts are exact where the test can know them (rows on lost pages, from SQLite's own page map of
 * the intact copy), no salvaged record is altered, and the gateway's key is checked first.
 */
import { DatabaseSync } from 'node:sqlite';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { isGatewayError } from '../../../gateway/errors.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { describeSalvage, sourcesRewound, type SalvageReport } from '../../../gateway/outbox/outbox-salvage.ts';
import { mountSmallDisk, type SmallDisk } from '../../support/small-disk.ts';
import { rowsBeyond } from '../../support/outbox-pages.ts';

const N = 1500;
const key = randomBytes(32);
const sealer = createRecordSealer(key);
const plain = (i: number) => JSON.stringify({ id: `r${i}`, type: 'patient', data: { n: i, pad: 'x'.repeat(500 + (i % 7)) } });

/** An outbox holding N queued records (plain, sealed by the writer), their intake-log rows, a cursor and source rows. */
async function filledOutbox(): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'ewml-salvage-')), 'outbox.db');
  const box = createSqliteOutbox({ file, maxBytes: 1 << 30, clock: createManualClock(), writer: 'inline', sealKey: key });
  await box.open();
  for (let i = 0; i < N; i++)
    await box.enqueue({
      records: [{ id: `r${i}`, type: 'patient', partitionKey: `p${i % 40}`, plain: plain(i) }],
      dedupe: { key: `m${i}`, hash: `h${i}` },
    });
  await box.enqueuePage({
    stream: 'db/patients',
    rows: [
      { pk: 'k1', hash: 'a', records: [] },
      { pk: 'k2', hash: 'b', records: [] },
    ],
    cursor: { key: 'db/patients', value: 'w42' },
  });
  await box.close();
  return file;
}

let template: string;
const fresh = async (): Promise<string> => {
  template ??= await filledOutbox();
  const file = join(mkdtempSync(join(tmpdir(), 'ewml-salvage-')), 'outbox.db');
  copyFileSync(template, file);
  return file;
};

async function openBox(file: string, o: { expectData?: boolean; sealKey?: Uint8Array } = {}) {
  const reports: SalvageReport[] = [];
  const box = createSqliteOutbox({
    file,
    maxBytes: 1 << 30,
    clock: createManualClock(),
    writer: 'inline',
    sealKey: o.sealKey ?? key,
    keyFile: '/k/seal.key',
    expectData: o.expectData ?? true,
    onSalvaged: (r) => reports.push(r),
  });
  await box.open();
  return { box, reports };
}

/** Every queued row of a (closed) outbox, unsealed: seq → text. */
function queued(file: string): Map<number, string> {
  const d = new DatabaseSync(file, { readOnly: true });
  const rows = d.prepare('SELECT seq, id, payload FROM outbox ORDER BY seq').all() as Array<{
    seq: number;
    id: string;
    payload: Uint8Array;
  }>;
  d.close();
  return new Map(rows.map((r) => [Number(r.seq), sealer.open(r.id, r.payload).toString('utf8')]));
}

describe('outbox salvage at open', () => {
  it('opens a sound outbox as it is: no salvage, nothing moved', async () => {
    const file = await fresh();
    const { box, reports } = await openBox(file);
    expect(reports).toEqual([]);
    expect(box.stats().pending).toBe(N);
    await box.close();
    expect(existsSync(join(file, '..', 'damaged'))).toBe(false);
  });

  it('truncated at a page boundary: loses exactly the rows of the lost pages, keeps every other one unaltered, and takes input', async () => {
    const file = await fresh();
    const pages = statSync(file).size / 4096;
    const kept = Math.floor(pages * 0.7);
    const expectedLost = rowsBeyond(file, kept);
    expect(expectedLost).toBeGreaterThan(0);
    truncateSync(file, kept * 4096);
    const { box, reports } = await openBox(file);
    expect(reports).toHaveLength(1);
    const r = reports[0];
    expect(r.reason).toBe('truncated');
    expect(r.tables.outbox).toEqual({ salvaged: N - expectedLost, lost: expectedLost, lostUnknown: false, unreadable: 0 });
    // queued rows were lost: the sources' positions are left behind, so they read again (no silent gap)
    expect(sourcesRewound(r.tables)).toBe(true);
    expect(r.tables.source_cursors.salvaged).toBe(0);
    expect(box.getCursor('db/patients')).toBeUndefined();
    expect(describeSalvage(r, 'outboxSalvaged')).toContain('read again from the start');
    expect(box.stats().pending).toBe(N - expectedLost);
    expect(await box.enqueue({ records: [{ id: 'new', type: 'patient', partitionKey: 'p', plain: '{}' }] })).toBe('accepted');
    await box.close();
    // moved aside, byte for byte the damaged file
    expect(r.movedTo).toMatch(/damaged\/outbox-\d{8}T\d{6}-\d{3}Z\.db$/);
    expect(statSync(r.movedTo!).size).toBe(kept * 4096);
    const rows = queued(file);
    expect(rows.size).toBe(N - expectedLost + 1);
    for (const [seq, text] of rows) if (seq <= N) expect(text).toBe(plain(seq - 1));
    // the next record gets a seq above every one the damaged outbox handed out
    expect(Math.max(...rows.keys())).toBeGreaterThan(N);
  });

  it("one zeroed page in the middle: loses that page's rows and reads on after it", async () => {
    const file = await fresh();
    const d = new DatabaseSync(file, { readOnly: true });
    const leaves = d
      .prepare("SELECT pageno, ncell FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' ORDER BY pageno")
      .all() as Array<{ pageno: number; ncell: number }>;
    d.close();
    const victim = leaves[Math.floor(leaves.length / 2)];
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096), 0, 4096, (victim.pageno - 1) * 4096);
    closeSync(fd);
    const { box, reports } = await openBox(file);
    expect(reports[0].reason).toBe('quick_check');
    expect(reports[0].tables.outbox).toEqual({ salvaged: N - victim.ncell, lost: victim.ncell, lostUnknown: false, unreadable: 0 });
    expect(box.stats().pending).toBe(N - victim.ncell);
    await box.close();
  });

  it('a record whose sealed bytes were damaged is kept as a GW_RECORD_UNREADABLE dead letter, not queued', async () => {
    const file = await fresh();
    // flip one byte inside r7's sealed payload (found by its bytes in the file), and break the header
    const d = new DatabaseSync(file, { readOnly: true });
    const p = (d.prepare("SELECT payload FROM outbox WHERE id = 'r7'").get() as { payload: Uint8Array }).payload;
    d.close();
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from(p));
    expect(at).toBeGreaterThan(0);
    bytes[at + 40] ^= 0xff;
    bytes.writeUInt32BE(0xffff, 28); // the header's page count now exceeds the file: damage is detected
    writeFileSync(file, bytes);
    const { box, reports } = await openBox(file);
    expect(reports[0].tables.outbox).toEqual({ salvaged: N, lost: 0, lostUnknown: false, unreadable: 1 });
    expect(box.stats().pending).toBe(N - 1);
    const dl = box.getDeadLetter('r7');
    expect(dl?.code).toBe('GW_RECORD_UNREADABLE');
    expect(Buffer.from(dl!.sealed).equals(Buffer.from(p))).toBe(false);
    await box.close();
  });

  it('a zeroed header: SQLite reads nothing, the leaf scan finds every queued row (more may be lost: the top seq is unknown), the file is kept, and a fresh outbox takes input', async () => {
    const file = await fresh();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100), 0, 100, 0);
    closeSync(fd);
    const { box, reports } = await openBox(file);
    expect(reports[0].reason).toBe('header');
    expect(reports[0].tables.outbox).toEqual({ salvaged: N, lost: 0, lostUnknown: true, unreadable: 0 });
    expect(reports[0].leafScan?.pageSizeFromHeader).toBe(false);
    expect(box.stats().pending).toBe(N);
    const rows = queued(file);
    for (const [seq, text] of rows) expect(text).toBe(plain(seq - 1));
    expect(statSync(reports[0].movedTo!).size).toBe(statSync(template).size);
    expect(await box.enqueue({ records: [{ id: 'new', type: 'patient', partitionKey: 'p', plain: '{}' }] })).toBe('accepted');
    await box.close();
  });

  it('a 0-byte or missing outbox beside an existing key is damage; on a first run it is a fresh outbox', async () => {
    const file = await fresh();
    truncateSync(file, 0);
    const a = await openBox(file);
    expect(a.reports.map((r) => r.reason)).toEqual(['empty']);
    expect(statSync(a.reports[0].movedTo!).size).toBe(0);
    await a.box.close();
    rmSync(file);
    const b = await openBox(file);
    expect(b.reports.map((r) => [r.reason, r.movedTo])).toEqual([['missing', undefined]]);
    await b.box.close();
    const first = join(mkdtempSync(join(tmpdir(), 'ewml-salvage-')), 'outbox.db');
    const c = await openBox(first, { expectData: false });
    expect(c.reports).toEqual([]);
    await c.box.close();
  });

  it('another key beside queued rows is GW_KEY_MISSING, and nothing is moved or changed', async () => {
    const file = await fresh();
    const before = readFileSync(file);
    const box = createSqliteOutbox({
      file,
      maxBytes: 1 << 30,
      clock: createManualClock(),
      writer: 'inline',
      sealKey: randomBytes(32),
      keyFile: '/k/seal.key',
    });
    const err = await box.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isGatewayError(err, 'GW_KEY_MISSING')).toBe(true);
    expect((err as Error).message).toContain('/k/seal.key');
    expect((err as Error).message).toContain(`${N} sealed row(s)`);
    expect(readFileSync(file).equals(before)).toBe(true);
    // damaged as well: still refused, and the damaged file stays where it was
    truncateSync(file, Math.floor(statSync(file).size / 8192) * 4096);
    const damaged = readFileSync(file);
    const box2 = createSqliteOutbox({
      file,
      maxBytes: 1 << 30,
      clock: createManualClock(),
      writer: 'inline',
      sealKey: randomBytes(32),
      expectData: true,
    });
    expect(
      isGatewayError(
        await box2.open().then(
          () => undefined,
          (e: unknown) => e,
        ),
        'GW_KEY_MISSING',
      ),
    ).toBe(true);
    expect(readFileSync(file).equals(damaged)).toBe(true);
    expect(readdirSync(join(file, '..')).filter((f) => f.includes('.salvage'))).toEqual([]);
  });

  it('an empty outbox takes a new key (nothing can be lost)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ewml-salvage-')), 'outbox.db');
    const a = await openBox(file, { expectData: false });
    await a.box.close();
    const b = await openBox(file, { sealKey: randomBytes(32) });
    expect(b.reports).toEqual([]);
    await b.box.close();
  });

  describe('on a full disk', () => {
    let disk: SmallDisk | undefined;
    afterAll(() => disk?.unmount());

    it('a salvage that cannot be written fails with GW_OUTBOX_IO, leaves the damaged file in place, and succeeds once there is room', async () => {
      const src = await fresh();
      const size = statSync(src).size;
      disk = mountSmallDisk(size * 3);
      const file = join(disk.dir, 'outbox.db');
      copyFileSync(src, file);
      truncateSync(file, Math.floor(size / 8192) * 4096);
      const damaged = readFileSync(file);
      // leave less room than the salvaged copy needs
      const free = () => {
        const s = statfsSync(disk!.dir);
        return s.bavail * s.bsize;
      };
      writeFileSync(join(disk.dir, 'filler'), Buffer.alloc(Math.max(0, free() - Math.floor(size / 8))));
      const box = createSqliteOutbox({
        file,
        maxBytes: 1 << 30,
        clock: createManualClock(),
        writer: 'inline',
        sealKey: key,
        expectData: true,
      });
      const err = await box.open().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isGatewayError(err, 'GW_OUTBOX_IO')).toBe(true);
      expect((err as Error).message).toContain('left in place');
      expect(readFileSync(file).equals(damaged)).toBe(true);
      expect(readdirSync(disk.dir).filter((f) => f.includes('.salvage'))).toEqual([]);
      // room again: the next open salvages
      rmSync(join(disk.dir, 'filler'));
      const reports: SalvageReport[] = [];
      const again = createSqliteOutbox({
        file,
        maxBytes: 1 << 30,
        clock: createManualClock(),
        writer: 'inline',
        sealKey: key,
        expectData: true,
        onSalvaged: (r) => reports.push(r),
      });
      await again.open();
      expect(reports).toHaveLength(1);
      expect(reports[0].tables.outbox.salvaged + reports[0].tables.outbox.lost).toBe(N);
      expect(again.stats().pending).toBe(reports[0].tables.outbox.salvaged);
      await again.close();
    });
  });
});
