/**
 * The database source's waits run on the injected clock: the poll interval and the back-off while
 * the outbox is full are seen exactly, with a manual clock, on a real SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
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

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-sql-clock-'));
  dirs.push(dir);
  const file = join(dir, 'pms.db');
  const db = new DatabaseSync(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)');
  const clock = createManualClock(Date.UTC(2026, 11, 2, 9));
  const source = createSqlSource({
    id: 'clocked',
    system: 'T',
    connection: { engine: 'sqlite', file },
    streams: [stream],
    pageSize: 50,
    pollIntervalMs: 60_000,
    overlapSeconds: 0,
    keysetIntervalMinutes: 60,
    realtime: 'off',
    channel: 'unused',
    clock,
  });
  return { db, clock, source };
}

describe('database source on a manual clock', () => {
  it('reads again after pollIntervalMs of clock time, not a millisecond before', async () => {
    const { db, clock, source } = setup();
    const ctx = recordingContext();
    await source.start(ctx);
    const t0 = clock.now();
    await waitFor(() => clock.pending() === 1, 5000, 'the first cycle to finish and the poll wait to start');
    expect(clock.nextDue()).toBe(t0 + 60_000);
    db.prepare('INSERT INTO items (tag) VALUES (?)').run('CONTRACT-1');
    clock.advance(59_999);
    expect(ctx.taken(1)).toBe(0);
    clock.advance(1);
    await waitFor(() => ctx.taken(1) === 1, 5000, 'the row read at the next poll');
    await waitFor(() => clock.pending() === 1, 5000, 'the next poll wait');
    expect(clock.nextDue()).toBe(t0 + 120_000);
    await source.stop();
    expect(clock.pending()).toBe(0);
    db.close();
  });

  it('backs off 1 s, 2 s, 4 s of clock time while the outbox refuses the page, and keeps the cursor', async () => {
    const { db, clock, source } = setup();
    db.prepare('INSERT INTO items (tag) VALUES (?)').run('CONTRACT-1');
    const ctx = recordingContext();
    const accept = ctx.intakePage.bind(ctx);
    let refusals = 3;
    ctx.intakePage = async (page) => {
      if (refusals > 0) {
        refusals--;
        return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
      }
      return accept(page);
    };
    await source.start(ctx);
    const due: number[] = [];
    for (let i = 0; i < 3; i++) {
      await waitFor(() => clock.pending() === 1, 5000, `back-off wait ${i + 1}`);
      expect(source.health()).toMatchObject({ status: 'degraded', detail: { state: 'paused: outbox full' } });
      const at = clock.nextDue()!;
      due.push(at - clock.now());
      clock.set(at);
    }
    expect(due).toEqual([1000, 2000, 4000]);
    await waitFor(() => ctx.taken(1) === 1, 5000, 'the page committed once the outbox takes it');
    expect(ctx.cursor('clocked/items')).toBeDefined();
    await source.stop();
    db.close();
  });
});
