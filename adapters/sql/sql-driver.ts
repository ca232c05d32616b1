/**
 * One small interface over the four engines a PMS database runs on. Every connection the gateway
 * opens for reading is read-only, in a small pool, with a statement timeout, and reads at READ
 * COMMITTED (MVCC snapshots: readers never block the PMS's writers, and never see uncommitted or
 * torn rows — no dirty `NOLOCK` reads, which can skip or repeat rows under a watermark).
 *
 * Values come back as the engine writes them: timestamps and dates as text (so a watermark is
 * compared exactly, to the microsecond, never rounded through a JavaScript Date), 64-bit integers
 * and decimals as text, binary (SQL Server rowversion) as a Buffer.
 */
import { DatabaseSync } from 'node:sqlite';

export type SqlEngine = 'postgres' | 'mariadb' | 'mssql' | 'sqlite';
export type SqlRow = Record<string, unknown>;

export interface SqlConnectionOptions {
  engine: SqlEngine;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  /** SQLite: the database file. */
  file?: string;
  /** TLS to the database server (postgres, mariadb, mssql). */
  ssl?: boolean;
  poolSize?: number;
  statementTimeoutMs?: number;
  /** Open read-write (only the write-back connection and the consent-given trigger install do). */
  writable?: boolean;
}

export interface SqlDriver {
  readonly engine: SqlEngine;
  /** Parameter placeholder n (1-based) in this dialect. */
  param(n: number): string;
  quote(identifier: string): string;
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  /** A write (write-back only): the number of rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** The engine's plan for a query, as text lines. */
  explain(sql: string, params?: readonly unknown[]): Promise<string[]>;
  /** PostgreSQL only: calls `onNotify` for every NOTIFY on the channel, until `close`. */
  listen?(channel: string, onNotify: (payload: string) => void, onError: (e: Error) => void): Promise<void>;
  close(): Promise<void>;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Validates a (possibly schema-qualified) identifier from config; returns its parts. */
export function identifierParts(name: string): string[] {
  const parts = name.split('.');
  if (parts.length > 3 || parts.some((p) => !IDENT.test(p)))
    throw new Error(`"${name}" is not a plain table or column name (letters, digits, _ and $; optionally schema.table)`);
  return parts;
}

export async function openSqlDriver(o: SqlConnectionOptions): Promise<SqlDriver> {
  switch (o.engine) {
    case 'postgres':
      return openPostgres(o);
    case 'mariadb':
      return openMariadb(o);
    case 'mssql':
      return openMssql(o);
    case 'sqlite':
      return openSqlite(o);
    default:
      throw new Error(`unknown database engine ${String(o.engine)}`);
  }
}

async function openPostgres(o: SqlConnectionOptions): Promise<SqlDriver> {
  const pg = (await import('pg')).default;
  const asText = (v: string) => v;
  // timestamp, timestamptz, date, time, int8, numeric: text, exactly as the server wrote them
  const textTypes = new Set([1114, 1184, 1082, 1083, 1266, 20, 1700]);
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') => (textTypes.has(oid) ? asText : pg.types.getTypeParser(oid, format)),
  };
  const timeout = o.statementTimeoutMs ?? 30_000;
  const options = o.writable
    ? `-c statement_timeout=${timeout}`
    : `-c default_transaction_read_only=on -c default_transaction_isolation=read\\ committed -c statement_timeout=${timeout} -c lock_timeout=2000`;
  const pool = new pg.Pool({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 5432,
    database: o.database,
    user: o.user,
    password: o.password,
    ssl: o.ssl ? { rejectUnauthorized: true } : undefined,
    max: o.poolSize ?? 2,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'eyewear-gateway',
    options,
    types,
  });
  pool.on('error', () => {
    /* an idle client dropped by the server: the pool replaces it on the next query */
  });
  let listener: InstanceType<typeof pg.Client> | undefined;
  return {
    engine: 'postgres',
    param: (n) => `$${n}`,
    quote: (id) =>
      identifierParts(id)
        .map((p) => `"${p}"`)
        .join('.'),
    async query(sql, params = []) {
      return (await pool.query(sql, params as unknown[])).rows as SqlRow[];
    },
    async execute(sql, params = []) {
      return (await pool.query(sql, params as unknown[])).rowCount ?? 0;
    },
    async explain(sql, params = []) {
      return ((await pool.query(`EXPLAIN ${sql}`, params as unknown[])).rows as Array<{ 'QUERY PLAN': string }>).map(
        (r) => r['QUERY PLAN'],
      );
    },
    async listen(channel, onNotify, onError) {
      identifierParts(channel);
      const c = new pg.Client({
        host: o.host ?? '127.0.0.1',
        port: o.port ?? 5432,
        database: o.database,
        user: o.user,
        password: o.password,
        ssl: o.ssl ? { rejectUnauthorized: true } : undefined,
        application_name: 'eyewear-gateway-listen',
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
      });
      c.on('notification', (m) => {
        if (m.channel === channel) onNotify(m.payload ?? '');
      });
      c.on('error', (e) => onError(e));
      c.on('end', () => onError(new Error('notification connection closed')));
      await c.connect();
      await c.query(`LISTEN "${channel}"`);
      listener = c;
    },
    async close() {
      const l = listener;
      listener = undefined;
      if (l) {
        l.removeAllListeners('end');
        await l.end().catch(() => undefined);
      }
      await pool.end();
    },
  };
}

