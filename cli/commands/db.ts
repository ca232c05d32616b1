/**
 * `eyewear-gateway db …`: the technician's database commands.
 *   db check    — every stream checked before use: columns the mapping needs, the page query's plan
 *                 (EXPLAIN, not run blind: a plan that sorts the whole table is flagged with the
 *                 index to create), row count, and the first row mapped and validated.
 *   db realtime install|remove|status — PostgreSQL NOTIFY triggers, only with explicit consent.
 */
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import {
  connectionOf,
  createDatabaseSource,
  openSqlDriver,
  pkOf,
  realtimeChannel,
  streamsOf,
  type SqlDriver,
} from '../../adapters/sql/index.ts';
import { inspectStream } from '../../adapters/sql/sql-source.ts';
import { installRealtime, realtimeInstallSql, realtimeRemoveSql, realtimeStatus, removeRealtime } from '../../adapters/sql/realtime.ts';
import { rowHash } from '../../adapters/canonical/row-hash.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import type { CliCommand, CliIo } from '../command.ts';
import { pickEntries } from '../source-args.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';

export const DB_HELP = `eyewear-gateway db — database sources

Usage:
  eyewear-gateway db check [--config FILE] [--database ID]
      Connect read-only and check every stream: the columns its mapping needs, the page query's plan
      (EXPLAIN; a full-table sort is flagged with the index to create), the row count, and the
      first row mapped and validated (issues name fields, never values). Exit 5 when a stream has errors.
  eyewear-gateway db realtime install|remove|status --database ID [--config FILE]
      [--admin-user USER] [--admin-password-env VAR] [--yes]
      PostgreSQL only. install: create NOTIFY triggers on the streamed tables (schema ewml_realtime;
      the statements are shown first and need your explicit yes, or --yes). remove: drop exactly
      those. status: list the tables that have them. The admin login is used for this command only.
`;

export async function dbCheck(config: GatewayConfig, id: string | undefined, io: CliIo): Promise<number> {
  const dbs = pickEntries(config.databases, id, { kind: 'database', section: 'databases' }, io);
  if (!dbs) return 2;
  let errors = 0;
  const validator = createRecordValidator();
  const stage = createMapStage({
    validator,
    clock: systemClock,
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
  });
  for (const c of dbs) {
    io.out(
      `${c.id} (${c.engine} ${c.engine === 'sqlite' ? c.file : `${c.database}@${c.host}${c.port ? `:${c.port}` : ''}`}, profile ${c.profile})`,
    );
    let d: SqlDriver;
    try {
      d = await openSqlDriver(connectionOf(c));
      await d.query('SELECT 1 AS ok');
    } catch (e) {
      io.err(`  cannot connect: ${(e as Error).message} — check host, port, database, user and password (databases[].…)`);
      errors++;
      continue;
    }
    const source = createDatabaseSource(c, () => Date.now(), { driver: d });
    try {
      for (const s of streamsOf(c)) {
        const problems: string[] = [];
        const notes: string[] = [];
        try {
          const { sample, missing, plan, rows, needsIndex } = await inspectStream(d, s, c.pageSize, { count: true });
          notes.push(`${rows} rows`);
          if (sample) {
            if (missing.length) problems.push(`no column(s) ${missing.join(', ')}`);
            else notes.push(`plan: ${plan[0]?.trim().slice(0, 90) ?? '?'}`);
            if (needsIndex) notes.push(`WARNING: each page sorts the table — create an index on (${needsIndex})`);
            if (missing.length === 0 && s.records.length) {
              const mapped = stage.finish(source.mapRow(s.name, { pk: pkOf(sample[s.key]), data: sample, hash: rowHash(sample) }));
              for (const i of mapped.mapped.issues) (i.severity === 'error' ? problems : notes).push(`first row: ${i.message}`);
              for (const i of mapped.invalid) problems.push(`first row: ${i.type} ${i.path} ${i.problem}`);
            }
          } else notes.push('empty: columns checked when rows arrive');
        } catch (e) {
          problems.push((e as Error).message.slice(0, 300));
        }
        if (problems.length) errors++;
        io.out(`  ${s.name.padEnd(18)} ${problems.length ? 'ERROR' : 'ok   '} ${notes.join('; ')}`);
        for (const p of problems) io.err(`  ${s.name}: ${p}`);
      }
    } finally {
      await d.close();
    }
  }
  io.out(errors ? `db check: ${errors} stream(s) with errors` : 'db check: every stream is ready');
  return errors ? 5 : 0;
}

