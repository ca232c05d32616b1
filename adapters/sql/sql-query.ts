/**
 * The SQL a stream runs, per dialect: keyset pages ordered by (watermark, key), counts, key lookups.
 * Only identifiers that passed `identifierParts` and placeholders go into the text; every value is
 * a parameter. A stream's base is a table, or a technician's SELECT wrapped as a subquery.
 */
import type { SqlDriver } from './sql-driver.ts';
import { identifierParts } from './sql-driver.ts';

export type WatermarkKind = 'timestamp' | 'rowversion' | 'key';

export interface StreamSource {
  table?: string;
  query?: string;
  key: string;
  watermark: { column: string; kind: WatermarkKind };
}

/** A position in a stream: the last row read, as (watermark, key). */
export type Position = readonly [unknown, unknown];

export function baseSql(d: SqlDriver, s: StreamSource): string {
  if (s.query) {
    const q = s.query.trim().replace(/;\s*$/, '');
    if (!/^(select|with)\b/i.test(q)) throw new Error('a stream query must be one SELECT (or WITH … SELECT) statement');
    if (q.includes(';')) throw new Error('a stream query must be a single statement (no ;)');
    return q;
  }
  if (!s.table) throw new Error('a stream needs `table` or `query`');
  return `SELECT * FROM ${d.quote(s.table)}`;
}

function col(d: SqlDriver, c: string): string {
  identifierParts(c);
  return `s.${d.quote(c)}`;
}

/** The page after `from` (or the first page), `limit` rows, in (watermark, key) order. */
export function pageQuery(d: SqlDriver, s: StreamSource, from: Position | null, limit: number): { sql: string; params: unknown[] } {
  const base = baseSql(d, s);
  const k = col(d, s.key);
  const byKey = s.watermark.kind === 'key' || s.watermark.column === s.key;
  const w = col(d, s.watermark.column);
  const order = byKey ? k : `${w}, ${k}`;
  const params: unknown[] = [];
  let where = '';
  if (from) {
    if (byKey) {
      params.push(from[1]);
      where = `WHERE ${k} > ${d.param(1)}`;
    } else {
      params.push(from[0], from[1]);
      // PostgreSQL compares rows with an index on (w, k); the others get the expanded form
      where =
        d.engine === 'postgres'
          ? `WHERE (${w}, ${k}) > (${d.param(1)}, ${d.param(2)})`
          : `WHERE (${w} > ${d.param(1)} OR (${w} = ${d.param(1)} AND ${k} > ${d.param(2)}))`;
      if (d.engine !== 'postgres' && d.param(1) === '?') {
        params.length = 0;
        params.push(from[0], from[0], from[1]);
      }
    }
  }
  if (d.engine === 'mssql') return { sql: `SELECT TOP (${Math.floor(limit)}) * FROM (${base}) AS s ${where} ORDER BY ${order}`, params };
  return { sql: `SELECT * FROM (${base}) AS s ${where} ORDER BY ${order} LIMIT ${Math.floor(limit)}`, params };
}

export function countQuery(d: SqlDriver, s: StreamSource): string {
  return `SELECT COUNT(*) AS n FROM (${baseSql(d, s)}) AS s`;
}

/** Which of these keys still exist (deletes found by key-set comparison). */
export function keysQuery(d: SqlDriver, s: StreamSource, n: number): string {
  const ph = Array.from({ length: n }, (_, i) => d.param(i + 1)).join(', ');
  return `SELECT ${col(d, s.key)} AS k FROM (${baseSql(d, s)}) AS s WHERE ${col(d, s.key)} IN (${ph})`;
}

/** The columns a stream's rows have (a query that returns no row, for checking a mapping). */
export function shapeQuery(d: SqlDriver, s: StreamSource): string {
  return d.engine === 'mssql' ? `SELECT TOP (1) * FROM (${baseSql(d, s)}) AS s` : `SELECT * FROM (${baseSql(d, s)}) AS s LIMIT 1`;
}

/** Cursor values as JSON: binary (a rowversion) as `{"$b": hex}`, 64-bit integers as text. */
export function encodeValue(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { $b: Buffer.from(v).toString('hex') };
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  return v;
}

export function decodeValue(v: unknown): unknown {
  if (v && typeof v === 'object' && typeof (v as { $b?: unknown }).$b === 'string') return Buffer.from((v as { $b: string }).$b, 'hex');
  return v;
}
