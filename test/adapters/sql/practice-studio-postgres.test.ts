/** Practice Studio on a real PostgreSQL server (the shared suite). */
import pg from 'pg';
import { startPostgres } from '../../support/postgres.ts';
import { practiceStudioSuite } from './practice-studio-suite.ts';

practiceStudioSuite({
  engine: 'postgres',
  start: startPostgres,
  async openTransaction(server, database) {
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: server.admin.user, password: server.admin.password, database });
    await c.connect();
    await c.query('BEGIN');
    return {
      run: async (sql) => {
        await c.query(sql);
      },
      commit: async () => {
        await c.query('COMMIT');
        await c.end();
      },
    };
  },
  readOnlyError: /read-only transaction/,
  isolationQuery: 'SHOW transaction_isolation',
  isolationValue: 'read committed',
});
