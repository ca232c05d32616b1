/**
 * The leaf-page scan (leaf-scan.ts) and what it adds to salvage: rows whose leaf pages are still in
 * a damaged file are salvaged even when SQLite cannot reach them (a lost interior page). The
 * expected rows are computed from SQLite's own page map of the intact file (dbstat): the table's
 * leaves in b-tree order hold its rows in rowid order, so each leaf's rowids are known, and a row is
 * readable when its leaf and every one of its overflow pages were kept.
 */
import { DatabaseSync } from 'node:sqlite';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createSqliteOutbox } from '../../../gateway/outbox/sqlite-outbox.ts';
import { bundleId } from '../../../gateway/outbox/outbox.ts';
import { openOutboxDatabase } from '../../../gateway/outbox/outbox-file.ts';
import { salvageOutbox, type SalvageReport } from '../../../gateway/outbox/outbox-salvage.ts';
import { rowidsOnKeptLeaves } from './leaf-pages.ts';
import { decodeRecord, scanTableLeaves, type LeafRow, type LeafValue } from '../../../gateway/outbox/leaf-scan.ts';

const N = 3000;
const DEAD = 40;
const PAGE = 4096;
const key = randomBytes(32);
const sealer = createRecordSealer(key);
const record = (i: number) =>
  JSON.stringify({ id: `r${i}`, type: 'patient', data: { n: i, pad: 'x'.repeat(i % 10 === 0 ? 7000 : 300 + (i % 13)) } });
const tmp = () => mkdtempSync(join(tmpdir(), 'ewml-leafscan-'));

/** N queued rows (every 10th large enough for overflow pages, every 25th a bundle of two) and DEAD dead letters. */
async function build(): Promise<string> {
  const file = join(tmp(), 'outbox.db');
  const box = createSqliteOutbox({ file, maxBytes: 1 << 30, clock: createManualClock(), writer: 'inline', sealKey: key });
  await box.open();
  for (let i = 0; i < DEAD; i++)
    await box.enqueue({ records: [{ id: `d${i}`, type: 'patient', partitionKey: `dp${i}`, plain: record(i) }] });
  await box.deadLetter(
    Array.from({ length: DEAD }, (_, i) => `d${i}`),
    'GW_TEST_REFUSED',
    'refused in a test',
  );
  for (let i = 0; i < N; i++) {
    const p = `p${i % 40}`;
    if (i % 25 === 0) {
      const ids = [`r${i}`, `r${i}b`];
      await box.enqueue({
        records: [{ id: bundleId(ids), type: 'bundle', partitionKey: p, plain: `${record(i)}\n${record(i + 1)}`, recordIds: ids }],
      });
    } else await box.enqueue({ records: [{ id: `r${i}`, type: 'patient', partitionKey: p, plain: record(i) }] });
  }
  await box.close();
  return file;
}

type Row = Record<string, unknown>;
function rows(file: string, table: 'outbox' | 'dead_letters'): Map<string, Row> {
  const d = new DatabaseSync(file, { readOnly: true });
  const all = d.prepare(`SELECT rowid AS _rowid, * FROM ${table}`).all() as Row[];
  d.close();
  return new Map(
    all.map((r) => [table === 'outbox' ? String(r.seq) : String(r.id), { ...r, payload: Buffer.from(r.payload as Uint8Array) }]),
  );
}

function pagesOf(file: string, table: string, type: string): number[] {
  const d = new DatabaseSync(file, { readOnly: true });
  const r = d.prepare('SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ?').all(table, type) as Array<{ pageno: number }>;
  d.close();
  return r.map((p) => p.pageno);
}

function salvage(file: string, reason: SalvageReport['reason'], leafScan = true): SalvageReport {
  return salvageOutbox({
    file,
    reason,
    damagedDir: join(file, '..', 'damaged'),
    sealKey: key,
    now: Date.now(),
    createFresh: openOutboxDatabase,
    leafScan,
  });
}

