/**
 * Write-back on a real PostgreSQL server: a signed `db.write` command runs a configured statement
 * with its values bound (a value that looks like SQL is stored as text), as a user allowed only
 * that; unknown statements, missing values, disabled databases and replays are refused.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import pino from 'pino';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandProcessor, type CommandProcessor } from '../../../gateway/commands/command-processor.ts';
import { createCommandVerifier } from '../../../gateway/commands/command-verifier.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { createWriteBack, type WriteBack } from '../../../adapters/sql/write-back.ts';
import { waitFor } from '../../support/net.ts';
import { startPostgres, type PgServer } from '../../support/postgres.ts';
import { createPracticeStudio } from '../../support/practice-studio-db.ts';

const keys = generateKeyPairSync('ed25519');
let pg: PgServer;
let wb: WriteBack;
let processor: CommandProcessor;
const outcomes: Array<{ commandId: string; status: string; detail: string }> = [];
const now = () => Math.floor(Date.now() / 1000);

async function sign(payload: Record<string, unknown>, key: KeyObject = keys.privateKey): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify({ type: 'db.write', gatewayId: 'gw-wb', iat: now(), exp: now() + 600, ...payload })))
    .setProtectedHeader({ alg: 'EdDSA' })
    .sign(key);
}
const of = (id: string) => outcomes.filter((o) => o.commandId === id);
const order = async (no: string) =>
  (await pg.query('SELECT status, status_note FROM ps.lens_orders WHERE order_no = $1', [no], 'practice')).rows[0] as {
    status: string;
    status_note: string | null;
  };

beforeAll(async () => {
  pg = await startPostgres();
  await createPracticeStudio(pg, 'postgres', { patients: 5 });
  await pg.query(
    "INSERT INTO ps.lens_orders (order_no, patient_id, status) VALUES ('L-1', 1, 'ordered'), ('L-2', 2, 'ordered')",
    [],
    'practice',
  );
  // a user allowed exactly this: update two columns of the order table
  await pg.query(
    "CREATE ROLE ewml_writer LOGIN PASSWORD 'writer-pw'; GRANT USAGE ON SCHEMA ps TO ewml_writer; GRANT SELECT (order_no), UPDATE (status, status_note) ON ps.lens_orders TO ewml_writer",
    [],
    'practice',
  );
  wb = createWriteBack({
    connection: { engine: 'postgres', port: pg.port, database: 'practice', user: 'ewml_writer', password: 'writer-pw' },
    statements: {
      'order.status': {
        sql: 'UPDATE ps.lens_orders SET status = $1, status_note = $2 WHERE order_no = $3',
        params: ['status', 'note', 'orderNo'],
      },
    },
  });
  const bus = createEventBus(() => undefined);
  bus.on('command.outcome', (e) => outcomes.push(e));
  const outbox = createMemoryOutbox({ maxBytes: 10_000_000, clock: systemClock });
  await outbox.open();
  processor = createCommandProcessor({
    verifier: createCommandVerifier({
      publicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      gatewayId: 'gw-wb',
      now: () => Date.now(),
    }),
    direct: {
      outbox,
      sealer: createRecordSealer(randomBytes(32)),
      writeBackFor: (id) => (id === 'ps' ? wb : undefined),
      fileWriterFor: () => undefined,
      attempts: 2,
      retryDelayMs: 10,
    },
    bus,
    logger: pino({ level: 'silent' }),
    now: () => Date.now(),
  });
}, 60_000);

afterAll(async () => {
  await wb?.close();
  await pg?.stop();
});

describe('database write-back', () => {
  it('runs the configured statement with the values bound, and reports accepted then done', async () => {
    const r = await processor.handle(
      await sign({
        id: 'wb-1',
        database: 'ps',
        statement: 'order.status',
        values: { status: 'shipped', note: "x'); DROP TABLE ps.patients; --", orderNo: 'L-1' },
      }),
    );
    expect(r.status).toBe('accepted');
    await waitFor(() => of('wb-1').some((o) => o.status === 'done'), 10_000, 'done');
    expect(of('wb-1').map((o) => o.status)).toEqual(['accepted', 'done']);
    expect(of('wb-1')[1].detail).toBe('order.status: 1 row(s) changed');
    expect(await order('L-1')).toEqual({ status: 'shipped', status_note: "x'); DROP TABLE ps.patients; --" });
    expect(Number(((await pg.query('SELECT count(*)::int AS n FROM ps.patients', [], 'practice')).rows[0] as { n: number }).n)).toBe(5);
    expect(await order('L-2')).toEqual({ status: 'ordered', status_note: null });
  });

  it('refuses a replayed id, an unknown statement, a missing or non-scalar value, and a database without write-back', async () => {
    expect(
      (
        await processor.handle(
          await sign({ id: 'wb-1', database: 'ps', statement: 'order.status', values: { status: 'lost', note: null, orderNo: 'L-1' } }),
        )
      ).detail,
    ).toBe('replayed command id');
    await processor.handle(await sign({ id: 'wb-2', database: 'ps', statement: 'DELETE FROM ps.patients', values: {} }));
    await processor.handle(
      await sign({ id: 'wb-3', database: 'ps', statement: 'order.status', values: { status: 'shipped', orderNo: 'L-2' } }),
    );
    await processor.handle(
      await sign({ id: 'wb-4', database: 'ps', statement: 'order.status', values: { status: { $ne: 1 }, note: null, orderNo: 'L-2' } }),
    );
    expect((await processor.handle(await sign({ id: 'wb-5', database: 'other', statement: 'order.status', values: {} }))).status).toBe(
      'refused',
    );
    await waitFor(() => ['wb-2', 'wb-3', 'wb-4'].every((id) => of(id).some((o) => o.status === 'failed')), 5000, 'three failures');
    expect(of('wb-2').at(-1)!.detail).toMatch(/no write-back statement "DELETE FROM ps.patients"/);
    expect(of('wb-3').at(-1)!.detail).toBe('value "note" is missing');
    expect(of('wb-4').at(-1)!.detail).toMatch(/must be text, a number/);
    expect(await order('L-1')).toMatchObject({ status: 'shipped' });
    expect(await order('L-2')).toEqual({ status: 'ordered', status_note: null });
  });

  it('reports failed when the database refuses the write (the user may not change other columns)', async () => {
    const narrow = createWriteBack({
      connection: { engine: 'postgres', port: pg.port, database: 'practice', user: 'ewml_writer', password: 'writer-pw' },
      statements: { bad: { sql: 'UPDATE ps.lens_orders SET patient_id = $1', params: ['p'] } },
    });
    try {
      await expect(narrow.run('bad', { p: 9 })).rejects.toThrow(/permission denied/);
    } finally {
      await narrow.close();
    }
  });
});
