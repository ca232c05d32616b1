/**
 * Rule 1 for a file source: a child gateway importing a 100,000-row CSV export is killed with
 * SIGKILL in the middle of the file, again and again. After the last restart the reference cloud
 * has every row exactly once (after its dedupe by record id) and none missing; the file ends in
 * processed/.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { newStore, startHttpReferenceCloud, type HttpReferenceCloud, type ReceivedStore } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { freePort, waitFor } from '../support/net.ts';
import { childGateway } from '../support/child-gateway.ts';

const ROWS = 100_000;
const KILLS = 6;

/** Record ids per row (source id): the cloud keeps the first copy of each id. */
class RowLedger extends Map<string, CanonicalRecord> {
  readonly idsByRow = new Map<string, Set<string>>();
  override set(id: string, rec: CanonicalRecord): this {
    super.set(id, { id } as CanonicalRecord);
    const s = this.idsByRow.get(rec.source.sourceId);
    if (s) s.add(id);
    else this.idsByRow.set(rec.source.sourceId, new Set([id]));
    return this;
  }
}

describe('crash safety of a file source', () => {
  const keys = makeCloudKeys();
  const ledger = new RowLedger();
  let cloud: HttpReferenceCloud;
  let adminPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'ewml-filecrash-'));
  const exportDir = join(dir, 'export');
  const config = join(dir, 'gateway.yaml');

  beforeAll(async () => {
    const store: ReceivedStore = { ...newStore(), records: ledger, order: { push: () => 0 } as unknown as string[] };
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey, store });
    adminPort = await freePort();
    mkdirSync(exportDir);
    writeFileSync(join(dir, 'pub.pem'), keys.publicPem);
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
        '  batchSize: 500',
        '  backoffInitialMs: 50',
        '  backoffMaxMs: 500',
        '  idlePollMs: 100',
        'https:',
        `  url: ${cloud.url}`,
        'cloud:',
        '  publicKey: ${file:pub.pem}',
        'files:',
        '  - id: export',
        `    dir: ${exportDir}`,
        '    profile: optical-csv',
        '    stableMs: 200',
        '    pageSize: 500',
        '',
      ].join('\n'),
    );
    // written elsewhere and moved in: the file appears whole, as a PMS export should
    const lines = ['patient_id,last_name,first_name,birth_date,sex,city,state,zip'];
    for (let i = 1; i <= ROWS; i++)
      lines.push(
        `P${i},Synth${i % 997},Test${i % 89},${String((i % 12) + 1).padStart(2, '0')}/${String((i % 28) + 1).padStart(2, '0')}/19${50 + (i % 50)},${i % 2 ? 'F' : 'M'},Testville,TX,7${String(i % 10000).padStart(4, '0')}`,
      );
    writeFileSync(join(dir, 'patients_full.csv'), lines.join('\n') + '\n');
  }, 60_000);
  afterAll(async () => {
    await gw.kill();
    await cloud?.stop();
  });

  const gw = childGateway(
    () => config,
    () => adminPort,
  );
  const startChild = () => gw.start();
  const killChild = () => gw.kill();

  it(`has every row of a ${ROWS.toLocaleString('en')}-row file exactly once after ${KILLS} kills mid-file`, {
    timeout: 300_000,
  }, async () => {
    const { renameSync } = await import('node:fs');
    renameSync(join(dir, 'patients_full.csv'), join(exportDir, 'patients_full.csv'));
    let midFile = 0;
    for (let k = 0; k < KILLS; k++) {
      await startChild();
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 700)));
      const done = existsSync(join(exportDir, 'processed', 'patients_full.csv'));
      await killChild();
      if (!done) midFile++;
      console.log(`kill ${k + 1}${done ? ' (file already done)' : ' (mid-file)'}: cloud has ${ledger.idsByRow.size} rows`);
    }
    expect(midFile).toBeGreaterThanOrEqual(3); // most kills fell inside the file
    await startChild();
    await waitFor(
      () => ledger.idsByRow.size >= ROWS && existsSync(join(exportDir, 'processed', 'patients_full.csv')),
      240_000,
      'every row and the file processed',
    );
    await new Promise((r) => setTimeout(r, 1000));
    await killChild();
    let missing = 0;
    let twice = 0;
    for (let i = 1; i <= ROWS; i++) {
      const ids = ledger.idsByRow.get(`patients/P${i}`);
      if (!ids) missing++;
      else if (ids.size > 1) twice++;
    }
    expect(missing).toBe(0);
    expect(twice).toBe(0);
    expect(ledger.idsByRow.size).toBe(ROWS);
    expect(readdirSync(exportDir).filter((f) => f.endsWith('.csv'))).toEqual([]);
    console.log(`cloud: ${ledger.idsByRow.size} rows, each once; ${cloud.store.duplicates} redelivered copies dropped by id`);
  });
});
