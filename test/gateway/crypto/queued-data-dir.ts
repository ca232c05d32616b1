/**
 * A data folder as a practice would have it after an outage: N HL7 messages answered AA and
 * queued in the outbox (the cloud unreachable), the gateway stopped. The records it holds are read
 * back, unsealed with the folder's key, for tests to compare what survives a fault.
 */
import { DatabaseSync } from 'node:sqlite';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { adtA04, controlId } from '../../support/hl7-fixtures.ts';
import { freePort } from '../../support/net.ts';
import { startHarness } from '../../support/gateway-harness.ts';

export interface QueuedDataDir {
  dataDir: string;
  /** MSH-10 of every message answered AA. */
  acked: string[];
  /** Every queued row: record id → its canonical JSON text(s) (a bundle: one per record). */
  records: Map<string, string>;
  /** Queued rows (N when every message made one row). */
  rows: number;
  /** Each queued row's record ids, in queue order. */
  bundles: string[][];
  cloudKeys: ReturnType<typeof makeCloudKeys>;
}

/** Every queued row of a closed outbox, unsealed with `key`: record id → canonical JSON text. */
export function queuedRecords(outboxFile: string, key: Uint8Array): Map<string, string> {
  const sealer = createRecordSealer(key);
  const d = new DatabaseSync(outboxFile, { readOnly: true });
  const rows = d.prepare('SELECT id, payload, record_ids AS recordIds FROM outbox ORDER BY seq').all() as Array<{
    id: string;
    payload: Uint8Array;
    recordIds: string | null;
  }>;
  d.close();
  const out = new Map<string, string>();
  for (const r of rows) {
    const texts = sealer.open(r.id, r.payload).toString('utf8').split('\n');
    const ids = r.recordIds ? (JSON.parse(r.recordIds) as string[]) : [r.id];
    ids.forEach((id, i) => out.set(id, texts[i]));
  }
  return out;
}

/** Each queued row's record ids, in queue order. */
export function queuedBundles(outboxFile: string): string[][] {
  const d = new DatabaseSync(outboxFile, { readOnly: true });
  const rows = d.prepare('SELECT id, record_ids AS recordIds FROM outbox ORDER BY seq').all() as Array<{
    id: string;
    recordIds: string | null;
  }>;
  d.close();
  return rows.map((r) => (r.recordIds ? (JSON.parse(r.recordIds) as string[]) : [r.id]));
}

export function rowCount(outboxFile: string): number {
  const d = new DatabaseSync(outboxFile, { readOnly: true });
  try {
    return Number((d.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n);
  } finally {
    d.close();
  }
}

/** Builds the folder once (N messages over MLLP, every answer AA). */
export async function queuedDataDir(n: number, cloudKeys = makeCloudKeys()): Promise<QueuedDataDir> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ewml-queued-'));
  const closed = await freePort();
  const h = await startHarness(
    { relay: { sink: 'https' }, https: { url: `http://127.0.0.1:${closed}` }, cloud: { publicKey: cloudKeys.publicPem } },
    { dataDir, logLevel: 'warn' },
  );
  const acked: string[] = [];
  try {
    const c = await h.client();
    for (let i = 0; i < n; i++) {
      const id = controlId('Q');
      const ack = readAck(await c.send(adtA04({ id, mrn: `M${i}` }), 10_000));
      if (ack.code === 'AA') acked.push(id);
    }
  } finally {
    await h.stop();
  }
  const outboxFile = join(dataDir, 'outbox.db');
  return {
    dataDir,
    acked,
    records: queuedRecords(outboxFile, readFileSync(join(dataDir, 'keys', 'seal.key'))),
    rows: rowCount(outboxFile),
    bundles: queuedBundles(outboxFile),
    cloudKeys,
  };
}

/** A copy of the folder for one case. */
export function copyDataDir(src: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-case-'));
  cpSync(src, dir, { recursive: true });
  return dir;
}