/** Every salvaged queued row and dead letter equals the intact one column for column, and opens. */
function expectUnaltered(
  file: string,
  intact: Map<string, Row>,
  intactDead: Map<string, Row>,
): { queued: Map<string, Row>; dead: Map<string, Row> } {
  const queued = rows(file, 'outbox');
  const ids = new Set<string>();
  for (const [seq, r] of queued) {
    const { _rowid, ...want } = intact.get(seq) ?? {};
    const { _rowid: _r, ...got } = r;
    expect(got).toEqual(want);
    expect(sealer.open(r.id as string, r.payload as Uint8Array).length).toBeGreaterThan(0);
    expect(ids.has(r.id as string)).toBe(false);
    ids.add(r.id as string);
  }
  const dead = rows(file, 'dead_letters');
  for (const [id, r] of dead) {
    const { _rowid, ...want } = intactDead.get(id) ?? {};
    const { _rowid: _r, ...got } = r;
    expect(got).toEqual(want);
    expect(ids.has(id)).toBe(false);
  }
  return { queued, dead };
}

const copy = (from: string): string => {
  const file = join(tmp(), 'outbox.db');
  copyFileSync(from, file);
  return file;
};

describe('leaf-page salvage of a damaged outbox', { timeout: 120_000 }, () => {
  let template = '';
  let intact: Map<string, Row>;
  let intactDead: Map<string, Row>;
  const setup = async () => {
    if (template) return;
    template = await build();
    intact = rows(template, 'outbox');
    intactDead = rows(template, 'dead_letters');
    expect(intact.size).toBe(N);
    expect(intactDead.size).toBe(DEAD);
    expect(pagesOf(template, 'outbox', 'overflow').length).toBeGreaterThanOrEqual(N / 10);
  };

  it.each([0.1, 0.3, 0.5, 0.7])(
    'truncated at %s of its size: salvages exactly the rows whose leaf and overflow pages were kept, each unaltered',
    async (cut) => {
      await setup();
      const pages = statSync(template).size / PAGE;
      const kept = Math.floor(pages * cut);
      const expected = rowidsOnKeptLeaves(template, 'outbox', kept);
      const expectedDead = rowidsOnKeptLeaves(template, 'dead_letters', kept);
      const before = copy(template);
      truncateSync(before, kept * PAGE);
      const walkOnly = salvage(before, 'truncated', false);
      const after = copy(template);
      truncateSync(after, kept * PAGE);
      const r = salvage(after, 'truncated');
      const got = expectUnaltered(after, intact, intactDead);
      console.log(
        `truncated at ${cut * 100}% (${kept} of ${pages} pages): queued rows salvaged ${walkOnly.tables.outbox.salvaged} of ${N} by the rowid walk alone, ${r.tables.outbox.salvaged} with the leaf scan (${expected.size} on kept pages); lost ${walkOnly.tables.outbox.lost} → ${r.tables.outbox.lost}`,
      );
      expect(new Set([...got.queued.keys()].map(Number))).toEqual(expected);
      expect(r.tables.outbox).toMatchObject({ salvaged: expected.size, lostUnknown: false, unreadable: 0 });
      // lost counts seqs in unreadable ranges: an upper bound where the dead-lettered rows' seqs left a gap
      expect(r.tables.outbox.lost).toBeGreaterThanOrEqual(N - expected.size);
      expect(r.tables.outbox.lost).toBeLessThanOrEqual(N + DEAD - expected.size);
      expect(r.tables.outbox.salvaged).toBeGreaterThanOrEqual(walkOnly.tables.outbox.salvaged);
      expect(got.dead.size).toBe(expectedDead.size);
      expect(r.leafScan?.outbox.unopenable).toBe(0);
      // later seqs stay above every seq handed out
      const d = new DatabaseSync(after, { readOnly: true });
      expect(
        Number((d.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number }).seq),
      ).toBeGreaterThanOrEqual(Math.max(0, ...expected));
      d.close();
    },
  );

  it('interior pages zeroed, every leaf intact: every queued row and dead letter is salvaged, through the gateway open as well', async () => {
    await setup();
    const file = copy(template);
    const interior = [...pagesOf(template, 'outbox', 'internal'), ...pagesOf(template, 'dead_letters', 'internal')];
    expect(interior.length).toBeGreaterThan(1);
    const fd = openSync(file, 'r+');
    for (const p of interior) writeSync(fd, Buffer.alloc(PAGE), 0, PAGE, (p - 1) * PAGE);
    closeSync(fd);
    const walkOnly = salvage(copy(file), 'quick_check', false);
    const reports: SalvageReport[] = [];
    const box = createSqliteOutbox({
      file,
      maxBytes: 1 << 30,
      clock: createManualClock(),
      writer: 'inline',
      sealKey: key,
      expectData: true,
      onSalvaged: (x) => reports.push(x),
    });
    await box.open();
    expect(box.stats().pending).toBe(N);
    await box.close();
    expect(reports).toHaveLength(1);
    const r = reports[0];
    console.log(
      `interior pages zeroed: queued rows salvaged ${walkOnly.tables.outbox.salvaged} of ${N} by the walk alone, ${r.tables.outbox.salvaged} with the leaf scan`,
    );
    expect(r.tables.outbox).toMatchObject({ salvaged: N, lostUnknown: false, unreadable: 0 });
    // the seqs the dead-lettered rows had are a gap no reading can tell from lost rows: counted, an upper bound
    expect(r.tables.outbox.lost).toBeLessThanOrEqual(DEAD);
    expect(r.tables.dead_letters.salvaged).toBe(DEAD);
    const got = expectUnaltered(file, intact, intactDead);
    expect(got.queued.size).toBe(N);
    expect(got.dead.size).toBe(DEAD);
  });

  it('a leaf found twice (a stray copy past the end) is copied once; rows in ranges SQLite read are left to SQLite', async () => {
    await setup();
    const file = copy(template);
    const interior = pagesOf(template, 'outbox', 'internal');
    const leaves = pagesOf(template, 'outbox', 'leaf').sort((a, b) => a - b);
    const twice = leaves[5];
    const fd = openSync(file, 'r+');
    for (const p of interior) writeSync(fd, Buffer.alloc(PAGE), 0, PAGE, (p - 1) * PAGE);
    const page = Buffer.alloc(PAGE);
    readSync(fd, page, 0, PAGE, (twice - 1) * PAGE);
    writeSync(fd, page, 0, PAGE, statSync(template).size);
    closeSync(fd);
    const r = salvage(file, 'quick_check');
    expect(r.tables.outbox).toMatchObject({ salvaged: N, lostUnknown: false, unreadable: 0 });
    expect(r.leafScan?.outbox.duplicates).toBe(page.readUInt16BE(3));
    expect(expectUnaltered(file, intact, intactDead).queued.size).toBe(N);
    // one zeroed leaf and the interior intact: SQLite reads around it; the scan adds nothing it read
    const one = copy(template);
    const fd2 = openSync(one, 'r+');
    writeSync(fd2, Buffer.alloc(PAGE), 0, PAGE, (leaves[7] - 1) * PAGE);
    closeSync(fd2);
    const r2 = salvage(one, 'quick_check');
    const meta = new DatabaseSync(template, { readOnly: true });
    const lostCells = Number(
      (meta.prepare("SELECT ncell FROM dbstat WHERE name = 'outbox' AND pageno = ?").get(leaves[7]) as { ncell: number }).ncell,
    );
    meta.close();
    expect(r2.tables.outbox).toEqual({ salvaged: N - lostCells, lost: lostCells, lostUnknown: false, unreadable: 0 });
    expect(r2.leafScan?.outbox).toMatchObject({ added: 0, outsideGaps: N - lostCells, unopenable: 0 });
  });

  it('another key: a row whose seal does not open is never copied, however much it looks like one (counted unopenable)', async () => {
    await setup();
    const file = copy(template);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100), 0, 100, 0);
    closeSync(fd);
    const r = salvageOutbox({
      file,
      reason: 'header',
      damagedDir: join(file, '..', 'damaged'),
      sealKey: randomBytes(32),
      now: Date.now(),
      createFresh: openOutboxDatabase,
    });
    expect(r.tables.outbox).toEqual({ salvaged: 0, lost: 0, lostUnknown: true, unreadable: 0 });
    expect(r.leafScan?.outbox).toEqual({ candidates: N, added: 0, outsideGaps: 0, duplicates: 0, unopenable: N });
    expect(r.leafScan?.dead_letters).toMatchObject({ candidates: DEAD, added: 0, unopenable: DEAD });
    expect(rows(file, 'outbox').size).toBe(0);
    expect(rows(file, 'dead_letters').size).toBe(0);
  });

  it('another key beside a file whose header is gone: the open stops with GW_KEY_MISSING and keeps the file, it does not start empty', async () => {
    await setup();
    const file = copy(template);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(100), 0, 100, 0);
    closeSync(fd);
    const before = statSync(file).size;
    const box = createSqliteOutbox({
      file,
      maxBytes: 1 << 30,
      clock: createManualClock(),
      writer: 'inline',
      sealKey: randomBytes(32),
      expectData: true,
    });
    await expect(box.open()).rejects.toMatchObject({ code: 'GW_KEY_MISSING' });
    expect(statSync(file).size).toBe(before);
  });

  it('acked rows stay gone: secure_delete zeroed them and the freelist is not read, so the scan brings back only rows still queued', async () => {
    const file = join(tmp(), 'outbox.db');
    const box = createSqliteOutbox({ file, maxBytes: 1 << 30, clock: createManualClock(), writer: 'inline', sealKey: key });
    await box.open();
    const M = 1200;
    for (let i = 0; i < M; i++) await box.enqueue({ records: [{ id: `a${i}`, type: 'patient', partitionKey: `p${i}`, plain: record(i) }] });
    // ack two rows in three, spread over the file (whole leaves emptied as well as single cells)
    const acked = new Set<string>();
    // rows claimed and not acked stay in flight (not claimed again) and in the file
    for (let round = 0; round < 40; round++) {
      const claimed = box.claim(100).rows;
      if (claimed.length === 0) break;
      const ids = claimed.filter((r) => Number(r.id.slice(1)) % 3 !== 0).map((r) => r.id);
      await box.ack(ids);
      for (const id of ids) acked.add(id);
    }
    await box.close();
    expect(acked.size).toBe(M - M / 3);
    const want = rows(file, 'outbox');
    expect(want.size).toBe(M / 3);
    const fd = openSync(file, 'r+');
    const head = Buffer.alloc(100);
    readSync(fd, head, 0, 100, 0);
    // emptied leaves went to the freelist
    expect(head.readUInt32BE(36)).toBeGreaterThan(0);
    for (const p of pagesOf(file, 'outbox', 'internal')) writeSync(fd, Buffer.alloc(PAGE), 0, PAGE, (p - 1) * PAGE);
    closeSync(fd);
    const r = salvage(file, 'quick_check');
    expect(r.tables.outbox).toMatchObject({ salvaged: M / 3, unreadable: 0 });
    expect(r.leafScan?.outbox).toMatchObject({ added: M / 3, unopenable: 0, duplicates: 0 });
    const got = rows(file, 'outbox');
    expect([...got.values()].map((x) => x.id).sort()).toEqual([...want.values()].map((x) => x.id).sort());
  });

  it('random bytes over a leaf: its bad cells are skipped, nothing throws, and no row that does not open is queued', async () => {
    await setup();
    const leaves = pagesOf(template, 'outbox', 'leaf').sort((a, b) => a - b);
    const victim = leaves[Math.floor(leaves.length / 3)];
    const file = copy(template);
    // a fixed pattern (not random per run): the cell pointer array and the cells after it
    const noise = Buffer.alloc(PAGE - 8);
    let x = 0x9e3779b9;
    for (let i = 0; i < noise.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      noise[i] = x & 0xff;
    }
    const fd = openSync(file, 'r+');
    writeSync(fd, noise, 0, noise.length, (victim - 1) * PAGE + 8);
    closeSync(fd);
    const stats = scanTableLeaves(file, () => undefined);
    expect(stats.skippedCells).toBeGreaterThan(0);
    const r = salvage(file, 'quick_check');
    const got = expectUnaltered(file, intact, intactDead);
    expect(got.queued.size).toBe(r.tables.outbox.salvaged - r.tables.outbox.unreadable);
    expect(r.tables.outbox.salvaged + r.tables.outbox.lost).toBeGreaterThanOrEqual(N - 1);
    expect(r.tables.outbox.salvaged).toBeLessThanOrEqual(N);
  });
});

