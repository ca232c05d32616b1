/**
 * `npm run demo`: the record path on one machine, no broker needed. Starts the reference cloud
 * (HTTP on 127.0.0.1), a gateway that relays to it over the HTTPS sink's wire format, sends the
 * example HL7 messages over MLLP, and prints what the cloud received after decrypting and
 * validating. All data is synthetic.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../config/load.ts';
import { createGateway } from '../../gateway/create-gateway.ts';
import { createLogger } from '../../gateway/logger.ts';
import { connectMllp, readAck, splitHl7Messages, type MllpListener } from '../../adapters/hl7v2/index.ts';
import { startHttpReferenceCloud } from './reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';

const root = new URL('../../', import.meta.url).pathname;
const say = (s: string) => process.stdout.write(`${s}\n`);

const keys = makeCloudKeys();
const cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
say(`reference cloud listening on ${cloud.url}`);
const v = validateConfig({
  gateway: { dataDir: mkdtempSync(join(tmpdir(), 'ewml-demo-')), id: 'gw-demo', tenantId: 'demo' },
  hl7: { port: 0 },
  admin: { enabled: false },
  relay: { sink: 'https' },
  https: { url: cloud.url },
  cloud: { publicKey: keys.publicPem },
});
if (!v.ok) throw new Error(JSON.stringify(v.problems));
const gw = await createGateway({ config: v.config, logger: createLogger({ level: 'warn' }) });
await gw.start();
const port = (gw.parts.adapters[0] as MllpListener).address()!.port;
say(`gateway listening for MLLP on 127.0.0.1:${port}, relaying to the cloud (JWE-encrypted batches)`);
const client = await connectMllp('127.0.0.1', port);
for (const f of ['adt-a04.hl7', 'siu-s12.hl7']) {
  for (const m of splitHl7Messages(readFileSync(join(root, 'examples', f), 'utf8'))) {
    const ack = readAck(await client.send(m));
    say(`sent examples/${f}: ACK ${ack.code} for ${ack.controlId}`);
  }
}
await client.close();
const until = Date.now() + 10_000;
while (cloud.store.records.size < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
say(`\nthe cloud received ${cloud.store.records.size} records in ${cloud.store.batches} batch(es), ${cloud.store.invalid.length} invalid:`);
for (const id of cloud.store.order) {
  const r = cloud.store.records.get(id)!;
  say(`  ${r.type.padEnd(12)} ${r.id}  from ${r.source.system} message ${r.source.messageId}`);
}
const appt = [...cloud.store.records.values()].find((r) => r.type === 'appointment');
if (appt) say(`\nthe appointment as the cloud sees it:\n${JSON.stringify(appt.data, null, 2)}`);
await gw.stop();
await cloud.stop();
