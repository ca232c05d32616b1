/**
 * Real time for PostgreSQL: statement-level triggers on the streamed tables that NOTIFY a channel
 * the gateway LISTENs on, so a change is read within a second instead of at the next poll. The
 * NOTIFY carries only the table name (no data); the gateway then reads by its watermark as always.
 *
 * They are created only by `eyewear-gateway db realtime install` with the technician's explicit
 * consent, with an admin login given for that one command (the gateway's own user stays
 * read-only). Everything lives in the `ewml_realtime` schema except the triggers themselves
 * (a trigger belongs to its table), all named after the channel; `remove` drops exactly those.
 */
import type { SqlDriver } from './sql-driver.ts';
import { identifierParts } from './sql-driver.ts';

export const REALTIME_SCHEMA = 'ewml_realtime';

function names(channel: string) {
  identifierParts(channel);
  return { fn: `${REALTIME_SCHEMA}.notify_${channel}`, trigger: `ewml_notify_${channel}` };
}

/** The statements `install` runs, in one transaction (shown to the technician before consent). */
export function realtimeInstallSql(channel: string, tables: readonly string[]): string[] {
  const n = names(channel);
  const out = [
    `CREATE SCHEMA IF NOT EXISTS ${REALTIME_SCHEMA}`,
    `CREATE OR REPLACE FUNCTION ${n.fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${channel}', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME); RETURN NULL; END $$`,
    `GRANT USAGE ON SCHEMA ${REALTIME_SCHEMA} TO PUBLIC`,
  ];
  for (const t of tables) {
    identifierParts(t);
    out.push(`DROP TRIGGER IF EXISTS ${n.trigger} ON ${t}`);
    out.push(`CREATE TRIGGER ${n.trigger} AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${n.fn}()`);
  }
  return out;
}

/** The statements `remove` runs: this channel's triggers and function; the schema when nothing else is in it. */
export function realtimeRemoveSql(channel: string, tables: readonly string[]): string[] {
  const n = names(channel);
  return [
    ...tables.map((t) => {
      identifierParts(t);
      return `DROP TRIGGER IF EXISTS ${n.trigger} ON ${t}`;
    }),
    `DROP FUNCTION IF EXISTS ${n.fn}()`,
  ];
}

async function inTransaction(d: SqlDriver, statements: readonly string[]): Promise<void> {
  // one connection for the whole transaction: the pool of a writable driver has size 1
  await d.query('BEGIN');
  try {
    for (const s of statements) await d.query(s);
    await d.query('COMMIT');
  } catch (e) {
    await d.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export async function installRealtime(d: SqlDriver, channel: string, tables: readonly string[]): Promise<void> {
  if (d.engine !== 'postgres') throw new Error(`real-time triggers are for PostgreSQL; ${d.engine} is polled (pollIntervalMs)`);
  await inTransaction(d, realtimeInstallSql(channel, tables));
}

export async function removeRealtime(d: SqlDriver, channel: string, tables: readonly string[]): Promise<void> {
  if (d.engine !== 'postgres') throw new Error(`real-time triggers are for PostgreSQL; ${d.engine} has none to remove`);
  await inTransaction(d, realtimeRemoveSql(channel, tables));
  // the schema goes when no other gateway's function is left in it
  const left = await d.query(
    `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = '${REALTIME_SCHEMA}'`,
  );
  if (Number(left[0].n) === 0) await d.query(`DROP SCHEMA IF EXISTS ${REALTIME_SCHEMA}`);
}

/** Tables that carry this channel's trigger. */
export async function realtimeStatus(d: SqlDriver, channel: string): Promise<string[]> {
  if (d.engine !== 'postgres') return [];
  const n = names(channel);
  const rows = await d.query(
    `SELECT c.relnamespace::regnamespace::text || '.' || c.relname AS t FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = $1 ORDER BY 1`,
    [n.trigger],
  );
  return rows.map((r) => String(r.t));
}
