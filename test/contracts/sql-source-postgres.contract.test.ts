/**
 * The database source against the SourceAdapter contract on a real PostgreSQL (test/support/postgres.ts),
 * with `realtime: listen` (its LISTEN connection is opened at start and closed at stop, however
 * often it is restarted). Each case reads its own database.
 */
import { afterAll } from 'vitest';
import { createSqlSource, type SqlStreamConfig } from '../../adapters/sql/sql-source.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { startPostgres, type PgServer } from '../support/postgres.ts';
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

let server: Promise<PgServer> | undefined;
const pg = () => (server ??= startPostgres());
afterAll(async () => {
  if (server) await (await server).stop();
});
let databases = 0;

async function createDatabase(s: PgServer, name: string): Promise<void> {
  await s.query(`CREATE DATABASE ${name}`);
  await s.query('CREATE TABLE items (id SERIAL PRIMARY KEY, tag TEXT NOT NULL)', [], name);
}

function source(s: PgServer, database: string, clock = createManualClock()) {
  return createSqlSource({
    id: 'pg-contract',
    system: 'CONTRACT',
    connection: {
      engine: 'postgres',
      host: '127.0.0.1',
      port: s.port,
      database,
      user: s.admin.user,
      password: s.admin.password,
      poolSize: 2,
    },
    streams: [stream],
    pageSize: 50,
    pollIntervalMs: POLL_MS,
    overlapSeconds: 0,
    keysetIntervalMinutes: 60,
    realtime: 'listen',
    channel: `ewml_contract_${database}`,
    clock,
  });
}

sourceAdapterContract({
  name: 'SQL source (PostgreSQL, realtime listen)',
  whileStopped: 'queued',
  timeoutMs: 90_000,
  async make() {
    const s = await pg();
    const name = `contract_${++databases}`;
    await createDatabase(s, name);
    const clock = createManualClock();
    const adapter = source(s, name, clock);
    return {
      adapter,
      clock,
      async feed(n) {
        await s.query('INSERT INTO items (tag) VALUES ($1)', [tagOf(n)], name);
      },
      kick: () => clock.advance(POLL_MS),
      async cleanup() {
        await adapter.stop();
      },
    };
  },
  async failing() {
    // the database does not exist yet (a PMS being installed): the start rejects with SQLSTATE 3D000
    const s = await pg();
    const name = `contract_${++databases}`;
    const adapter = source(s, name);
    return { adapter, fix: () => createDatabase(s, name), cleanup: () => adapter.stop() };
  },
});
