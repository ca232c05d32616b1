/**
 * Write-back: statuses the cloud sends (an order's state, say) written to the PMS database through
 * the statements configured for it, by name — never SQL built from a command. Each command value
 * is bound as a parameter; a statement not configured, a missing value or a value that is not a
 * plain scalar is refused before anything reaches the database. Off unless configured per database.
 */
import { openSqlDriver, type SqlConnectionOptions, type SqlDriver } from './sql-driver.ts';

export interface WriteBackStatement {
  sql: string;
  params: string[];
}

export interface WriteBack {
  /** Runs a configured statement; resolves with the rows it changed. Throws `WriteBackRefused` for a bad request. */
  run(statement: string, values: Record<string, unknown>): Promise<number>;
  close(): Promise<void>;
}

export class WriteBackRefused extends Error {}

export function createWriteBack(o: {
  connection: SqlConnectionOptions;
  statements: Record<string, WriteBackStatement>;
  driver?: SqlDriver;
}): WriteBack {
  let driver: SqlDriver | undefined = o.driver;
  return {
    async run(statement, values) {
      const st = Object.hasOwn(o.statements, statement) ? o.statements[statement] : undefined;
      if (!st)
        throw new WriteBackRefused(
          `no write-back statement "${statement}" (configured: ${Object.keys(o.statements).join(', ') || 'none'})`,
        );
      if (!values || typeof values !== 'object') throw new WriteBackRefused('write-back needs `values`');
      const params = st.params.map((name) => {
        if (!Object.hasOwn(values, name)) throw new WriteBackRefused(`value "${name}" is missing`);
        const v = values[name];
        if (v !== null && !['string', 'number', 'boolean'].includes(typeof v))
          throw new WriteBackRefused(`value "${name}" must be text, a number, true/false or null`);
        return v;
      });
      driver ??= await openSqlDriver({ ...o.connection, writable: true, poolSize: 1 });
      return driver.execute(st.sql, params);
    },
    async close() {
      if (driver && !o.driver) await driver.close();
      driver = undefined;
    },
  };
}
