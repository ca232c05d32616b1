/**
 * What the database poller tells the poll schedule after each cycle, on a real SQLite file and the
 * manual clock: the rows it committed as changed (a first load is not a change of the practice's;
 * rows re-read unchanged are not counted), the page queries it made, and its configured interval —
 * and it sleeps exactly what the schedule answers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { PollCycle } from '../../../adapters/contracts.ts';
import { createSqlSource, type SqlStreamConfig } from '../../../adapters/sql/sql-source.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { recordingContext } from '../../contracts/source-adapter-contract.ts';
import { waitFor } from '../../support/net.ts';

const stream: SqlStreamConfig = {
  name: 'items',
  table: 'items',
  key: 'id',
  watermark: { column: 'seq', kind: 'rowversion' },
  records: [
    {
      type: 'patient',
      patient: { system: 'T', id: 'tag' },
      fields: { 'identifiers[0].system': { value: 'T' }, 'identifiers[0].value': 'tag' },
    },
  ] as SqlStreamConfig['records'],
};

describe('the database poller and its schedule', () => {
  it('reports changed rows and queries after each cycle, not its first load, and waits what it is told', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ewml-sync-poller-')), 'pms.db');
    const db = new DatabaseSync(file);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, tag TEXT NOT NULL)');
    const put = db.prepare('INSERT INTO items (id, seq, tag) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq');
    for (let i = 1; i <= 7; i++) put.run(i, i, `CONTRACT-${i}`);
    const clock = createManualClock(Date.UTC(2026, 2, 3, 2));
    const cycles: PollCycle[] = [];
    const answers = [600_000, 30_000, 45_000];
    const ctx = recordingContext();
    const source = createSqlSource({
      id: 'pms',
      system: 'T',
      connection: { engine: 'sqlite', file },
      streams: [stream],
      pageSize: 5,
      pollIntervalMs: 20_000,
      overlapSeconds: 0,
      keysetIntervalMinutes: 60,
      realtime: 'off',
      channel: 'unused',
      clock,
    });
    await source.start({
      ...ctx,
      pollSchedule: {
        next: (c) => {
          cycles.push(c);
          return answers[cycles.length - 1] ?? c.configuredMs;
        },
      },
    });
    const cycleEnded = (n: number) => waitFor(() => cycles.length === n && clock.pending() === 1, 5000, `cycle ${n}`);
    // the first load: 7 rows in two pages (5 + 2), counted as no change
    await cycleEnded(1);
    expect(cycles[0]).toEqual({ configuredMs: 20_000, changes: 0, requests: 2 });
    expect(clock.nextDue()).toBe(clock.now() + 600_000);
    put.run(3, 8, 'CONTRACT-3');
    put.run(8, 9, 'CONTRACT-8');
    clock.advance(600_000);
    await cycleEnded(2);
    expect(cycles[1]).toEqual({ configuredMs: 20_000, changes: 2, requests: 1 });
    expect(clock.nextDue()).toBe(clock.now() + 30_000);
    clock.advance(30_000);
    await cycleEnded(3);
    expect(cycles[2]).toEqual({ configuredMs: 20_000, changes: 0, requests: 1 });
    expect(clock.nextDue()).toBe(clock.now() + 45_000);
    await source.stop();
    expect(clock.pending()).toBe(0);
    db.close();
  });
});
