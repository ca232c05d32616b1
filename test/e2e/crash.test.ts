/**
 * Rule 1 under fire: a child gateway under steady MLLP load is killed with SIGKILL at random
 * moments and restarted, again and again. Every message it answered AA must reach the reference
 * cloud at least once — no gaps — however the kills fall. Run twice: two senders under the default
 * writer (their intakes overlap, so the writer thread commits them), and one sender with every
 * commit on the main thread (the path a lone sender takes under the default `auto` writer).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMllp, readAck, type MllpClient } from '../../adapters/hl7v2/mllp-client.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { adtA04, controlId } from '../support/hl7-fixtures.ts';
import { freePort, waitFor } from '../support/net.ts';
import { childGateway } from '../support/child-gateway.ts';

const SCENARIOS = [
  { name: 'two senders, writer thread (auto)', writer: 'auto', senders: 2, kills: 22 },
  { name: 'one sender, commits on the main thread', writer: 'inline', senders: 1, kills: 10 },
] as const;

describe.each(SCENARIOS)('crash safety: $name', ({ writer, senders, kills: KILLS }) => {
  const keys = makeCloudKeys();
  let cloud: HttpReferenceCloud;
  let port = 0;
  let config = '';
  const dir = mkdtempSync(join(tmpdir(), 'ewml-crash-'));

  beforeAll(async () => {
    cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
    port = await freePort();
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
        `  port: ${port}`,
        'admin:',
        '  enabled: false',
        'outbox:',
        `  writer: ${writer}`,
        'relay:',
        '  sink: https',
        '  batchSize: 100',
        '  backoffInitialMs: 50',
        '  backoffMaxMs: 500',
        '  idlePollMs: 100',
        'https:',
        `  url: ${cloud.url}`,
        'cloud:',
        '  publicKey: ${file:pub.pem}',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await gw.kill();
    await cloud.stop();
  });

  const gw = childGateway(
    () => config,
    () => port,
  );
  const startChild = () => gw.start();
  const killChild = () => gw.kill();

  it(`loses no acknowledged message across ${KILLS} SIGKILLs`, { timeout: 240_000 }, async () => {
    const acked: string[] = [];
    let sent = 0;
    for (let round = 0; round < KILLS; round++) {
      await startChild();
      let stop = false;
      const load = async () => {
        let c: MllpClient | undefined;
        try {
          c = await connectMllp('127.0.0.1', port);
          while (!stop) {
            const id = controlId(`K${round}-`);
            sent++;
            const ack = readAck(await c.send(adtA04({ id, mrn: `K${sent % 50}` }), 5000));
            if (ack.code === 'AA' && ack.controlId === id) acked.push(id);
          }
        } catch {
          /* the gateway died under us: whatever was not answered AA was not acknowledged */
        } finally {
          c?.socket.destroy();
        }
      };
      const loaders = Array.from({ length: senders }, () => load());
      await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 600)));
      await killChild();
      stop = true;
      await Promise.all(loaders);
    }
    await startChild();
    try {
      const delivered = () => new Set([...cloud.store.records.values()].filter((r) => r.type === 'patient').map((r) => r.source.messageId));
      await waitFor(
        () => {
          const d = delivered();
          return acked.every((id) => d.has(id));
        },
        60_000,
        'every acknowledged message at the cloud',
      );
      const d = delivered();
      const missing = acked.filter((id) => !d.has(id));
      expect(missing).toEqual([]);
      expect(acked.length).toBeGreaterThan(KILLS * 10);
      console.log(
        `crash test: ${KILLS} kills, ${sent} sent, ${acked.length} acknowledged AA, all delivered; ${cloud.store.duplicates} duplicate deliveries dropped by the cloud`,
      );
    } finally {
      await killChild();
    }
  });
});
