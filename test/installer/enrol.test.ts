/**
 * Enrolment as a technician runs it (the real CLI against the reference cloud over TLS with a test
 * CA), the files it leaves, and the device identity at work: a real mosquitto requiring client
 * certificates admits the enrolled gateway and refuses one with no or a foreign certificate; the
 * certificate is renewed at 2/3 of its lifetime (driven by a manual clock, not by sleeping) and the
 * sink reconnects with it; a revoked certificate is a clear error in the status.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { createManualClock, systemClock } from '../../gateway/clock.ts';
import { createCloudEnvelope } from '../../gateway/crypto/cloud-envelope.ts';
import { ErrorCodes } from '../../gateway/errors.ts';
import { createEventBus } from '../../gateway/event-bus.ts';
import { createIdentityLink, deviceCertificateCheck, readIdentity, renewAtOf } from '../../gateway/identity/index.ts';
import { createSilentLogger } from '../../gateway/logger.ts';
import { createMqttSink } from '../../gateway/sinks/mqtt-sink.ts';
import { batchOf, type Sink } from '../../gateway/sinks/sink.ts';
import { enrolGateway } from '../../installer/enrol.ts';
import type { EnrolmentCloud } from '../reference-cloud/enrolment.ts';
import type { HttpReferenceCloud, MqttReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { type EnrolmentWorld, startEnrolmentWorld } from '../support/enrolment-fixture.ts';
import type { MtlsBroker } from '../support/mosquitto-tls.ts';
import { waitFor } from '../support/net.ts';
import type { TestPki } from '../support/tls.ts';

const root = join(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'ewml-enrol-'));
let payloadKeys: EnrolmentWorld['payloadKeys'];
let commandKeyPem: string;

let cloudPki: TestPki;
let enrolment: EnrolmentCloud;
let https: HttpReferenceCloud;
let broker: MtlsBroker;
let receiver: MqttReferenceCloud;
let caFile: string;

function run(args: string[], cwd = work): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], { cwd });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

/** A config in its own folder whose data folder is beside it. */
function newGatewayFolder(name: string): { dir: string; config: string; dataDir: string } {
  const dir = join(work, name);
  const dataDir = join(dir, 'data');
  const config = join(dir, 'gateway.yaml');
  return { dir, config, dataDir };
}

function writeConfig(f: { dir: string; config: string; dataDir: string }): void {
  mkdirSync(f.dir, { recursive: true });
  writeFileSync(f.config, `# the technician's config\ngateway:\n  dataDir: ${f.dataDir}\n  practiceId: clinic-1\n`, { mode: 0o640 });
}

const mode = (p: string) => statSync(p).mode & 0o777;

function patient(n: number, gatewayId: string): CanonicalRecord {
  return {
    id: deterministicId('enrol-test', gatewayId, String(n)),
    type: 'patient',
    schemaVersion: '1.0',
    op: 'upsert',
    tenantId: 'acme-optical',
    practiceId: 'clinic-1',
    gatewayId,
    source: { system: 'PMS@X', adapter: 'hl7v2', sourceId: `X|${n}` },
    occurredAt: '2026-11-25T10:00:00Z',
    observedAt: '2026-11-25T10:00:01Z',
    data: { identifiers: [{ system: 'X', value: String(n) }] },
  };
}

let w: EnrolmentWorld;
beforeAll(async () => {
  w = await startEnrolmentWorld(work);
  ({ payloadKeys, commandKeyPem, cloudPki, caFile, enrolment, https, broker, receiver } = w);
}, 60_000);

afterAll(() => w?.stop());

