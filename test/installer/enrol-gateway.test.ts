/**
 * A whole gateway on the config `enrol --config` wrote (loaded by the real loader, `${file:}`
 * references resolved): it connects to a mosquitto that requires client certificates with its
 * device certificate, delivers an HL7 message to the cloud, and shows its identity in /status. A
 * config naming another gateway than the one enrolled is refused before anything starts.
 */
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMllp, readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { loadConfig } from '../../config/load.ts';
import { createGateway } from '../../gateway/create-gateway.ts';
import type { MllpListener } from '../../adapters/hl7v2/mllp-listener.ts';
import { readIdentity, renewAtOf } from '../../gateway/identity/index.ts';
import { createSilentLogger } from '../../gateway/logger.ts';
import { enrolGateway } from '../../installer/enrol.ts';
import { type EnrolmentWorld, startEnrolmentWorld } from '../support/enrolment-fixture.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { freePort, waitFor } from '../support/net.ts';
import type { CliIo } from '../../cli/command.ts';
import { runCommand } from '../../cli/index.ts';

const work = mkdtempSync(join(tmpdir(), 'ewml-enrol-gw-'));
let w: EnrolmentWorld;
beforeAll(async () => {
  w = await startEnrolmentWorld(work);
}, 60_000);
afterAll(() => w?.stop());

const runtime = { hl7: { port: 0 }, admin: { port: 0 }, relay: { idlePollMs: 50, backoffInitialMs: 20, backoffMaxMs: 200 } };

async function enrolInto(name: string, gatewayId: string) {
  const dir = join(work, name);
  mkdirSync(dir);
  const dataDir = join(dir, 'data');
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, `gateway:\n  dataDir: ${dataDir}\n  timezone: UTC\n`);
  await enrolGateway({
    code: w.enrolment.issueCode({ gatewayId, tenantId: 'acme-optical', practiceId: 'clinic-7' }),
    cloudUrl: w.https.url,
    caPem: w.cloudPki.ca,
    dataDir,
    configFile: config,
  });
  return { dataDir, config };
}

describe('a gateway started on the enrolled config', () => {
  it('connects with its device certificate, delivers an HL7 message, and reports its identity in /status', async () => {
    const { dataDir, config } = await enrolInto('gw-run', 'gw-run-1');
    // `status` reads admin.port from the file, so it goes there
    appendFileSync(config, `admin:\n  port: ${await freePort()}\n`);
    const { admin: _, ...rest } = runtime;
    const gw = await createGateway({ config: loadConfig({ file: config, overrides: rest }), logger: createSilentLogger() });
    await gw.start();
    try {
      const mllp = gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener;
      const c = await connectMllp('127.0.0.1', mllp.address()!.port);
      expect(readAck(await c.send(adtA04({ id: 'ENROL0001', mrn: 'MRN-E1' }))).code).toBe('AA');
      await c.close();
      await waitFor(() => [...w.receiver.store.records.values()].some((r) => r.gatewayId === 'gw-run-1'), 20_000, 'records in the cloud');
      const got = [...w.receiver.store.records.values()].filter((r) => r.gatewayId === 'gw-run-1');
      expect(new Set(got.map((r) => r.tenantId))).toEqual(new Set(['acme-optical']));
      expect(new Set(got.map((r) => r.practiceId))).toEqual(new Set(['clinic-7']));
      const id = readIdentity(dataDir);
      if (id.state !== 'present') throw new Error(id.state);
      const c0 = id.identity.certificate;
      const status = gw.status() as { sink: { kind: string; connected: boolean }; identity: Record<string, string> };
      expect(status.sink.kind).toBe('mqtt');
      expect(status.sink.connected).toBe(true);
      expect(status.identity).toEqual({
        state: 'valid',
        gatewayId: 'gw-run-1',
        tenantId: 'acme-optical',
        serial: c0.serial,
        notAfter: c0.notAfter,
        renewAt: new Date(renewAtOf(c0.notBefore, c0.notAfter)).toISOString(),
      });
      // and `eyewear-gateway status` says it in a line
      const out: string[] = [];
      const io: CliIo = {
        out: (t) => out.push(t),
        err: (t) => out.push(`ERR ${t}`),
        readFile: () => '',
        loadConfig: (f) => loadConfig({ file: f }),
      };
      expect(await runCommand(['status', '--config', config], io)).toBe(0);
      expect(
        out
          .join('\n')
          .split('\n')
          .filter((l) => l.startsWith('device certificate')),
      ).toEqual([
        `device certificate ${c0.serial}: valid until ${c0.notAfter}, renews from ${new Date(renewAtOf(c0.notBefore, c0.notAfter)).toISOString()}`,
      ]);
    } finally {
      await gw.stop();
    }
  });

  it('refuses to start when the config names another gateway than the one enrolled', async () => {
    const { config } = await enrolInto('gw-mismatch', 'gw-enrolled-9');
    const cfg = loadConfig({ file: config, overrides: { ...runtime, gateway: { id: 'gw-other' } } });
    await expect(createGateway({ config: cfg, logger: createSilentLogger() })).rejects.toMatchObject({
      code: 'GW_CONFIG_INVALID',
      message:
        'this data folder is enrolled as gateway gw-enrolled-9 of tenant acme-optical, but the config says gateway.id gw-other, gateway.tenantId acme-optical: set them to the enrolled ones (enrol --config FILE writes them)',
    });
  });
});
