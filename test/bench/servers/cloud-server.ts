/** The reference cloud in its own process for the relay benchmark (in production the cloud is elsewhere). */
import { createPrivateKey } from 'node:crypto';
import { startMqttReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const [url, keyPem] = [process.argv[2], Buffer.from(process.argv[3], 'base64').toString()];
const cloud = await startMqttReferenceCloud({ url, privateKey: createPrivateKey(keyPem), clientId: `bench-cloud-${process.pid}` });
process.send?.('ready');
process.on('message', (m) => {
  if (m === 'count')
    process.send?.({ records: cloud.store.records.size, invalid: cloud.store.invalid.length, duplicates: cloud.store.duplicates });
  if (m === 'stop') void cloud.stop().then(() => process.exit(0));
});
