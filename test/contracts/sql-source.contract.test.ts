/**
 * The database source against the SourceAdapter contract, on a real SQLite file (the generic
 * profile's engine; the same poll loop serves PostgreSQL, MariaDB and SQL Server). Its poll waits
 * run on a manual clock, so "a second start() starts no second loop" is seen as a timer left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createSqlSource, type SqlStreamConfig } from '../../adapters/sql/sql-source.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

const POLL_MS = 1000;
const stream: SqlStreamConfig = {
  name: 'items',
  table: 'items',
  key: 'id',
  records: [
    {
      type: 'patient',
      patient: { system: 'CONTRACT', id: 'tag' },
      fields: { 'identifiers[0].system': { value: 'CONTRACT' }, 'identifiers[0].value': 'tag' },
    },
  ] as SqlStreamConfig['records'],
};

function createTable(file: string): DatabaseSync {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, tag TEXT NOT NULL)');
  return db;
}

function source(file: string, clock = createManualClock()) {
  return createSqlSource({
    id: 'sql-contract',
    system: 'CONTRACT',
    connection: { engine: 'sqlite', file },
    streams: [stream],
    pageSize: 50,
    pollIntervalMs: POLL_MS,
    overlapSeconds: 0,
    keysetIntervalMinutes: 60,
    realtime: 'off',
    channel: 'unused',
    clock,
  });
}

sourceAdapterContract({
  name: 'SQL source (SQLite)',
  whileStopped: 'queued',
  async make() {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-sql-contract-'));
    const file = join(dir, 'pms.db');
    const db = createTable(file);
    const clock = createManualClock();
    const adapter = source(file, clock);
    return {
      adapter,
      clock,
      async feed(n) {
        db.prepare('INSERT INTO items (tag) VALUES (?)').run(tagOf(n));
      },
      kick: () => clock.advance(POLL_MS),
      async cleanup() {
        await adapter.stop();
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    // the database file is not there yet (a PMS not installed, a path not mounted): the start rejects
    const dir = mkdtempSync(join(tmpdir(), 'ewml-sql-contract-'));
    const file = join(dir, 'pms.db');
    const adapter = source(file);
    let db: DatabaseSync | undefined;
    return {
      adapter,
      async fix() {
        db = createTable(file);
      },
      async cleanup() {
        await adapter.stop();
        db?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
