/** Practice Studio on a real MariaDB server (the shared suite). */
import mysql from 'mysql2/promise';
import { startMariadb } from '../../support/mariadb.ts';
import { practiceStudioSuite } from './practice-studio-suite.ts';

practiceStudioSuite({
  engine: 'mariadb',
  start: startMariadb,
  async openTransaction(server, database) {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: server.port,
      user: server.admin.user,
      password: server.admin.password,
      database,
    });
    await c.query('START TRANSACTION');
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
  readOnlyError: /READ ONLY transaction/i,
  isolationQuery: 'SELECT @@tx_isolation AS i',
  isolationValue: 'READ-COMMITTED',
});