async function openMariadb(o: SqlConnectionOptions): Promise<SqlDriver> {
  const mysql = await import('mysql2/promise');
  const timeoutS = Math.max(1, Math.round((o.statementTimeoutMs ?? 30_000) / 1000));
  const pool = mysql.createPool({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 3306,
    database: o.database,
    user: o.user,
    password: o.password,
    ssl: o.ssl ? {} : undefined,
    connectionLimit: o.poolSize ?? 2,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    connectTimeout: 10_000,
    charset: 'utf8mb4',
  });
  // every pooled connection: READ COMMITTED (InnoDB consistent non-locking reads), read only, bounded
  const setup = o.writable
    ? [`SET SESSION max_statement_time = ${timeoutS}`]
    : [
        'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
        'SET SESSION TRANSACTION READ ONLY',
        `SET SESSION max_statement_time = ${timeoutS}`,
      ];
  pool.pool.on('connection', (c) => {
    for (const s of setup) c.query(s);
  });
  return {
    engine: 'mariadb',
    param: () => '?',
    quote: (id) =>
      identifierParts(id)
        .map((p) => `\`${p}\``)
        .join('.'),
    async query(sql, params = []) {
      const [rows] = await pool.query(sql, params as unknown[]);
      return rows as SqlRow[];
    },
    async execute(sql, params = []) {
      const [r] = await pool.execute(sql, params as never[]);
      return (r as { affectedRows?: number }).affectedRows ?? 0;
    },
    async explain(sql, params = []) {
      const [rows] = await pool.query(`EXPLAIN ${sql}`, params as unknown[]);
      return (rows as SqlRow[]).map((r) =>
        Object.entries(r)
          .filter(([, v]) => v !== null)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' '),
      );
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * SQL Server through `mssql` (tedious). Not exercised against a server here (none is reachable on
 * this network; README says so): the statements it runs are the dialect tests' strings.
 */
async function openMssql(o: SqlConnectionOptions): Promise<SqlDriver> {
  const mssql = (await import('mssql')).default;
  const pool = new mssql.ConnectionPool({
    server: o.host ?? '127.0.0.1',
    port: o.port ?? 1433,
    database: o.database,
    user: o.user,
    password: o.password,
    pool: { max: o.poolSize ?? 2, min: 0 },
    requestTimeout: o.statementTimeoutMs ?? 30_000,
    connectionTimeout: 10_000,
    options: {
      encrypt: o.ssl ?? true,
      trustServerCertificate: false,
      readOnlyIntent: !o.writable,
      appName: 'eyewear-gateway',
      useUTC: true,
    },
  });
  await pool.connect();
  const run = async (sql: string, params: readonly unknown[]) => {
    const r = pool.request();
    params.forEach((p, i) => r.input(`p${i + 1}`, p));
    // READ COMMITTED; with READ_COMMITTED_SNAPSHOT on (recommended in the README) readers take no locks
    return (await r.query(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED; ${sql}`)).recordset as SqlRow[];
  };
  return {
    engine: 'mssql',
    param: (n) => `@p${n}`,
    quote: (id) =>
      identifierParts(id)
        .map((p) => `[${p}]`)
        .join('.'),
    query: (sql, params = []) => run(sql, params),
    async execute(sql, params = []) {
      const r = pool.request();
      params.forEach((p, i) => r.input(`p${i + 1}`, p));
      return (await r.query(sql)).rowsAffected.reduce((a, b) => a + b, 0);
    },
    async explain(sql, params = []) {
      const rows = await run(`SET SHOWPLAN_TEXT ON; ${sql}; SET SHOWPLAN_TEXT OFF;`, params);
      return rows.map((r) => String(Object.values(r)[0]));
    },
    async close() {
      await pool.close();
    },
  };
}

async function openSqlite(o: SqlConnectionOptions): Promise<SqlDriver> {
  if (!o.file) throw new Error('a sqlite source needs `file`');
  const db = new DatabaseSync(o.file, { readOnly: !o.writable, timeout: 5000 });
  if (!o.writable) db.exec('PRAGMA query_only = ON');
  // WAL (when the PMS uses it) lets this reader run beside the PMS's writer without blocking it
  const toParam = (v: unknown) => (typeof v === 'boolean' ? Number(v) : v) as null | number | bigint | string | Uint8Array;
  return {
    engine: 'sqlite',
    param: () => '?',
    quote: (id) =>
      identifierParts(id)
        .map((p) => `"${p}"`)
        .join('.'),
    async query(sql, params = []) {
      return db.prepare(sql).all(...params.map(toParam)) as SqlRow[];
    },
    async execute(sql, params = []) {
      return Number(db.prepare(sql).run(...params.map(toParam)).changes);
    },
    async explain(sql, params = []) {
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params.map(toParam)) as Array<{ detail: string }>).map((r) => r.detail);
    },
    async close() {
      db.close();
    },
  };
}
