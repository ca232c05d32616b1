/**
 * The database source says which pages are its first load (RawPage.firstLoad: the backfill lane,
 * gateway/pipeline/record-lane.ts): every page of a stream's initial phase, the page that ends it
 * included, and none after — on a real SQLite file, with a manual clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import type { RawPage } from '../../../adapters/contracts.ts';
import { createSqlSource, type SqlStreamConfig } from '../../../adapters/sql/sql-source.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { waitFor } from '../../support/net.ts';
import { recordingContext } from '../../contracts/source-adapter-contract.ts';

const stream: SqlStreamConfig = {
  name: 'items',
  table: 'items',
  key: 'id',
  records: [
    {
      type: 'patient',
      patient: { system: 'T', id: 'tag' },
      fields: { 'identifiers[0].system': { value: 'T' }, 'identifiers[0].value': 'tag' },
    },
  ] as SqlStreamConfig['records'],
};

/** A SQLite source over `file` (pages of 5, a manual clock), started, with every page it hands over recorded. */
async function startRecorded(file: string, streams: SqlStreamConfig[]) {
  const clock = createManualClock(Date.UTC(2026, 11, 2, 9));
  const source = createSqlSource({
    id: 'lanes',
    system: 'T',
    connection: { engine: 'sqlite', file },
    streams,
    pageSize: 5,
    pollIntervalMs: 60_000,
    overlapSeconds: 0,
    keysetIntervalMinutes: 60,
    realtime: 'off',
    channel: 'unused',
    clock,
  });
  const ctx = recordingContext();
  const pages: RawPage[] = [];
  const accept = ctx.intakePage.bind(ctx);
  ctx.intakePage = async (page) => {
    pages.push(page);
    return accept(page);
  };
  await source.start(ctx);
  return { clock, source, pages };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('database source first load', () => {
  it('marks the pages of the initial phase as a first load, and the incremental ones not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-sql-lane-'));
    dirs.push(dir);
    const file = join(dir, 'pms.db');
    const db = new DatabaseSync(file);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)');
    for (let k = 1; k <= 12; k++) db.prepare('INSERT INTO items (tag) VALUES (?)').run(`T-${k}`);
    const { clock, source, pages } = await startRecorded(file, [stream]);
    await waitFor(() => clock.pending() === 1, 5000, 'the first cycle to finish');
    expect(pages.map((p) => [p.rows.length, p.firstLoad])).toEqual([
      [5, true],
      [5, true],
      [2, true],
    ]);
    db.prepare('INSERT INTO items (tag) VALUES (?)').run('T-13');
    clock.advance(60_000);
    await waitFor(() => pages.length > 3 && clock.pending() === 1, 5000, 'the next cycle');
    expect(pages.slice(3).map((p) => [p.rows.length, p.firstLoad])).toEqual([[1, false]]);
    await source.stop();
    db.close();
  });

  it("reads a large first load a slice at a time, so another stream's rows are read before it ends", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-sql-slice-'));
    dirs.push(dir);
    const file = join(dir, 'pms.db');
    const db = new DatabaseSync(file);
    db.exec(
      'CREATE TABLE items (id INTEGER PRIMARY KEY, tag TEXT NOT NULL); CREATE TABLE notes (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)',
    );
    db.exec('BEGIN');
    for (let k = 1; k <= 600; k++) db.prepare('INSERT INTO items (tag) VALUES (?)').run(`T-${k}`);
    db.exec('COMMIT');
    for (let k = 1; k <= 3; k++) db.prepare('INSERT INTO notes (tag) VALUES (?)').run(`N-${k}`);
    // the large stream first: without slices the small one waited for all 120 of its pages
    const { clock, source, pages } = await startRecorded(file, [stream, { ...stream, name: 'notes', table: 'notes' }]);
    // every slice goes on without the poll wait: one cycle's timer once both first loads are done
    await waitFor(
      () => clock.pending() === 1 && pages.filter((p) => p.stream?.endsWith('items')).length >= 121,
      20_000,
      'both first loads',
    );
    const items = pages.map((p, i) => [i, p] as const).filter(([, p]) => p.stream?.endsWith('items'));
    const notes = pages.map((p, i) => [i, p] as const).filter(([, p]) => p.stream?.endsWith('notes'));
    expect(items.reduce((n, [, p]) => n + p.rows.length, 0)).toBe(600);
    expect(notes.map(([, p]) => p.rows.length)).toEqual([3]);
    // the small stream's page came after at most one slice (50 pages) of the large one, long before its end
    expect(notes[0][0]).toBeGreaterThan(0);
    expect(notes[0][0]).toBeLessThanOrEqual(50);
    expect(notes[0][0]).toBeLessThan(items.at(-1)![0]);
    expect(items.every(([, p]) => p.firstLoad === true)).toBe(true);
    await source.stop();
    db.close();
  });
});
