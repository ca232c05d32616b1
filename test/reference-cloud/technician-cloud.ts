/**
 * `npm run cloud:reference`: a stand-in for the eyewear-ML cloud a technician can enrol a gateway
 * against on one machine, to rehearse an installation before the real cloud issues a code. It runs
 * what the enrolment tests run (test/support/enrolment-fixture.ts), but stays up and talks:
 *
 * - the enrolment endpoint over HTTPS (a throwaway CA, written to a file for `enrol --ca FILE`),
 * - a real mosquitto requiring client certificates from the cloud's device CA (mosquitto must be
 *   installed; as root the test helpers install it with apt-get),
 * - the cloud's receiver on that broker, printing each record it decrypts and validates.
 *
 * It prints a one-time enrolment code; press Enter for another, Ctrl-C to stop. Everything is
 * synthetic and in memory: stopping it forgets the codes, the device CA and the records.
 *
 *   npm run --silent cloud:reference -- [--port 8443] [--gateway gw-0001] [--tenant acme-optical]
 *                                       [--practice clinic-1] [--ca-out FILE]
 */
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { type EnrolmentWorld, startEnrolmentWorld } from '../support/enrolment-fixture.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8443' },
    gateway: { type: 'string', default: 'gw-0001' },
    tenant: { type: 'string', default: 'acme-optical' },
    practice: { type: 'string', default: 'clinic-1' },
    'ca-out': { type: 'string', default: 'reference-cloud-ca.pem' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`cloud:reference: --port must be a port number (0-65535), got ${values.port}\n`);
  process.exit(2);
}
const say = (s: string) => process.stdout.write(`${s}\n`);

// the same cloud the enrolment tests start (test/support/enrolment-fixture.ts), its CA where the technician asked
let world: EnrolmentWorld;
try {
  world = await startEnrolmentWorld(tmpdir(), { caFile: resolve(values['ca-out']), port });
} catch (e) {
  process.stderr.write(
    `cloud:reference: cannot start on 127.0.0.1:${port}: ${(e as Error).message}; pass --port with a free port (0: any)\n`,
  );
  process.exit(1);
}
const { enrolment, https, broker, receiver, caFile } = world;

const issue = () => enrolment.issueCode({ gatewayId: values.gateway, tenantId: values.tenant, practiceId: values.practice });
say(`reference cloud (a stand-in for the eyewear-ML cloud; synthetic, in memory)`);
say(`  enrolment endpoint  ${https.url}`);
say(`  its TLS CA          ${caFile}`);
say(`  broker (mTLS)       ${broker.url}`);
say(`  gateway / tenant    ${values.gateway} / ${values.tenant} (practice ${values.practice})`);
say(`enrolment code: ${issue()}   (one use, valid 1 hour; Enter: another code, Ctrl-C: stop)`);
say(`  eyewear-gateway enrol CODE --cloud ${https.url} --ca ${caFile} --config FILE`);
say('waiting for records...');

let shown = 0;
const timer = setInterval(() => {
  const { order, records, invalid } = receiver.store;
  for (; shown < order.length; shown++) {
    const r = records.get(order[shown]!)!;
    say(
      `cloud received ${r.type} ${r.id} from gateway ${r.gatewayId} (${r.source.adapter}, message ${r.source.messageId ?? r.source.sourceId})`,
    );
  }
  if (invalid.length) {
    for (const i of invalid.splice(0)) say(`cloud rejected ${i.id}: ${i.problems.join('; ')}`);
  }
}, 200);

const rl = createInterface({ input: process.stdin });
rl.on('line', () => say(`enrolment code: ${issue()}`));
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  rl.close();
  await world.stop();
  say(`stopped: ${receiver.store.order.length} record(s) received in ${receiver.store.batches} batch(es)`);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