export async function dbRealtime(
  config: GatewayConfig,
  action: string | undefined,
  o: { database?: string; adminUser?: string; adminPasswordEnv?: string; yes: boolean; confirm?: (question: string) => Promise<string> },
  io: CliIo,
): Promise<number> {
  if (action !== 'install' && action !== 'remove' && action !== 'status') {
    io.err(`db realtime needs install, remove or status\n\n${DB_HELP}`);
    return 2;
  }
  if (!o.database) {
    io.err('db realtime needs --database ID');
    return 2;
  }
  const dbs = pickEntries(config.databases, o.database, { kind: 'database', section: 'databases' }, io);
  if (!dbs) return 2;
  const c = dbs[0];
  if (c.engine !== 'postgres') {
    io.err(`real-time triggers are for PostgreSQL; ${c.id} is ${c.engine} and is polled every ${c.pollIntervalMs} ms`);
    return 2;
  }
  const tables = [
    ...new Set(
      streamsOf(c)
        .map((s) => s.table)
        .filter((t): t is string => Boolean(t)),
    ),
  ];
  const channel = realtimeChannel(c.id);
  const password = o.adminPasswordEnv ? process.env[o.adminPasswordEnv] : undefined;
  if (o.adminPasswordEnv && password === undefined) {
    io.err(`environment variable ${o.adminPasswordEnv} is not set`);
    return 2;
  }
  const conn = { ...connectionOf(c, true), poolSize: 1, ...(o.adminUser ? { user: o.adminUser, password } : {}) };
  if (action !== 'status') {
    const sql = action === 'install' ? realtimeInstallSql(channel, tables) : realtimeRemoveSql(channel, tables);
    io.out(`${action === 'install' ? 'This creates' : 'This removes'}, on ${c.database}@${c.host} as ${conn.user}, in one transaction:`);
    for (const s of sql) io.out(`  ${s};`);
    if (action === 'install')
      io.out(
        `The triggers send only a table name on channel ${channel} after each change; Practice Studio's writes are otherwise untouched. Remove them with: eyewear-gateway db realtime remove --database ${c.id}`,
      );
    if (!o.yes) {
      if (!o.confirm) {
        io.err('no consent given: run it in a terminal and answer yes, or add --yes');
        return 2;
      }
      const answer = (await o.confirm('Type yes to go ahead: ')).trim().toLowerCase();
      if (answer !== 'yes') {
        io.err('not confirmed; nothing was changed');
        return 1;
      }
    }
  }
  let d: SqlDriver;
  try {
    d = await openSqlDriver(conn);
  } catch (e) {
    io.err(`cannot connect as ${conn.user}: ${(e as Error).message}`);
    return 4;
  }
  try {
    if (action === 'install') {
      await installRealtime(d, channel, tables);
      io.out(`installed on ${tables.length} table(s); set databases[].realtime: listen for ${c.id} and restart the gateway`);
    } else if (action === 'remove') {
      await removeRealtime(d, channel, tables);
      io.out(`removed from ${tables.length} table(s)`);
    } else {
      const on = await realtimeStatus(d, channel);
      io.out(on.length ? `triggers on ${on.length} table(s): ${on.join(', ')}` : 'no real-time triggers installed');
    }
    return 0;
  } catch (e) {
    io.err(`${action} failed, nothing was changed (one transaction): ${(e as Error).message}`);
    return 1;
  } finally {
    await d.close();
  }
}

export const dbCommand: CliCommand = {
  name: 'db',
  synopsis: 'db check|realtime ...',
  summary:
    'Database sources: check streams before use (EXPLAIN, columns, first row);\nPostgreSQL real-time triggers, installed only with consent (db --help).',
  help: DB_HELP,
  options: {
    database: { type: 'string' },
    'admin-user': { type: 'string' },
    'admin-password-env': { type: 'string' },
    yes: { type: 'boolean' },
  },
  run({ positionals, values: v, configFile }, io) {
    const [sub, action] = positionals;
    if (sub === 'check') return dbCheck(io.loadConfig(configFile), v.database as string | undefined, io);
    if (sub === 'realtime')
      return dbRealtime(
        io.loadConfig(configFile),
        action,
        {
          database: v.database as string | undefined,
          adminUser: v['admin-user'] as string | undefined,
          adminPasswordEnv: v['admin-password-env'] as string | undefined,
          yes: Boolean(v.yes),
          confirm: io.confirm,
        },
        io,
      );
    io.err(`db needs check or realtime\n\n${DB_HELP}`);
    return 2;
  },
};
