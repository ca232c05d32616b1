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
    const clock = createManualClock(Date.UTC(2026, 11, 2, 9));
    const source = createSqlSource({
      id: 'lanes',
      system: 'T',
      connection: { engine: 'sqlite', file },
      streams: [stream],
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
});
