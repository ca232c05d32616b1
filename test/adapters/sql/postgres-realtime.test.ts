/**
 * PostgreSQL real time: NOTIFY triggers installed only with consent (the CLI shows the statements
 * and needs yes), a change read within a second while polling is an hour apart, removed cleanly.
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/load.ts';
import { runCommand, type CliIo } from '../../../cli/index.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startPostgres, type PgServer } from '../../support/postgres.ts';
import { createPracticeStudio } from '../../support/practice-studio-db.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();
let pg: PgServer;
let cloud: HttpReferenceCloud;
let db: { database: string; user: string; password: string };
let configFile: string;

function cli(opts: { answer?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    readFile: () => '',
    loadConfig: (f) => loadConfig({ file: f }),
    ...(opts.answer !== undefined ? { confirm: async () => opts.answer! } : {}),
  };
  return { io, out, err };
}

const triggers = async () =>
  Number(
    (
      (await pg.query("SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'ewml_notify_%'", [], 'practice')).rows[0] as {
        n: number;
      }
    ).n,
  );
const realtimeSchema = async () =>
  Number(
    (
      (await pg.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'ewml_realtime'", [], 'practice')).rows[0] as {
        n: number;
      }
    ).n,
  );

beforeAll(async () => {
  pg = await startPostgres();
  db = await createPracticeStudio(pg, 'postgres', { patients: 30 });
  cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  const dir = mkdtempSync(join(tmpdir(), 'ewml-rt-'));
  configFile = join(dir, 'gateway.yaml');
  writeFileSync(
    configFile,
    `databases:\n  - id: ps\n    engine: postgres\n    profile: practice-studio\n    port: ${pg.port}\n    database: ${db.database}\n    user: ${db.user}\n    password: \${env:EWML_TEST_DB_PW}\n`,
  );
  process.env.EWML_TEST_DB_PW = db.password;
  process.env.EWML_TEST_ADMIN_PW = pg.admin.password;
}, 60_000);

afterAll(async () => {
  await cloud?.stop();
  await pg?.stop();
});

describe('PostgreSQL real time (LISTEN/NOTIFY with consent)', () => {
  const base = () => [
    'db',
    'realtime',
    'install',
    '--config',
    configFile,
    '--database',
    'ps',
    '--admin-user',
    pg.admin.user,
    '--admin-password-env',
    'EWML_TEST_ADMIN_PW',
  ];

  it('creates nothing without an explicit yes', async () => {
    const noTerminal = cli();
    expect(await runCommand(base(), noTerminal.io)).toBe(2);
    expect(noTerminal.err.join('\n')).toMatch(/no consent given/);
    const saidNo = cli({ answer: 'no' });
    expect(await runCommand(base(), saidNo.io)).toBe(1);
    expect(saidNo.out.join('\n')).toContain('CREATE TRIGGER ewml_notify_ewml_ps AFTER INSERT OR UPDATE OR DELETE ON ps.patients');
    expect(await triggers()).toBe(0);
    expect(await realtimeSchema()).toBe(0);
  });

  it('once installed, a change reaches the cloud though the next poll is an hour away; remove leaves nothing behind', async () => {
    const yes = cli({ answer: 'yes' });
    expect(await runCommand(base(), yes.io)).toBe(0);
    expect(await triggers()).toBe(11);
    const status = cli();
    expect(
      await runCommand(
        [
          'db',
          'realtime',
          'status',
          '--config',
          configFile,
          '--database',
          'ps',
          '--admin-user',
          pg.admin.user,
          '--admin-password-env',
          'EWML_TEST_ADMIN_PW',
        ],
        status.io,
      ),
    ).toBe(0);
    expect(status.out.join('\n')).toContain('ps.appointments');

    const h = await startHarness(
      {
        hl7: { enabled: false },
        relay: { sink: 'https' },
        https: { url: cloud.url },
        cloud: { publicKey: keys.publicPem },
        databases: [
          {
            id: 'ps',
            engine: 'postgres',
            profile: 'practice-studio',
            port: pg.port,
            database: db.database,
            user: db.user,
            password: db.password,
            realtime: 'listen',
            pollIntervalMs: 3_600_000,
          },
        ] as never,
      },
      { logLevel: 'info' },
    );
    try {
      await waitFor(() => cloud.store.records.size >= 30, 20_000, 'first load');
      await waitFor(() => h.gw.parts.adapters[0].health().detail?.realtime === 'listen', 5000, 'listening');
      const t0 = Date.now();
      await pg.query("UPDATE ps.appointments SET status = 'ARRIVED' WHERE appt_id = 3", [], 'practice');
      await waitFor(
        () => [...cloud.store.records.values()].filter((r) => r.source.sourceId === 'appointments/3').length === 2,
        10_000,
        'the change, woken by NOTIFY',
      );
      // with polling an hour apart, only the notification can have brought it
      console.log(`change → cloud through NOTIFY: ${Date.now() - t0} ms`);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await h.stop();
    }

    const remove = cli();
    expect(
      await runCommand(
        [
          'db',
          'realtime',
          'remove',
          '--yes',
          '--config',
          configFile,
          '--database',
          'ps',
          '--admin-user',
          pg.admin.user,
          '--admin-password-env',
          'EWML_TEST_ADMIN_PW',
        ],
        remove.io,
      ),
    ).toBe(0);
    expect(await triggers()).toBe(0);
    expect(await realtimeSchema()).toBe(0);
    // Practice Studio's own triggers are untouched
    expect(
      Number(
        (
          (await pg.query("SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE '%_deleted'", [], 'practice')).rows[0] as {
            n: number;
          }
        ).n,
      ),
    ).toBe(10);
  }, 60_000);

  it("db check passes the Practice Studio schema and reports each stream's plan", async () => {
    const c = cli();
    expect(await runCommand(['db', 'check', '--config', configFile], c.io)).toBe(0);
    const text = c.out.join('\n');
    expect(text).toMatch(/patients\s+ok\s+30 rows; plan: /);
    expect(text).toContain('every stream is ready');
    expect(text).not.toMatch(/WARNING/);
  });
});
