/**
 * Rule 1 for a database source: a child gateway reading Practice Studio on PostgreSQL is killed
 * with SIGKILL during a 1,000,000-row first load and again during steady updates and deletes.
 * After the last restart the reference cloud holds every row's latest state and a delete for every
 * deleted row — none missing, whatever pages the kills cut through.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { newStore, startHttpReferenceCloud, type HttpReferenceCloud, type ReceivedStore } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { freePort, waitFor } from '../support/net.ts';
import { childGateway } from '../support/child-gateway.ts';
import { startPostgres, type PgServer } from '../support/postgres.ts';
import { createPracticeStudio } from '../support/practice-studio-db.ts';

const ROWS = 1_000_000;
const KILLS_IN_LOAD = 4;
const KILLS_IN_UPDATES = 4;

/**
 * What the cloud kept of each charge: the amounts (in cents) of every version it received, and
 * whether a delete came. A million full records would not fit a test's memory; this is what the
 * check needs.
 */
class ChargeLedger extends Map<string, CanonicalRecord> {
  readonly versions = new Map<string, number[]>();
  readonly deleted = new Set<string>();
  override set(id: string, rec: CanonicalRecord): this {
    super.set(id, { id } as CanonicalRecord);
    if (rec.type !== 'charge') return this;
    if (rec.op === 'delete') this.deleted.add(rec.source.sourceId);
    else {
      const v = this.versions.get(rec.source.sourceId);
      const cents = Math.round((rec.data as { amount: number }).amount * 100);
      if (v) v.push(cents);
      else this.versions.set(rec.source.sourceId, [cents]);
    }
    return this;
  }
}

describe('crash safety of a database source', () => {
  const keys = makeCloudKeys();
  let server: PgServer;
  let cloud: HttpReferenceCloud;
  const ledger = new ChargeLedger();
  let adminPort = 0;
  let config = '';
  const dir = mkdtempSync(join(tmpdir(), 'ewml-dbcrash-'));
  let db: { database: string; user: string; password: string };

  beforeAll(async () => {
    server = await startPostgres();
    db = await createPracticeStudio(server, 'postgres', { patients: 200 });
    const t0 = Date.now();
    await server.query(
      `INSERT INTO ps.charges (patient_id, service_date, cpt_code, amount_cents, quantity) SELECT n % 200 + 1, DATE '2025-01-01' + (n % 300), '92014', 1000 + n % 5000, 1 FROM generate_series(1, ${ROWS - 800}) AS g(n)`,
      [],
      'practice',
    );
    await server.query('ANALYZE ps.charges', [], 'practice');
    console.log(`seeded ${ROWS} charges in ${Date.now() - t0} ms`);
    const store: ReceivedStore = { ...newStore(), records: ledger, order: { push: () => 0 } as unknown as string[] };
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey, store });
    adminPort = await freePort();
    writeFileSync(join(dir, 'pub.pem'), keys.publicPem);
    config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      [
        'gateway:',
        `  dataDir: ${dir}/data`,
        '  timezone: UTC',
        'log:',
        '  level: warn',
        'hl7:',
        '  enabled: false',
        'admin:',
        `  port: ${adminPort}`,
        'relay:',
        '  sink: https',
        '  batchSize: 1000',
        '  backoffInitialMs: 50',
        '  backoffMaxMs: 500',
        '  idlePollMs: 100',
        'https:',
        `  url: ${cloud.url}`,
        'cloud:',
        '  publicKey: ${file:pub.pem}',
        'databases:',
        '  - id: ps',
        '    engine: postgres',
        '    profile: practice-studio',
        `    port: ${server.port}`,
        `    database: ${db.database}`,
        `    user: ${db.user}`,
        `    password: ${db.password}`,
        '    pageSize: 1000',
        '    pollIntervalMs: 200',
        '    overlapSeconds: 5',
        '',
      ].join('\n'),
    );
  }, 180_000);
  afterAll(async () => {
    await gw.kill();
    await cloud?.stop();
    await server?.stop();
  });

  const gw = childGateway(
    () => config,
    () => adminPort,
  );
  const startChild = () => gw.start();
  const killChild = () => gw.kill();
  const jitter = (min: number, span: number) => new Promise((r) => setTimeout(r, min + Math.floor(Math.random() * span)));

  it(`has every row's latest state after ${KILLS_IN_LOAD} kills in a ${ROWS.toLocaleString('en')}-row first load and ${KILLS_IN_UPDATES} during updates`, {
    // bounded: ~10 min on this 2-core machine alone (576 s measured 2026-12-03: a million records
    // sealed, sent over HTTPS and decrypted by the reference cloud, ~1,800 a second), more under load
    timeout: 1_200_000,
  }, async () => {
    for (let k = 0; k < KILLS_IN_LOAD; k++) {
      await startChild();
      await jitter(2000, 4000);
      await killChild();
      console.log(`kill ${k + 1} in the first load: cloud has ${ledger.versions.size} charges`);
    }
    expect(ledger.versions.size).toBeLessThan(ROWS); // the kills did fall inside the first load

    // steady updates and deletes from the "PMS" while the gateway is killed again and again
    const pms = new pg.Client({ ...server.admin, database: 'practice' });
    await pms.connect();
    let stop = false;
    let updates = 0;
    let deletes = 0;
    const writer = (async () => {
      while (!stop) {
        const id = 1 + Math.floor(Math.random() * ROWS);
        if (updates % 10 === 9) {
          await pms.query('DELETE FROM ps.charges WHERE charge_id = $1', [id]);
          deletes++;
        } else await pms.query('UPDATE ps.charges SET amount_cents = amount_cents + 1 WHERE charge_id = $1', [id]);
        updates++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    for (let k = 0; k < KILLS_IN_UPDATES; k++) {
      await startChild();
      await jitter(1500, 3000);
      await killChild();
    }
    stop = true;
    await writer;
    await pms.end();
    console.log(`${updates} updates and ${deletes} deletes written during ${KILLS_IN_UPDATES} kills`);

    await startChild();
    const expected = new Map<string, number>();
    const res = await server.query('SELECT charge_id, amount_cents FROM ps.charges', [], 'practice');
    for (const r of res.rows as Array<{ charge_id: string; amount_cents: number }>) expected.set(`charges/${r.charge_id}`, r.amount_cents);
    const goneRows = Number(
      (
        (await server.query('SELECT count(DISTINCT row_id)::int AS n FROM ps.deletions WHERE table_name = $1', ['charges'], 'practice'))
          .rows[0] as { n: number }
      ).n,
    );
    const missing = () => {
      let n = 0;
      for (const [sid, cents] of expected) if (!ledger.versions.get(sid)?.includes(cents)) n++;
      return n;
    };
    await waitFor(() => ledger.deleted.size >= goneRows && missing() === 0, 840_000, "every row's latest state");
    await killChild();
    expect(expected.size).toBe(ROWS - goneRows);
    expect(missing()).toBe(0);
    const deletedIds = (await server.query("SELECT DISTINCT row_id FROM ps.deletions WHERE table_name = 'charges'", [], 'practice'))
      .rows as Array<{ row_id: string }>;
    for (const d of deletedIds) expect(ledger.deleted.has(`charges/${d.row_id}`)).toBe(true);
    console.log(`cloud: ${ledger.versions.size} charges, ${ledger.deleted.size} deletes, ${cloud.store.duplicates} duplicates dropped`);
  });
});
