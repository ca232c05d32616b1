/**
 * Cloud commands end to end: the cloud signs an `hl7.send` command (Ed25519 JWS) and publishes it
 * on `down/commands` (real mosquitto); the gateway verifies it, queues the HL7 durably, sends it to
 * the PMS over MLLP (here: a second gateway's listener), and reports the outcome on `up/status`.
 * Unsigned, wrongly signed, expired, misaddressed and replayed commands are refused.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { startMosquitto, type Broker } from '../../support/mosquitto.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { siu } from '../../support/hl7-fixtures.ts';
import { waitFor } from '../../support/net.ts';

const keys = makeCloudKeys();
const commandKeys = generateKeyPairSync('ed25519');
const otherKeys = generateKeyPairSync('ed25519');

async function sign(payload: Record<string, unknown>, key: KeyObject = commandKeys.privateKey): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
}

describe('cloud commands', () => {
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let pms: Harness;
  let gw: Harness;
  let watcher: MqttClient;
  const outcomes: Array<{ commandId: string; status: string; detail: string }> = [];
  const now = () => Math.floor(Date.now() / 1000);
  const base = () => ({ type: 'hl7.send', gatewayId: 'gw-cmd', iat: now(), exp: now() + 600 });

  beforeAll(async () => {
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: keys.privateKey });
    pms = await startHarness({});
    gw = await startHarness({
      gateway: { id: 'gw-cmd', tenantId: 't-cmd' },
      relay: { sink: 'mqtt' },
      mqtt: { url: broker.url },
      cloud: { publicKey: keys.publicPem, commandPublicKey: commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      outbound: { enabled: true, port: pms.mllpPort, ackTimeoutMs: 2000 },
    });
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    watcher.on('message', (_t, p) => {
      const m = JSON.parse(p.toString()) as { type?: string; commandId: string; status: string; detail: string };
      if (m.type === 'command-outcome') outcomes.push(m);
    });
    await watcher.subscribeAsync('ewml/v1/t-cmd/gw-cmd/up/status', { qos: 1 });
    await waitFor(() => gw.gw.parts.sink.health().connected, 10_000, 'gateway connected');
  });
  afterAll(async () => {
    await watcher.endAsync();
    await gw.stop();
    await pms.stop();
    await cloud.stop();
    await broker.stop();
  });

  const publish = (jws: string) => cloud.client.publishAsync('ewml/v1/t-cmd/gw-cmd/down/commands', jws, { qos: 1 });
  const outcomesOf = (id: string) => outcomes.filter((o) => o.commandId === id).map((o) => o.status);

  it('verifies a signed hl7.send, queues it, sends it to the PMS and reports accepted then done', async () => {
    await publish(await sign({ ...base(), id: 'cmd-1', hl7: siu({ id: 'FROMCLOUD1', appt: 'C1' }) }));
    await waitFor(() => outcomesOf('cmd-1').includes('done'), 10_000, 'command done');
    expect(outcomesOf('cmd-1')).toEqual(['accepted', 'done']);
    // the PMS (a second gateway's listener) took the SIU
    expect((pms.gw.status() as { counts: { accepted: number } }).counts.accepted).toBeGreaterThanOrEqual(1);
  });

  it('builds an SIU from a canonical appointment (appointment.book) and the PMS maps it back', async () => {
    const appointment = {
      appointmentId: { system: 'EWML', value: 'CLOUD-A1' },
      patient: { system: 'CLINIC', value: 'MRN777' },
      status: 'booked',
      start: '2026-12-02T09:30:00-05:00',
      durationMinutes: 20,
      visitType: { code: 'CLFIT', display: 'Contact lens fitting' },
    };
    await publish(await sign({ ...base(), id: 'cmd-appt', type: 'appointment.book', appointment }));
    await waitFor(() => outcomesOf('cmd-appt').includes('done'), 10_000, 'appointment sent');
    expect(outcomesOf('cmd-appt')).toEqual(['accepted', 'done']);
    const counts = (pms.gw.status() as { counts: { enqueuedRecords: number } }).counts;
    expect(counts.enqueuedRecords).toBeGreaterThanOrEqual(2);
  });

  it('refuses an appointment command without the fields an SIU needs', async () => {
    await publish(
      await sign({ ...base(), id: 'cmd-bad-appt', type: 'appointment.book', appointment: { patient: { system: 'C', value: '1' } } }),
    );
    await waitFor(() => outcomesOf('cmd-bad-appt').length > 0, 10_000, 'outcome');
    expect(outcomes.find((o) => o.commandId === 'cmd-bad-appt')).toMatchObject({
      status: 'refused',
      detail: expect.stringContaining('appointment needs'),
    });
  });

  it.each([
    ['signed with another key', async () => sign({ ...base(), id: 'cmd-x1', hl7: siu() }, otherKeys.privateKey), 'signature'],
    ['expired', async () => sign({ ...base(), id: 'cmd-x2', iat: now() - 7200, exp: now() - 3600, hl7: siu() }), 'expired'],
    ['addressed to another gateway', async () => sign({ ...base(), id: 'cmd-x3', gatewayId: 'other', hl7: siu() }), 'another gateway'],
    ['of an unknown type', async () => sign({ ...base(), id: 'cmd-x4', type: 'format-disk' }), 'unknown command type'],
    ['not signed at all', async () => 'not-a-jws', 'signature'],
  ])('refuses a command %s and says why', async (_what, make, why) => {
    const before = outcomes.length;
    await publish(await make());
    await waitFor(() => outcomes.length > before, 10_000, 'an outcome');
    const o = outcomes[outcomes.length - 1];
    expect(o.status).toBe('refused');
    expect(o.detail).toContain(why);
  });

  it('refuses a replayed command id', async () => {
    const jws = await sign({ ...base(), id: 'cmd-2', hl7: siu({ id: 'FROMCLOUD2', appt: 'C2' }) });
    await publish(jws);
    await waitFor(() => outcomesOf('cmd-2').includes('done'), 10_000, 'first done');
    await publish(jws);
    await waitFor(() => outcomesOf('cmd-2').includes('refused'), 10_000, 'replay refused');
    expect(outcomes.filter((o) => o.commandId === 'cmd-2' && o.status === 'refused')[0].detail).toContain('replayed');
  });
});
