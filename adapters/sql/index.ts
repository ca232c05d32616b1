/**
 * Database sources: a config entry (config/schema.ts `databases[]`) made into a SQL source with
 * its profile's streams, and the codec that lets a dead-lettered row be replayed after a mapping fix.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { defineSource, parseStoredRow, type SourceCodec, type StoredRow } from '../contracts.ts';
import type { RecordMapping } from '../canonical/field-mapping.ts';
import { PRACTICE_STUDIO_SYSTEM, practiceStudioStreams } from './profiles/practice-studio.ts';
import type { SqlConnectionOptions } from './sql-driver.ts';
import { createSqlSource, type SqlSourceOptions, type SqlStreamConfig } from './sql-source.ts';

export { createSqlSource, pkOf, type SqlSourceOptions, type SqlStreamConfig, type StreamProgress } from './sql-source.ts';
export { openSqlDriver, type SqlDriver, type SqlEngine, type SqlConnectionOptions } from './sql-driver.ts';
export { practiceStudioStreams, PRACTICE_STUDIO_SYSTEM } from './profiles/practice-studio.ts';

/** The `databases[]` entry, as the config schema gives it. */
export type DatabaseConfig = GatewayConfig['databases'][number];

export function connectionOf(c: DatabaseConfig, writable = false): SqlConnectionOptions {
  return {
    engine: c.engine,
    host: c.host,
    port: c.port || undefined,
    database: c.database || undefined,
    user: (writable && c.writeBack.user) || c.user || undefined,
    password: writable && c.writeBack.user ? c.writeBack.password : c.password,
    file: c.file,
    ssl: c.ssl,
    poolSize: c.poolSize,
    statementTimeoutMs: c.statementTimeoutMs,
    writable,
  };
}

/** The streams a database entry reads: its profile's, then the ones configured beside them. */
export function streamsOf(c: DatabaseConfig): SqlStreamConfig[] {
  const own = c.streams.map((s) => ({ ...s, records: s.records as RecordMapping[] }));
  return c.profile === 'practice-studio' ? [...practiceStudioStreams(c.schema), ...own] : own;
}

/** The NOTIFY channel the consented triggers use for a database entry. */
export const realtimeChannel = (id: string) => `ewml_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;

export function createDatabaseSource(c: DatabaseConfig, now: () => number, extra?: Partial<SqlSourceOptions>) {
  const streams = streamsOf(c);
  if (streams.length === 0) throw new Error(`databases.${c.id}: no streams (profile generic needs \`streams\`)`);
  return createSqlSource({
    id: c.id,
    system: c.system || (c.profile === 'practice-studio' ? PRACTICE_STUDIO_SYSTEM : c.id.toUpperCase()),
    connection: connectionOf(c),
    streams,
    pageSize: c.pageSize,
    pollIntervalMs: c.pollIntervalMs,
    overlapSeconds: c.overlapSeconds,
    keysetIntervalMinutes: c.keysetIntervalMinutes,
    realtime: c.realtime,
    channel: realtimeChannel(c.id),
    now,
    ...extra,
  });
}

/** Replays a dead-lettered row (`{stream, pk, data}`) through its stream's mapping. */
export function createSqlRowCodec(source: ReturnType<typeof createSqlSource>): SourceCodec<StoredRow> {
  return {
    format: `sql:${source.id}`,
    parse: (text) => parseStoredRow(text, 'database row'),
    dedupeKey: () => undefined,
    describe: (r) => ({ kind: `sql-row:${r.stream.split('/').pop() ?? r.stream}` }),
    map: (r) => source.mapRow(r.stream.split('/').slice(1).join('/'), { pk: r.pk, data: r.data }),
  };
}

/** The `databases[]` source kind: one SQL source per entry, with the codec that replays its dead-lettered rows. */
export const databaseSources = defineSource({
  kind: 'database',
  section: 'databases',
  create(entries, deps) {
    const adapters = entries.map((d) => createDatabaseSource(d, deps.now, { timezone: deps.timezone, clock: deps.clock }));
    return { adapters, codecs: adapters.map((a) => createSqlRowCodec(a)) };
  },
});
