/**
 * Database source figures: first-load rows/s into the outbox beside a bare keyset walk of the same
 * table with the same driver (the reading floor), and the cost of an empty poll of every
 * Practice Studio stream beside the same number of `SELECT 1` round trips.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { validateConfig } from '../../config/load.ts';
import { createGateway } from '../../gateway/create-gateway.ts';
import { openSqlDriver } from '../../adapters/sql/sql-driver.ts';
import { pageQuery } from '../../adapters/sql/sql-query.ts';
import type { createSqlSource } from '../../adapters/sql/sql-source.ts';
import { startPostgres } from '../support/postgres.ts';
import { createPracticeStudio } from '../support/practice-studio-db.ts';

export interface DbBenchResult {
  rows: number;
  rawRate: number;
  loadRate: number;
  loadCpuShare: number;
  emptyPollMs: number;
  emptyPollCpuMs: number;
  selectOneMs: number;
  streams: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function dbBench(o: { rows: number }): Promise<DbBenchResult> {
  const pg = await startPostgres();
  try {
    const db = await createPracticeStudio(pg, 'postgres', { patients: 2000 });
    await pg.query(
      `INSERT INTO ps.charges (patient_id, service_date, cpt_code, amount_cents, quantity) SELECT n % 2000 + 1, DATE '2025-01-01' + (n % 300), '92014', 1000 + n % 5000, 1 FROM generate_series(1, ${o.rows}) AS g(n)`,
      [],
      'practice',
    );
    await pg.query('ANALYZE', [], 'practice');
    const total = Number(
      (
        (
          await pg.query(
            'SELECT (SELECT count(*) FROM ps.charges) + (SELECT count(*) FROM ps.patients) + (SELECT count(*) FROM ps.insurance) + (SELECT count(*) FROM ps.spectacle_rx) + (SELECT count(*) FROM ps.contact_lens_rx) + (SELECT count(*) FROM ps.exams) + (SELECT count(*) FROM ps.appointments) + (SELECT count(*) FROM ps.payments) + (SELECT count(*) FROM ps.frames) + (SELECT count(*) FROM ps.lenses) AS n',
            [],
            'practice',
          )
        ).rows[0] as { n: string }
      ).n,
    );

    // the floor: the same keyset walk, same driver and page size, rows thrown away
    const d = await openSqlDriver({ engine: 'postgres', port: pg.port, database: db.database, user: db.user, password: db.password });
    const src = { table: 'ps.charges', key: 'charge_id', watermark: { column: 'updated_at', kind: 'timestamp' as const } };
    let t0 = performance.now();
    let from: readonly [unknown, unknown] | null = null;
    let read = 0;
    for (;;) {
      const q = pageQuery(d, src, from, 1000);
      const rows = await d.query(q.sql, q.params);
      read += rows.length;
      if (rows.length < 1000) break;
      const last = rows[rows.length - 1];
      from = [last.updated_at, last.charge_id];
    }
    const rawRate = (read / (performance.now() - t0)) * 1000;
    const selectOne: number[] = [];
    for (let i = 0; i < 30; i++) {
      const s = performance.now();
      for (let k = 0; k < 11; k++) await d.query('SELECT 1');
      selectOne.push(performance.now() - s);
    }
    await d.close();

    // the gateway: first load of every stream into the outbox (file sink: nothing leaves the machine)
    const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-db-'));
    const v = validateConfig({
      gateway: { dataDir: dir },
      hl7: { enabled: false },
      admin: { enabled: false },
      databases: [
        {
          id: 'ps',
          engine: 'postgres',
          profile: 'practice-studio',
          port: pg.port,
          database: db.database,
          user: db.user,
          password: db.password,
          pageSize: 1000,
          pollIntervalMs: 3_600_000,
        },
      ],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const gw = await createGateway({ config: v.config, logger: pino({ level: 'warn' }) });
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    await gw.start();
    const source = gw.parts.adapters.find((a) => a.id === 'ps') as ReturnType<typeof createSqlSource>;
    const loaded = () => {
      const p = source.progress();
      return Object.keys(p).length === 11 && Object.values(p).every((s) => s.phase === 'incremental');
    };
    while (!loaded()) await new Promise((r) => setTimeout(r, 20));
    const loadMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const loadRate = (total / loadMs) * 1000;

    // empty polls: nothing changed, every stream asked once (after the relay has drained the outbox)
    while (gw.parts.outbox.stats().pending + gw.parts.outbox.stats().inFlight > 0) await new Promise((r) => setTimeout(r, 50));
    const polls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 30));
      const before = source.progress().deletions.lastPollAt ?? 0;
      const c0 = process.cpuUsage();
      const s = performance.now();
      source.pollNow();
      while ((source.progress().deletions.lastPollAt ?? 0) === before) await new Promise((r) => setImmediate(r));
      polls.push(performance.now() - s);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
    }
    await gw.stop();
    return {
      rows: total,
      rawRate,
      loadRate,
      loadCpuShare: (cpu.user + cpu.system) / 1000 / loadMs,
      emptyPollMs: median(polls),
      emptyPollCpuMs: median(cpus),
      selectOneMs: median(selectOne),
      streams: 11,
    };
  } finally {
    await pg.stop();
  }
}
