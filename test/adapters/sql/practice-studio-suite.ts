/**
 * Practice Studio on a real database server started by the test (PostgreSQL and MariaDB run the
 * same suite): first load, incremental changes, deletes from its deletion log, late commits inside
 * the overlap window, restart without resending, read-only sessions, progress in /status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { openSqlDriver } from '../../../adapters/sql/sql-driver.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { createPracticeStudio, seedCounts } from '../../support/practice-studio-db.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

/** What differs between engines. */
export interface EngineUnderTest {
  engine: 'postgres' | 'mariadb';
  start(): Promise<{
    port: number;
    admin: { user: string; password: string };
    query(sql: string, params?: unknown[], database?: string): Promise<unknown>;
    stop(): Promise<void>;
  }>;
  /** A transaction left open: `run` inside it, `commit` later. */
  openTransaction(
    server: { port: number; admin: { user: string; password: string } },
    database: string,
  ): Promise<{ run(sql: string): Promise<void>; commit(): Promise<void> }>;
  readOnlyError: RegExp;
  isolationQuery: string;
  isolationValue: string;
}

export function practiceStudioSuite(e: EngineUnderTest): void {
  const keys = makeCloudKeys();
  let pg: Awaited<ReturnType<EngineUnderTest['start']>>;
  let cloud: HttpReferenceCloud;
  let db: { database: string; user: string; password: string };
  const SIZE = { patients: 120 };
  const total = Object.values(seedCounts(SIZE)).reduce((a, b) => a + b, 0);

  function dbConfig() {
    return {
      id: 'ps',
      engine: e.engine,
      profile: 'practice-studio' as const,
      port: pg.port,
      database: db.database,
      user: db.user,
      password: db.password,
      pollIntervalMs: 100,
      overlapSeconds: 2,
      pageSize: 200,
    };
  }

  async function gateway(dataDir?: string): Promise<Harness> {
    return startHarness(
      {
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        databases: [dbConfig()] as never,
      },
      { dataDir, logLevel: 'info' },
    );
  }

  const records = () => [...cloud.store.records.values()];
  const bySource = (sourceId: string) => records().filter((r) => r.source.sourceId === sourceId);
  const q = async (sql: string, params?: unknown[]) => {
    const r = (await pg.query(sql, params, db.database)) as { rows?: unknown[] } | unknown[];
    return Array.isArray(r) ? r : r.rows!;
  };

  beforeAll(async () => {
    pg = await e.start();
    db = await createPracticeStudio(pg, e.engine, SIZE);
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  }, 120_000);

  afterAll(async () => {
    await cloud?.stop();
    await pg?.stop();
  });

  describe(`Practice Studio on ${e.engine}`, () => {
    let h: Harness;

    it('first-loads every table into canonical records, each valid, with progress in /status', async () => {
      h = await gateway();
      await waitFor(() => cloud.store.records.size >= total, 60_000, `${total} records`);
      expect(cloud.store.invalid).toEqual([]);
      expect(cloud.store.records.size).toBe(total);
      const counts = seedCounts(SIZE);
      const types: Record<string, number> = {};
      for (const r of records()) types[r.type] = (types[r.type] ?? 0) + 1;
      expect(types).toEqual({
        patient: counts.patients,
        coverage: counts.insurance,
        'spectacle-rx': counts.spectacle_rx,
        'contact-lens-rx': counts.contact_lens_rx,
        'eye-exam-observation': counts.exams,
        appointment: counts.appointments,
        charge: counts.charges,
        payment: counts.payments,
        'inventory-item': counts.frames + counts.lenses,
      });
      const p = bySource('patients/7')[0] as CanonicalRecord<Record<string, unknown>>;
      expect(p.source).toEqual({ system: 'PRACTICE-STUDIO', adapter: 'sql', sourceId: 'patients/7' });
      expect(p.data.identifiers).toEqual([
        { system: 'PS', value: '7', type: 'PI' },
        { system: 'PS-CHART', value: 'C100007', type: 'MR' },
      ]);
      expect(p.data.birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      const rx = bySource('spectacle_rx/3')[0] as CanonicalRecord<{
        right: { sphere: number; cylinder?: number; axis?: number };
        cylinderConvention: string;
        patient: { system: string };
      }>;
      const row = (await q('SELECT od_sphere, od_cylinder, od_axis FROM ps.spectacle_rx WHERE rx_id = 3'))[0] as {
        od_sphere: string;
        od_cylinder: string;
        od_axis: number;
      };
      expect(rx.data.right.sphere).toBe(Number(row.od_sphere));
      if (Number(row.od_cylinder) !== 0) expect(rx.data.right).toMatchObject({ cylinder: Number(row.od_cylinder), axis: row.od_axis });
      expect(rx.data.cylinderConvention).toBe('minus');
      const frame = records().find((r) => r.type === 'inventory-item' && r.source.sourceId === 'frames/2') as CanonicalRecord<
        Record<string, unknown>
      >;
      expect(frame.data).toMatchObject({
        sku: 'FRAME-2',
        kind: 'frame',
        collection: expect.any(String),
        eyeSize: expect.any(Number),
        bridge: expect.any(Number),
        temple: expect.any(Number),
      });
      const st = (await (
        await fetch(`http://127.0.0.1:${h.adminPort}/status`, { headers: { authorization: `Bearer ${h.gw.parts.token}` } })
      ).json()) as { adapters: Record<string, { status: string; detail: Record<string, unknown> }> };
      expect(st.adapters.ps.status).toBe('up');
      expect(st.adapters.ps.detail['patients.rowsDone']).toBe(SIZE.patients);
      expect(st.adapters.ps.detail['patients.rowsTotal']).toBe(SIZE.patients);
      expect(st.adapters.ps.detail['patients.phase']).toBe('incremental');
    }, 90_000);

    it('sends a changed row as a new version, a deleted row as a delete, and a row committed late inside the overlap', async () => {
      const before = cloud.store.records.size;
      await q("UPDATE ps.patients SET last_name = 'Renamed' WHERE patient_id = 7");
      await q('DELETE FROM ps.appointments WHERE appt_id = 5');
      // a transaction that takes its updated_at, then commits only after a later row was read: its
      // row lies behind the gateway's position when it becomes visible (caught by the overlap)
      const late = await e.openTransaction(pg, db.database);
      await late.run(
        "INSERT INTO ps.charges (patient_id, service_date, cpt_code, amount_cents) VALUES (1, DATE '2025-03-01', '92015', 4500)",
      );
      await q("INSERT INTO ps.charges (patient_id, service_date, cpt_code, amount_cents) VALUES (2, DATE '2025-03-01', '92012', 4000)");
      await waitFor(
        () => records().some((r) => r.type === 'charge' && (r.data as { code: { code: string } }).code.code === '92012'),
        20_000,
        'the later row',
      );
      await late.commit();
      await waitFor(() => bySource('patients/7').length === 2, 20_000, 'the changed patient');
      await waitFor(() => bySource('appointments/5').some((r) => r.op === 'delete'), 20_000, 'the delete');
      await waitFor(
        () => records().some((r) => r.type === 'charge' && (r.data as { code: { code: string } }).code.code === '92015'),
        20_000,
        'the late row',
      );
      const versions = bySource('patients/7').map((r) => (r.data as { name: { family: string } }).name.family);
      expect(versions).toContain('Renamed');
      const del = bySource('appointments/5').find((r) => r.op === 'delete')!;
      expect(del.type).toBe('appointment');
      expect(del.data).toEqual({});
      await new Promise((r) => setTimeout(r, 3000)); // a few polls, past the overlap window: nothing more
      expect(cloud.store.records.size).toBe(before + 4);
      expect(cloud.store.duplicates).toBe(0);
    }, 40_000);

    it('resumes from its cursors after a restart without sending anything again', async () => {
      const dataDir = h.dataDir;
      await h.stop();
      const before = cloud.store.records.size;
      const batches = cloud.store.batches;
      h = await gateway(dataDir);
      await new Promise((r) => setTimeout(r, 1500));
      expect(cloud.store.records.size).toBe(before);
      expect(cloud.store.batches).toBe(batches);
      await q('UPDATE ps.frames SET quantity = quantity + 1 WHERE frame_id = 1');
      await waitFor(() => records().filter((r) => r.source.sourceId === 'frames/1').length === 2, 10_000, 'frame change');
      await h.stop();
    }, 30_000);

    it('reads in read-only sessions: the gateway cannot write to the PMS database', async () => {
      // as the superuser, so only the session settings stand between the gateway and a write
      const d = await openSqlDriver({
        engine: e.engine,
        port: pg.port,
        database: db.database,
        user: pg.admin.user,
        password: pg.admin.password,
      });
      try {
        await expect(d.query("UPDATE ps.patients SET last_name = 'x' WHERE patient_id = 1")).rejects.toThrow(e.readOnlyError);
        expect(String(Object.values((await d.query(e.isolationQuery))[0])[0])).toBe(e.isolationValue);
      } finally {
        await d.close();
      }
    });
  });
}
