/**
 * A recorded fault on a real PostgreSQL: someone holds an ACCESS EXCLUSIVE lock on the table a
 * stream reads (a PMS upgrade, a long maintenance job). The stream's query waits and is given up at the
 * read-only connection's lock_timeout (SQLSTATE 55P03), and the monitor names AGENT_HEALTH_SOURCE_FAILING with what
 * to look at; its restart does not heal it (the lock is not the gateway's); the finding clears once
 * the lock is released and a poll succeeds. The poller and the monitor run on the manual clock.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RemedyRecord } from '../../../agents/health/health-agent.ts';
import { startPostgres, type PgServer } from '../../support/postgres.ts';
import { createPracticeStudio } from '../../support/practice-studio-db.ts';
import { POLL_MS, startHealthRig, type HealthRig } from './health-gateway.ts';

let server: PgServer;
let db: { database: string; user: string; password: string };
let rig: HealthRig | undefined;
beforeAll(async () => {
  server = await startPostgres();
  // 2,000 patients: 10,000 exams, the size from which a sorting page query is named
  db = await createPracticeStudio(server, 'postgres', { patients: 2000 });
}, 60_000);
afterAll(async () => {
  await rig?.stop();
  await server?.stop();
});

/** The test server's Practice Studio database as a source of the gateway, read every second. */
const pmsEntry = (id: string) => ({
  id,
  engine: 'postgres',
  host: '127.0.0.1',
  port: server.port,
  database: db.database,
  user: db.user,
  password: db.password,
  profile: 'practice-studio',
  pollIntervalMs: 1000,
});

describe('health monitor: the database behind a stream', () => {
  it('names the cancelled query with what to look at, and clears once the lock is gone', async () => {
    rig = await startHealthRig({
      hl7: { enabled: false },
      // the default statementTimeoutMs (30 s): the read-only connection's lock_timeout (2 s) answers first, 55P03
      databases: [pmsEntry('ps')],
    });
    const health = () =>
      (rig!.gw.status() as { adapters: Record<string, { status: string; detail?: Record<string, unknown> }> }).adapters.ps;
    /** Steps the clock (polls and the source's sleeps) until `ok`, giving the real queries real time. */
    const stepUntil = async (ok: () => boolean, what: string) => {
      for (let i = 0; i < 100; i++) {
        if (ok()) return;
        await rig!.step(POLL_MS);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`never: ${what} (${JSON.stringify(health())})`);
    };
    await stepUntil(() => health().status === 'up' && health().detail?.state === 'incremental', 'the first load read');
    const accepted: number[] = [];
    rig.gw.parts.bus.on('intake.accepted', (e) => {
      if (e.adapter === 'ps') accepted.push(e.records);
    });

    const locker = new pg.Client({ ...server.admin, database: db.database });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE ps.patients IN ACCESS EXCLUSIVE MODE');
      // the job holding the lock changes a patient: the change must arrive once the lock is gone
      await locker.query("UPDATE ps.patients SET city = 'Lockton' WHERE patient_id = 1");
      await stepUntil(() => health().status === 'down' && health().detail?.error === '55P03', 'the query given up at the lock');
      for (let m = 0; m < 3; m++) await rig.step(POLL_MS);
      const failing = rig.findings.filter((f) => f.code === 'AGENT_HEALTH_SOURCE_FAILING');
      expect(failing.map((f) => [f.subject, f.severity])).toEqual([['ps', 'error']]);
      expect(failing[0].summary).toMatch(
        /^source ps is failing \(55P03\) since .+; restarting it now; what to do: a query waited on a lock or ran past its limit \(the read-only connection gives up on a lock after lock_timeout, 2 s, and on any query after databases\[\]\.statementTimeoutMs\): a lock held on a table the source reads, or a database too slow to answer; see who holds it \(PostgreSQL: pg_locks and pg_stat_activity; MariaDB: SHOW PROCESSLIST; SQL Server: sp_who2\)$/,
      );
      // while it lasts, the restart the monitor tried left the stream to be read, not given up
      expect(health().detail?.['patients.error']).toBeUndefined();
    } finally {
      await locker.query('COMMIT').catch(() => undefined);
      await locker.end();
    }
    expect(accepted).toEqual([]);
    await stepUntil(() => health().status === 'up' && accepted.length > 0, 'a poll that works again, with the change');
    // the one patient the locking job changed, read once
    expect(accepted).toEqual([1]);
    await rig.step(POLL_MS);
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_SOURCE_FAILING', subject: 'ps' }]);
    const remedies = (rig.gw.parts.agents.report('health') as { remedies: RemedyRecord[] }).remedies;
    expect(remedies.every((r) => r.subject === 'ps' && r.action === 'restartSource')).toBe(true);
  }, 120_000);

  it('names a stream whose watermark index was dropped, with the index to create, and clears once it is back', async () => {
    await rig?.stop();
    await server.query('DROP INDEX ps.exams_sync', [], db.database);
    await server.query('ANALYZE ps.exams', [], db.database);
    rig = await startHealthRig({
      hl7: { enabled: false },
      databases: [pmsEntry('ps2')],
    });
    const detail = () =>
      (rig!.gw.status() as { adapters: Record<string, { detail?: Record<string, unknown> }> }).adapters.ps2?.detail ?? {};
    // the source's health carries what its start found once its first round is read (real queries)
    for (let i = 0; i < 100 && detail()['exams.needsIndex'] === undefined; i++) {
      rig.clock.advance(1000);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(detail()['exams.needsIndex']).toBe('ps.exams (updated_at, exam_id), 10000 rows');
    await rig.step(POLL_MS);
    const finding = () => rig!.findings.filter((f) => f.code === 'AGENT_HEALTH_DB_INDEX_MISSING');
    expect(finding().map((f) => [f.subject, f.severity])).toEqual([['ps2/exams', 'warning']]);
    expect(finding()[0].summary).toBe(
      "stream exams of source ps2 sorts the whole table ps.exams (10000 rows) for every page it reads: the index on its watermark (updated_at, exam_id) is missing, dropped perhaps by a PMS upgrade; each poll loads the PMS's database: ask its administrator to create an index on ps.exams (updated_at, exam_id), then it is seen within the hour",
    );
    // the administrator creates it again: within the hour the source sees it and the finding clears
    await server.query('CREATE INDEX exams_sync ON ps.exams (updated_at, exam_id)', [], db.database);
    await server.query('ANALYZE ps.exams', [], db.database);
    for (let m = 0; m < 65 && rig.cleared.length === 0; m++) {
      await rig.step(POLL_MS);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(rig.cleared).toEqual([{ agent: 'health', code: 'AGENT_HEALTH_DB_INDEX_MISSING', subject: 'ps2/exams' }]);
  }, 120_000);
});
