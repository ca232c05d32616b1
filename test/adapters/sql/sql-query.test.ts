/**
 * The SQL each engine is sent, as text: keyset pages, counts, key lookups. PostgreSQL, MariaDB
 * and SQLite also run these against real databases in the other tests; for SQL Server (no server
 * reachable here) this is the only check — the statements it would run.
 */
import { describe, expect, it } from 'vitest';
import type { SqlDriver, SqlEngine } from '../../../adapters/sql/sql-driver.ts';
import { identifierParts } from '../../../adapters/sql/sql-driver.ts';
import { baseSql, keysQuery, pageQuery } from '../../../adapters/sql/sql-query.ts';

function dialect(engine: SqlEngine): SqlDriver {
  const q: Record<SqlEngine, [string, string]> = { postgres: ['"', '"'], sqlite: ['"', '"'], mariadb: ['`', '`'], mssql: ['[', ']'] };
  return {
    engine,
    param: (n) => (engine === 'postgres' ? `$${n}` : engine === 'mssql' ? `@p${n}` : '?'),
    quote: (id) =>
      identifierParts(id)
        .map((p) => `${q[engine][0]}${p}${q[engine][1]}`)
        .join('.'),
    query: async () => [],
    execute: async () => 0,
    explain: async () => [],
    close: async () => undefined,
  };
}

const stream = { table: 'dbo.Patients', key: 'PatientID', watermark: { column: 'RowVer', kind: 'rowversion' as const } };

describe('keyset SQL per engine', () => {
  it('SQL Server: TOP, @p parameters used by name, bracket quoting', () => {
    const d = dialect('mssql');
    expect(pageQuery(d, stream, null, 500)).toEqual({
      sql: 'SELECT TOP (500) * FROM (SELECT * FROM [dbo].[Patients]) AS s  ORDER BY s.[RowVer], s.[PatientID]',
      params: [],
    });
    const rv = Buffer.from('00000000000007d1', 'hex');
    expect(pageQuery(d, stream, [rv, 42], 500)).toEqual({
      sql: 'SELECT TOP (500) * FROM (SELECT * FROM [dbo].[Patients]) AS s WHERE (s.[RowVer] > @p1 OR (s.[RowVer] = @p1 AND s.[PatientID] > @p2)) ORDER BY s.[RowVer], s.[PatientID]',
      params: [rv, 42],
    });
    expect(keysQuery(d, stream, 2)).toBe(
      'SELECT s.[PatientID] AS k FROM (SELECT * FROM [dbo].[Patients]) AS s WHERE s.[PatientID] IN (@p1, @p2)',
    );
  });

  it('engines with ? placeholders get each value once per placeholder, in order', () => {
    for (const engine of ['mariadb', 'sqlite'] as const) {
      const q = pageQuery(dialect(engine), stream, ['w1', 'k1'], 10);
      expect(q.sql.match(/\?/g)).toHaveLength(3);
      expect(q.params).toEqual(['w1', 'w1', 'k1']);
    }
  });

  it('PostgreSQL compares (watermark, key) as a row, which its index on (w, k) serves', () => {
    expect(pageQuery(dialect('postgres'), { ...stream, table: 'ps.patients' }, ['t', 7], 10).sql).toContain(
      'WHERE (s."RowVer", s."PatientID") > ($1, $2)',
    );
  });

  it('an increasing key needs no watermark column', () => {
    expect(
      pageQuery(
        dialect('postgres'),
        { table: 'ps.deletions', key: 'deletion_id', watermark: { column: 'deletion_id', kind: 'key' } },
        [null, 5],
        100,
      ),
    ).toEqual({
      sql: 'SELECT * FROM (SELECT * FROM "ps"."deletions") AS s WHERE s."deletion_id" > $1 ORDER BY s."deletion_id" LIMIT 100',
      params: [5],
    });
  });

  it('refuses identifiers and queries that are not what they claim', () => {
    expect(() => pageQuery(dialect('postgres'), { ...stream, key: 'id; DROP TABLE x' }, null, 10)).toThrow(
      /not a plain table or column name/,
    );
    expect(() => baseSql(dialect('postgres'), { ...stream, table: undefined, query: 'DELETE FROM x' })).toThrow(/one SELECT/);
    expect(() => baseSql(dialect('postgres'), { ...stream, table: undefined, query: 'SELECT 1; DROP TABLE x' })).toThrow(
      /single statement/,
    );
    expect(baseSql(dialect('postgres'), { ...stream, table: undefined, query: 'WITH a AS (SELECT 1 AS id) SELECT * FROM a;' })).toBe(
      'WITH a AS (SELECT 1 AS id) SELECT * FROM a',
    );
  });
});