describe('eyewear-gateway enrol', () => {
  it('enrols over TLS with a one-time code: key made here (0600), certificate, broker CA, cloud keys, config pointed at them', async () => {
    const f = newGatewayFolder('gw-a');
    writeConfig(f);
    const code = enrolment.issueCode({ gatewayId: 'gw-acme-1', tenantId: 'acme-optical', practiceId: 'clinic-1' });
    const r = await run(['enrol', code, '--cloud', https.url, '--ca', caFile, '--config', f.config]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const issued = enrolment.issued.at(-1)!;
    expect(issued.gatewayId).toBe('gw-acme-1');
    expect(issued.route).toBe('enrol');
    const idDir = join(f.dataDir, 'identity');
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('enrolled: gateway gw-acme-1 of tenant acme-optical (practice clinic-1)');
    expect(lines[1]).toBe(
      `certificate: ${issued.serial}, CN=gw-acme-1, O=acme-optical, valid ${issued.notBefore} to ${issued.notAfter}; renews from ${new Date(renewAtOf(issued.notBefore, issued.notAfter)).toISOString()}`,
    );
    expect(lines[2]).toBe(`identity: ${idDir} (the device key was made here and stays here)`);
    expect(lines[3]).toBe(`broker: ${broker.url}`);
    expect(lines[4]).toBe(
      `config: ${f.config}: set gateway.id, gateway.tenantId, cloud.publicKey, cloud.commandPublicKey, mqtt.url, relay.sink`,
    );
    expect(lines[5]).toBe('next: restart the gateway; `eyewear-gateway doctor` checks the certificate and the connection');

    // the layout, and every file private to the service account
    expect(readdirSync(idDir).sort()).toEqual([
      'broker-ca.pem',
      'certs',
      'cloud-ca.pem',
      'cloud-command-key.pem',
      'cloud-payload-key.pem',
      'current.json',
      'enrolment.json',
    ]);
    expect(readdirSync(join(idDir, 'certs'))).toEqual([issued.serial]);
    expect(mode(idDir)).toBe(0o700);
    expect(mode(join(idDir, 'certs', issued.serial))).toBe(0o700);
    for (const file of [
      'broker-ca.pem',
      'cloud-ca.pem',
      'cloud-command-key.pem',
      'cloud-payload-key.pem',
      'current.json',
      'enrolment.json',
    ])
      expect(mode(join(idDir, file))).toBe(0o600);
    const keyFile = join(idDir, 'certs', issued.serial, 'device.key');
    expect(mode(keyFile)).toBe(0o600);
    expect(mode(join(idDir, 'certs', issued.serial, 'device.crt'))).toBe(0o600);

    // the certificate the cloud signed is for the key made here (P-256), and chains to the device CA
    const cert = new X509Certificate(readFileSync(join(idDir, 'certs', issued.serial, 'device.crt'), 'utf8'));
    const key = createPrivateKey(readFileSync(keyFile, 'utf8'));
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.verify(new X509Certificate(enrolment.deviceCaPem).publicKey)).toBe(true);
    expect(cert.toString()).toBe(new X509Certificate(issued.pem).toString());
    expect(readFileSync(join(idDir, 'broker-ca.pem'), 'utf8')).toBe(broker.brokerCaPem);
    expect(readFileSync(join(idDir, 'cloud-payload-key.pem'), 'utf8')).toBe(payloadKeys.publicPem);
    expect(readFileSync(join(idDir, 'cloud-command-key.pem'), 'utf8')).toBe(commandKeyPem);
    expect(readFileSync(join(idDir, 'cloud-ca.pem'), 'utf8')).toBe(cloudPki.ca);
    expect(JSON.parse(readFileSync(join(idDir, 'current.json'), 'utf8'))).toEqual({ active: issued.serial });
    const record = JSON.parse(readFileSync(join(idDir, 'enrolment.json'), 'utf8'));
    expect(record).toEqual({
      format: 1,
      gatewayId: 'gw-acme-1',
      tenantId: 'acme-optical',
      practiceId: 'clinic-1',
      cloudUrl: https.url,
      brokerUrl: broker.url,
      enrolledAt: record.enrolledAt,
      certificate: {
        serial: issued.serial,
        subject: 'CN=gw-acme-1, O=acme-optical',
        issuer: 'CN=ewml reference device CA, O=eyewear-ML reference cloud',
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        sha256: cert.fingerprint256,
      },
    });

    // the config: comments kept, the enrolled values set, keys by reference (no key text), mode kept
    const text = readFileSync(f.config, 'utf8');
    expect(text.startsWith("# the technician's config\n")).toBe(true);
    expect(parse(text)).toEqual({
      gateway: { dataDir: f.dataDir, practiceId: 'clinic-1', id: 'gw-acme-1', tenantId: 'acme-optical' },
      cloud: {
        publicKey: `\${file:${join(idDir, 'cloud-payload-key.pem')}}`,
        commandPublicKey: `\${file:${join(idDir, 'cloud-command-key.pem')}}`,
      },
      mqtt: { url: broker.url },
      relay: { sink: 'mqtt' },
    });
    expect(mode(f.config)).toBe(0o640);
  });

  it('refuses a wrong, a used and an expired code with GW_ENROLMENT_CODE_REFUSED and what to do; nothing is written', async () => {
    const action = `what to do: ${ErrorCodes.GW_ENROLMENT_CODE_REFUSED.action}`;
    const f = newGatewayFolder('gw-b');
    writeConfig(f);
    const wrong = await run(['enrol', 'AAAA-BBBB-CCCC', '--cloud', https.url, '--ca', caFile, '--config', f.config]);
    expect(wrong.code).toBe(1);
    expect(wrong.err.trim()).toBe(
      `error GW_ENROLMENT_CODE_REFUSED: the cloud does not know this enrolment code (mistyped, or for another cloud); ask the cloud team for a new one\n${action}`,
    );
    const code = enrolment.issueCode({ gatewayId: 'gw-b', tenantId: 'acme-optical' });
    const first = await run(['enrol', code, '--cloud', https.url, '--ca', caFile, '--config', f.config]);
    expect(first.code).toBe(0);
    const g = newGatewayFolder('gw-b2');
    writeConfig(g);
    const used = await run(['enrol', code, '--cloud', https.url, '--ca', caFile, '--config', g.config]);
    expect(used.code).toBe(1);
    expect(used.err.trim()).toBe(
      `error GW_ENROLMENT_CODE_REFUSED: this enrolment code was already used (a code works once); ask the cloud team for a new one\n${action}`,
    );
    const expired = enrolment.issueCode({ gatewayId: 'gw-b2', tenantId: 'acme-optical', ttlMs: 0 });
    const late = await run(['enrol', expired, '--cloud', https.url, '--ca', caFile, '--config', g.config]);
    expect(late.code).toBe(1);
    expect(late.err.trim()).toBe(
      `error GW_ENROLMENT_CODE_REFUSED: this enrolment code has expired; ask the cloud team for a new one\n${action}`,
    );
    expect(existsSync(join(g.dataDir, 'identity'))).toBe(false);
    expect(readFileSync(g.config, 'utf8')).toBe(`# the technician's config\ngateway:\n  dataDir: ${g.dataDir}\n  practiceId: clinic-1\n`);
    expect(enrolment.answers.filter((a) => a.startsWith('enrol:code_'))).toEqual([
      'enrol:code_unknown',
      'enrol:code_used',
      'enrol:code_expired',
    ]);
  });

  it("never turns verification off: without --ca the cloud's test certificate is refused with what to do", async () => {
    const f = newGatewayFolder('gw-c');
    writeConfig(f);
    const code = enrolment.issueCode({ gatewayId: 'gw-c', tenantId: 'acme-optical' });
    const r = await run(['enrol', code, '--cloud', https.url, '--config', f.config]);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe(
      `error GW_ENROLMENT_FAILED: the cloud's TLS certificate at ${new URL(https.url).host} is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): pass the CA that signed it with --ca FILE (verification is never turned off)`,
    );
    expect(existsSync(join(f.dataDir, 'identity'))).toBe(false);
    // the code was not spent: the request never reached the cloud
    const again = await run(['enrol', code, '--cloud', https.url, '--ca', caFile, '--config', f.config]);
    expect(again.err).toBe('');
    expect(again.code).toBe(0);
  });

  it('a second enrol refuses with GW_ALREADY_ENROLLED unless --force, which replaces the identity whole', async () => {
    const f = newGatewayFolder('gw-d');
    writeConfig(f);
    const c1 = enrolment.issueCode({ gatewayId: 'gw-d', tenantId: 'acme-optical' });
    expect((await run(['enrol', c1, '--cloud', https.url, '--ca', caFile, '--config', f.config])).code).toBe(0);
    const first = enrolment.issued.at(-1)!.serial;
    const c2 = enrolment.issueCode({ gatewayId: 'gw-d2', tenantId: 'acme-optical' });
    const refused = await run(['enrol', c2, '--cloud', https.url, '--ca', caFile, '--config', f.config]);
    expect(refused.code).toBe(1);
    const idDir = join(f.dataDir, 'identity');
    const cert1 = readIdentity(f.dataDir);
    if (cert1.state !== 'present') throw new Error(cert1.state);
    expect(refused.err.trim()).toBe(
      `error GW_ALREADY_ENROLLED: ${idDir} already holds gateway gw-d of tenant acme-optical (certificate ${first}, valid until ${cert1.identity.certificate.notAfter}); pass --force to replace it\nwhat to do: ${ErrorCodes.GW_ALREADY_ENROLLED.action}`,
    );
    // the refused call did not spend c2
    const forced = await run(['enrol', c2, '--cloud', https.url, '--ca', caFile, '--config', f.config, '--force']);
    expect(forced.code).toBe(0);
    const second = enrolment.issued.at(-1)!.serial;
    expect(second).not.toBe(first);
    expect(readdirSync(join(idDir, 'certs'))).toEqual([second]);
    expect(readdirSync(f.dataDir).sort()).toEqual(['identity']); // no staging folder left behind
    expect(parse(readFileSync(f.config, 'utf8')).gateway.id).toBe('gw-d2');
    expect(forced.out.split('\n')[4]).toBe(`config: ${f.config}: set gateway.id`);
  });
});