const norm = (v: LeafValue): unknown =>
  v instanceof Uint8Array
    ? Buffer.from(v)
    : typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;

describe('scanTableLeaves', () => {
  it.each([512, 4096, 65536])('decodes every value type as SQLite stores it, overflow chains included (page size %i)', (pageSize) => {
    const file = join(tmp(), 'types.db');
    const d = new DatabaseSync(file);
    d.exec(`PRAGMA page_size = ${pageSize}; CREATE TABLE t (k INTEGER PRIMARY KEY, a, b, c, d)`);
    const ints = [0, 1, -1, 127, 128, -129, 32767, 32768, -8388608, 8388607, 2 ** 31 - 1, -(2 ** 31), 2 ** 40, -(2 ** 47), 2 ** 53 - 1];
    const ins = d.prepare('INSERT INTO t (k, a, b, c, d) VALUES (?, ?, ?, ?, ?)');
    let k = 1;
    for (const i of ints) ins.run(k++, i, i * 0.5 + 0.25, `t${i}`, null);
    ins.run(k++, 2n ** 62n, -(2n ** 63n), '', Buffer.alloc(0));
    for (const n of [10, 400, 5000, 70_000, 200_000]) ins.run(k++, 'é'.repeat(n), Buffer.from(randomBytes(n)), n, 1.5);
    ins.run(-5, 'negative rowid', null, null, null);
    const all = d.prepare('SELECT k, a, b, c, d FROM t');
    all.setReadBigInts(true);
    const want = new Map((all.all() as Row[]).map((r) => [Number(r.k), [null, r.a, r.b, r.c, r.d].map((v) => norm(v as LeafValue))]));
    d.close();
    const got = new Map<number, unknown[]>();
    const stats = scanTableLeaves(file, (r: LeafRow) => {
      if (r.values.length === 5) got.set(r.rowid, r.values.map(norm));
    });
    expect(stats.pageSize).toBe(pageSize);
    expect(stats.pageSizeFromHeader).toBe(true);
    expect(stats.skippedCells).toBe(0);
    expect(got).toEqual(want);
  });

  it('never throws on noise, a cut file, a zeroed header or an empty file, and reads no cell off the page', () => {
    const dir = tmp();
    const src = join(dir, 'src.db');
    const d = new DatabaseSync(src);
    d.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)');
    for (let i = 0; i < 200; i++) d.prepare('INSERT INTO t (v) VALUES (?)').run(randomBytes(i % 9 === 0 ? 9000 : 200));
    d.close();
    const bytes = Buffer.alloc(statSync(src).size);
    const fd = openSync(src, 'r');
    readSync(fd, bytes, 0, bytes.length, 0);
    closeSync(fd);
    const f = join(dir, 'x.db');
    for (let trial = 0; trial < 60; trial++) {
      const b = Buffer.from(bytes);
      if (trial === 0) b.fill(0, 0, 100);
      for (let j = 0; j < 40; j++) b[(trial * 7919 + j * 104_729) % b.length] = (trial * 31 + j) & 0xff;
      // leaf headers claiming many cells pointing anywhere
      for (let p = 1; p < b.length / 4096; p++) if (trial % 3 === 0) b.writeUInt16BE(0xffff, p * 4096 + 3);
      writeFileSync(f, trial % 5 === 4 ? b.subarray(0, (trial * 1237) % b.length) : b);
      expect(() => scanTableLeaves(f, () => undefined)).not.toThrow();
    }
    writeFileSync(f, Buffer.alloc(0));
    expect(scanTableLeaves(f, () => undefined)).toMatchObject({ pages: 0, rows: 0 });
    // a record whose header and values do not add up is not a record
    expect(() => decodeRecord(Buffer.from([3, 1, 1, 5]))).toThrow();
    expect(decodeRecord(Buffer.from([3, 1, 9, 5]))).toEqual([5, 1]);
  });
});