describe('enrol on an installed gateway, and its usage', () => {
  // only root can hand files over (CI runs as root)
  it.skipIf(process.getuid?.() !== 0)(
    'run as root on a data folder the service user owns, gives the identity to that user (the service reads and renews it)',
    async () => {
      const dataDir = mkdtempSync(join(work, 'gw-owned-'));
      chownSync(dataDir, 65534, 65534);
      await enrolGateway({
        code: enrolment.issueCode({ gatewayId: 'gw-owned', tenantId: 'acme-optical' }),
        cloudUrl: https.url,
        caPem: cloudPki.ca,
        dataDir,
      });
      const serial = enrolment.issued.at(-1)!.serial;
      const idDir = join(dataDir, 'identity');
      const paths = [
        idDir,
        join(idDir, 'certs'),
        join(idDir, 'certs', serial),
        join(idDir, 'certs', serial, 'device.key'),
        join(idDir, 'enrolment.json'),
      ];
      expect(paths.map((p) => `${statSync(p).uid}:${statSync(p).gid}`)).toEqual(paths.map(() => '65534:65534'));
    },
  );

  it('refuses a cloud URL that is not https, before any key is sent anywhere', async () => {
    const r = await run(['enrol', 'AAAA-BBBB-CCCC', '--cloud', 'http://127.0.0.1:9']);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe('error GW_ENROLMENT_FAILED: the cloud URL must be https:// (got http://127.0.0.1:9)');
  });

  it('without --cloud: a usage error saying what URL it needs (exit 2)', async () => {
    const r = await run(['enrol', 'AAAA-BBBB-CCCC']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('error: --cloud URL is required: the enrolment URL the cloud team sent with the code (https://…)');
  });
});

describe('doctor on the device certificate', () => {
  it('says pass with the serial and dates once enrolled, and not enrolled before, with what to do', async () => {
    const f = newGatewayFolder('gw-doc');
    writeConfig(f);
    const before = await run(['doctor', '--config', f.config]);
    const b = before.out.split('\n');
    const w = b.findIndex((l) => l.includes('device certificate:'));
    expect(b.slice(w, w + 2)).toEqual([
      `SKIP  device certificate: not enrolled: no device identity in ${join(f.dataDir, 'identity')} (relay.sink: file)`,
      '      what to do: ask the eyewear-ML cloud team for an enrolment code, then run `eyewear-gateway enrol CODE --cloud URL`',
    ]);
    const code = enrolment.issueCode({ gatewayId: 'gw-doc', tenantId: 'acme-optical' });
    expect((await run(['enrol', code, '--cloud', https.url, '--ca', caFile, '--config', f.config])).code).toBe(0);
    const c = enrolment.issued.at(-1)!;
    const renewAt = new Date(renewAtOf(c.notBefore, c.notAfter)).toISOString();
    const after = await run(['doctor', '--config', f.config]);
    const lines = after.out.split('\n');
    const at = lines.findIndex((l) => l.includes('device certificate:'));
    expect(lines[at]).toBe(
      `PASS  device certificate: gateway gw-doc (tenant acme-optical), certificate ${c.serial}, valid until ${c.notAfter}, renews from ${renewAt}`,
    );
    expect(lines[at + 1].startsWith('      what to do')).toBe(false);
  });
});

describe('the device identity at work (mTLS to mosquitto with require_certificate)', () => {
  const makeSink = (o: { gatewayId: string; identity?: Parameters<typeof createMqttSink>[0]['identity']; cert?: string; key?: string }) =>
    createMqttSink({
      url: broker.url,
      tenantId: 'acme-optical',
      gatewayId: o.gatewayId,
      ca: broker.brokerCaPem,
      ...(o.cert ? { cert: o.cert, key: o.key } : {}),
      rejectUnauthorized: true,
      sessionExpirySeconds: 600,
      keepaliveSeconds: 30,
      ackTimeoutMs: 5000,
      version: 'test',
      envelope: createCloudEnvelope(payloadKeys.publicPem),
      clock: systemClock,
      logger: createSilentLogger(),
      bus: createEventBus(),
      ...(o.identity ? { identity: o.identity } : {}),
    });

  async function enrolled(gatewayId: string, lifetimeMs?: number) {
    const dataDir = mkdtempSync(join(work, `${gatewayId}-`));
    const before = enrolment.certLifetimeMs;
    if (lifetimeMs) enrolment.certLifetimeMs = lifetimeMs;
    try {
      await enrolGateway({
        code: enrolment.issueCode({ gatewayId, tenantId: 'acme-optical' }),
        cloudUrl: https.url,
        caPem: cloudPki.ca,
        dataDir,
      });
    } finally {
      enrolment.certLifetimeMs = before;
    }
    const r = readIdentity(dataDir);
    if (r.state !== 'present') throw new Error(`identity ${r.state}`);
    return { dataDir, identity: r.identity };
  }

  async function stopSink(sink: Sink) {
    await sink.stop();
  }

  it('an enrolled gateway connects with its certificate and delivers; the cloud opens the batch', async () => {
    const { dataDir, identity } = await enrolled('gw-mtls-1');
    const link = createIdentityLink({ dataDir, identity, clock: systemClock, logger: createSilentLogger() });
    const sink = makeSink({ gatewayId: 'gw-mtls-1', identity: link });
    await sink.start();
    await waitFor(() => sink.health().connected, 10_000, 'connected with the device certificate');
    const records = [patient(1, 'gw-mtls-1'), patient(2, 'gw-mtls-1')];
    expect(await sink.deliver(batchOf('mtls-b1', records))).toEqual({ rejected: [] });
    expect(receiver.store.records.get(records[1].id)).toEqual(records[1]);
    const d = sink.health().detail!;
    expect(d.identityState).toBe('valid');
    expect(d.identitySerial).toBe(identity.certificate.serial);
    expect(d.lastError).toBeUndefined();
    await stopSink(sink);
  });

  it('no client certificate, or one from another CA, is refused by the broker with a clear error', async () => {
    for (const o of [{ gatewayId: 'gw-nocert' }, { gatewayId: 'gw-foreign', cert: broker.foreign.cert, key: broker.foreign.key }]) {
      const sink = makeSink(o);
      await sink.start();
      await waitFor(() => typeof sink.health().detail?.lastError === 'string', 10_000, `${o.gatewayId} refused`);
      const d = sink.health().detail!;
      expect(sink.health().connected).toBe(false);
      expect(String(d.lastError)).toMatch(/^ERR_SSL_/);
      expect(d.lastErrorAction).toBe(
        'the broker refused the connection for want of a valid client certificate: enrol this gateway (eyewear-gateway enrol CODE --cloud URL)',
      );
      await expect(sink.deliver(batchOf('x', [patient(9, o.gatewayId)]))).rejects.toMatchObject({ code: 'GW_SINK_UNREACHABLE' });
      await stopSink(sink);
    }
  });

  it('renews at 2/3 of the lifetime (manual clock), reconnects with the new certificate, confirms it and removes the old one', async () => {
    const { dataDir, identity } = await enrolled('gw-renew', 3_600_000);
    const oldSerial = identity.certificate.serial;
    const clock = createManualClock(Date.parse(identity.certificate.notBefore));
    const link = createIdentityLink({ dataDir, identity, clock, logger: createSilentLogger() });
    const sink = makeSink({ gatewayId: 'gw-renew', identity: link });
    await sink.start();
    await waitFor(() => sink.health().connected, 10_000, 'connected');
    const renewAt = renewAtOf(identity.certificate.notBefore, identity.certificate.notAfter);
    expect(renewAt - Date.parse(identity.certificate.notBefore)).toBe(2_400_000);
    const issuedBefore = enrolment.issued.length;
    clock.set(renewAt - 1);
    await link.idle();
    expect(enrolment.issued.length).toBe(issuedBefore);
    expect(link.status().state).toBe('valid');
    clock.set(renewAt);
    await link.idle();
    expect(enrolment.issued.length).toBe(issuedBefore + 1);
    const renewed = enrolment.issued.at(-1)!;
    expect(renewed.route).toBe('renew');
    expect(renewed.gatewayId).toBe('gw-renew');
    // the new one is written beside the old, which stays until a connection confirms the new
    await waitFor(
      () => link.status().state === 'valid' && link.status().serial === renewed.serial,
      15_000,
      'reconnected with the renewed certificate',
    );
    expect(sink.health().connected).toBe(true);
    const idDir = join(dataDir, 'identity');
    expect(JSON.parse(readFileSync(join(idDir, 'current.json'), 'utf8'))).toEqual({ active: renewed.serial });
    expect(readdirSync(join(idDir, 'certs'))).toEqual([renewed.serial]);
    expect(mode(join(idDir, 'certs', renewed.serial, 'device.key'))).toBe(0o600);
    const record = JSON.parse(readFileSync(join(idDir, 'enrolment.json'), 'utf8'));
    expect(record.certificate.serial).toBe(renewed.serial);
    expect(record.renewedAt).toBe(new Date(renewAt).toISOString());
    expect(renewed.serial).not.toBe(oldSerial);
    // a new key pair, not the old key re-certified
    const newKey = readFileSync(join(idDir, 'certs', renewed.serial, 'device.key'), 'utf8');
    expect(newKey).not.toBe(identity.keyPem);
    const records = [patient(3, 'gw-renew')];
    expect(await sink.deliver(batchOf('renew-b1', records))).toEqual({ rejected: [] });
    expect(receiver.store.records.get(records[0].id)).toEqual(records[0]);
    await stopSink(sink);
  });

  it('a revoked certificate: the renewal is refused and the status says GW_DEVICE_CERT_REVOKED and to re-enrol', async () => {
    const { dataDir, identity } = await enrolled('gw-revoked', 3_600_000);
    enrolment.revoke(identity.certificate.serial);
    const clock = createManualClock(Date.parse(identity.certificate.notBefore));
    const link = createIdentityLink({ dataDir, identity, clock, logger: createSilentLogger() });
    const sink = makeSink({ gatewayId: 'gw-revoked', identity: link });
    await sink.start();
    await waitFor(() => sink.health().connected, 10_000, 'connected');
    clock.set(renewAtOf(identity.certificate.notBefore, identity.certificate.notAfter));
    await link.idle();
    expect(enrolment.answers.at(-1)).toBe('renew:certificate_revoked');
    const d = sink.health().detail!;
    expect(d.identityState).toBe('revoked');
    expect(d.identityCode).toBe('GW_DEVICE_CERT_REVOKED');
    expect(d.identityProblem).toBe(
      `the device certificate ${identity.certificate.serial} is revoked: the cloud refused to renew the device certificate: it is revoked`,
    );
    expect(d.identityAction).toBe(ErrorCodes.GW_DEVICE_CERT_REVOKED.action);
    // no retry loop: a second renewal time passes without a call
    const calls = enrolment.answers.length;
    clock.advance(600_000);
    await link.idle();
    expect(enrolment.answers.length).toBe(calls);
    // doctor says the same, given the running gateway's view
    const check = deviceCertificateCheck({
      dataDir,
      now: clock.now(),
      runtime: { state: 'revoked', code: String(d.identityCode), problem: String(d.identityProblem), action: String(d.identityAction) },
    });
    expect(check.status).toBe('fail');
    expect(check.evidence).toBe(`GW_DEVICE_CERT_REVOKED: the running gateway reports ${d.identityProblem}`);
    expect(check.todo).toBe(ErrorCodes.GW_DEVICE_CERT_REVOKED.action);
    await stopSink(sink);
  });

  // last in this file: it restarts the shared broker
  it('revoked at the broker (its CRL): the connection is refused and the status says GW_DEVICE_CERT_REVOKED at once', async () => {
    const { dataDir, identity } = await enrolled('gw-crl');
    const link = createIdentityLink({ dataDir, identity, clock: systemClock, logger: createSilentLogger() });
    const sink = makeSink({ gatewayId: 'gw-crl', identity: link });
    await sink.start();
    await waitFor(() => sink.health().connected, 10_000, 'connected');
    enrolment.revoke(identity.certificate.serial);
    await broker.applyCrl(await enrolment.crlPem());
    await waitFor(() => sink.health().detail?.identityState === 'revoked', 15_000, 'revoked by the broker');
    const d = sink.health().detail!;
    expect(sink.health().connected).toBe(false);
    expect(d.lastError).toBe('ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED');
    expect(d.identityCode).toBe('GW_DEVICE_CERT_REVOKED');
    expect(d.identityProblem).toBe(
      `the broker refused the device certificate ${identity.certificate.serial} as revoked (ERR_SSL_SSL/TLS_ALERT_CERTIFICATE_REVOKED)`,
    );
    expect(d.identityAction).toBe(ErrorCodes.GW_DEVICE_CERT_REVOKED.action);
    expect(d.lastErrorAction).toBe(
      "the broker refused this gateway's device certificate: check `eyewear-gateway doctor`; if it is expired or revoked, re-enrol (eyewear-gateway enrol CODE --cloud URL --force)",
    );
    await stopSink(sink);
    // another gateway's certificate is not on the list: the broker still admits it
    const { dataDir: d2, identity: id2 } = await enrolled('gw-crl-other');
    const ok = makeSink({
      gatewayId: 'gw-crl-other',
      identity: createIdentityLink({ dataDir: d2, identity: id2, clock: systemClock, logger: createSilentLogger() }),
    });
    await ok.start();
    await waitFor(() => ok.health().connected, 10_000, 'an unrevoked certificate connects');
    await stopSink(ok);
  });

  it('past notAfter with no renewal (cloud unreachable): GW_DEVICE_CERT_EXPIRED, and the failures before it are retried and shown', async () => {
    const { dataDir, identity } = await enrolled('gw-expired', 3_600_000);
    const clock = createManualClock(Date.parse(identity.certificate.notBefore));
    let calls = 0;
    const link = createIdentityLink({
      dataDir,
      identity,
      clock,
      logger: createSilentLogger(),
      renew: async () => {
        calls++;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    });
    link.start();
    const renewAt = renewAtOf(identity.certificate.notBefore, identity.certificate.notAfter);
    clock.set(renewAt);
    await link.idle();
    expect(calls).toBe(1);
    expect(link.status().state).toBe('valid');
    expect(link.status().lastRenewalError).toBe('Error: connect ECONNREFUSED');
    // retried 10 minutes later; the next retry would fall at notAfter itself, where it has expired instead
    clock.advance(600_000);
    await link.idle();
    expect(calls).toBe(2);
    expect(Date.parse(identity.certificate.notAfter) - clock.now()).toBe(600_000);
    clock.advance(600_000);
    await link.idle();
    expect(calls).toBe(2);
    const s = link.status();
    expect(s.state).toBe('expired');
    expect(s.code).toBe('GW_DEVICE_CERT_EXPIRED');
    expect(s.problem).toBe(`the device certificate ${identity.certificate.serial} expired at ${identity.certificate.notAfter}`);
    expect(s.action).toBe(ErrorCodes.GW_DEVICE_CERT_EXPIRED.action);
    expect(deviceCertificateCheck({ dataDir, now: clock.now() })).toEqual({
      name: 'device certificate',
      status: 'fail',
      evidence: `GW_DEVICE_CERT_EXPIRED: gateway gw-expired (tenant acme-optical), certificate ${identity.certificate.serial} expired at ${identity.certificate.notAfter}`,
      todo: ErrorCodes.GW_DEVICE_CERT_EXPIRED.action,
      data: {
        serial: identity.certificate.serial,
        notBefore: identity.certificate.notBefore,
        notAfter: identity.certificate.notAfter,
        renewAt: new Date(renewAt).toISOString(),
        dir: join(dataDir, 'identity'),
      },
    });
    await link.stop();
  });
});
