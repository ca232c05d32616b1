/**
 * The identity folder's generations on real files: a renewal is pending beside the active one until
 * confirmed; a restart in between prefers the pending one; a half-written pending one, or one the
 * broker refused, falls back to the active; a damaged folder says which file and why.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createDeviceKeyRequest } from '../../../gateway/identity/device-key.ts';
import {
  confirmPending,
  discardPending,
  finishInterruptedEnrolment,
  readIdentity,
  stagePending,
  writeEnrolment,
} from '../../../gateway/identity/identity-store.ts';
import { createIdentityLink, openIdentityLink } from '../../../gateway/identity/index.ts';
import { createSilentLogger } from '../../../gateway/logger.ts';
import { createEnrolmentCloud, type EnrolmentCloud } from '../../reference-cloud/enrolment.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';

let ca: EnrolmentCloud;
const keys = makeCloudKeys();

/** A key and a certificate for it from the reference device CA (no network: its signer, called directly). */
async function generation(name: string) {
  return ca.issueServiceCertificate(name);
}

async function enrolled(): Promise<{ dataDir: string; first: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ewml-idstore-'));
  const g = await generation('gw-store');
  writeEnrolment(dataDir, {
    record: { gatewayId: 'gw-store', tenantId: 't1', cloudUrl: 'https://127.0.0.1:1', enrolledAt: '2026-12-01T00:00:00.000Z' },
    keyPem: g.keyPem,
    certPem: g.certPem,
    brokerCaPem: ca.deviceCaPem,
    payloadKeyPem: keys.publicPem,
    commandKeyPem: keys.publicPem,
  });
  return { dataDir, first: new X509Certificate(g.certPem).serialNumber.toUpperCase() };
}

beforeAll(async () => {
  ca = await createEnrolmentCloud({ brokerCaPem: '', payloadKeyPem: keys.publicPem, commandKeyPem: keys.publicPem });
});

describe('identity folder generations', () => {
  it('keeps the old generation beside a pending one, prefers the pending one after a restart, and confirms it', async () => {
    const { dataDir, first } = await enrolled();
    const g2 = await generation('gw-store');
    const second = stagePending(dataDir, g2.keyPem, g2.certPem).serial;
    const certs = join(dataDir, 'identity', 'certs');
    expect(readdirSync(certs).sort()).toEqual([first, second].sort());
    expect(JSON.parse(readFileSync(join(dataDir, 'identity', 'current.json'), 'utf8'))).toEqual({ active: first, pending: second });
    const r = readIdentity(dataDir);
    if (r.state !== 'present') throw new Error(r.state);
    expect([r.identity.generation, r.identity.pending, r.identity.active]).toEqual([second, true, first]);
    const fallback = readIdentity(dataDir, { preferPending: false });
    if (fallback.state !== 'present') throw new Error(fallback.state);
    expect([fallback.identity.generation, fallback.identity.pending]).toEqual([first, false]);
    expect(confirmPending(dataDir, new Date('2026-12-02T00:00:00Z'))).toBe(true);
    expect(readdirSync(certs)).toEqual([second]);
    const after = readIdentity(dataDir);
    if (after.state !== 'present') throw new Error(after.state);
    expect([after.identity.generation, after.identity.pending, after.identity.record.renewedAt]).toEqual([
      second,
      false,
      '2026-12-02T00:00:00.000Z',
    ]);
    expect(after.identity.record.certificate.serial).toBe(second);
    expect(confirmPending(dataDir, new Date())).toBe(false);
  });

  it('a pending generation half-written by a crash (no certificate) is passed over for the active one', async () => {
    const { dataDir, first } = await enrolled();
    const g2 = await generation('gw-store');
    const second = stagePending(dataDir, g2.keyPem, g2.certPem).serial;
    rmSync(join(dataDir, 'identity', 'certs', second, 'device.crt'));
    const r = readIdentity(dataDir);
    if (r.state !== 'present') throw new Error(r.state);
    expect([r.identity.generation, r.identity.pending]).toEqual([first, false]);
  });

  it('a renewed certificate the broker refuses is discarded and the link goes back to the old one', async () => {
    const { dataDir, first } = await enrolled();
    const g2 = await generation('gw-store');
    const second = stagePending(dataDir, g2.keyPem, g2.certPem).serial;
    const r = readIdentity(dataDir);
    if (r.state !== 'present') throw new Error(r.state);
    const link = createIdentityLink({ dataDir, identity: r.identity, clock: createManualClock(Date.now()), logger: createSilentLogger() });
    expect(link.status().state).toBe('pending');
    expect(link.status().serial).toBe(second);
    let changes = 0;
    link.onChange(() => changes++);
    link.refused('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
    expect(changes).toBe(1);
    expect(link.status()).toMatchObject({
      state: 'valid',
      serial: first,
      lastRenewalError: 'the broker refused the renewed certificate (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)',
    });
    expect(link.tls().cert).toBe(readFileSync(join(dataDir, 'identity', 'certs', first, 'device.crt'), 'utf8'));
    expect(readdirSync(join(dataDir, 'identity', 'certs'))).toEqual([first]);
    discardPending(dataDir); // nothing pending: no change
    expect(JSON.parse(readFileSync(join(dataDir, 'identity', 'current.json'), 'utf8'))).toEqual({ active: first });
    await link.stop();
  });

  it('a damaged folder names the file and why, and the gateway start refuses with GW_DEVICE_IDENTITY_DAMAGED', async () => {
    const { dataDir, first } = await enrolled();
    const keyFile = join(dataDir, 'identity', 'certs', first, 'device.key');
    const other = await createDeviceKeyRequest('other');
    writeFileSync(keyFile, other.keyPem);
    expect(readIdentity(dataDir)).toEqual({
      state: 'damaged',
      dir: join(dataDir, 'identity'),
      problem: `the device key in ${join(dataDir, 'identity', 'certs', first)} is not the key of its certificate`,
    });
    rmSync(keyFile);
    expect(readIdentity(dataDir)).toMatchObject({ state: 'damaged', problem: `the device key (${keyFile}) is missing` });
    expect(() => openIdentityLink({ dataDir, clock: createManualClock(), logger: createSilentLogger() })).toThrow(
      expect.objectContaining({ code: 'GW_DEVICE_IDENTITY_DAMAGED', message: `the device key (${keyFile}) is missing` }),
    );
    rmSync(join(dataDir, 'identity', 'current.json'));
    expect(readIdentity(dataDir)).toMatchObject({
      state: 'damaged',
      problem: `current.json is missing from ${join(dataDir, 'identity')}, which is not empty`,
    });
  });

  it('a renewal answered with a certificate for another key is a failed renewal: nothing stored, retried, the old one kept', async () => {
    const { dataDir, first } = await enrolled();
    const r = readIdentity(dataDir);
    if (r.state !== 'present') throw new Error(r.state);
    const stranger = await generation('gw-store'); // a real certificate from the same CA, for a key this gateway never made
    const clock = createManualClock(Date.parse(r.identity.certificate.notBefore));
    const link = createIdentityLink({
      dataDir,
      identity: r.identity,
      clock,
      logger: createSilentLogger(),
      renew: async () => stranger.certPem,
    });
    link.start();
    clock.set(Date.parse(r.identity.certificate.notAfter) - 60_000);
    await link.idle();
    expect(link.status()).toMatchObject({
      state: 'valid',
      serial: first,
      lastRenewalError: 'GW_ENROLMENT_FAILED: the renewed certificate is not for the new key; it was not stored',
    });
    expect(readdirSync(join(dataDir, 'identity', 'certs'))).toEqual([first]);
    expect(JSON.parse(readFileSync(join(dataDir, 'identity', 'current.json'), 'utf8'))).toEqual({ active: first });
    await link.stop();
  });

  it('a crash between the two renames of an enrolment: reported meanwhile, finished by the next start', async () => {
    const { dataDir, first } = await enrolled();
    const aside = join(dataDir, '.identity-0123456789ab.new');
    renameSync(join(dataDir, 'identity'), aside); // the new identity complete, not yet renamed in
    writeFileSync(join(dataDir, '.identity-ba9876543210.old'), ''); // and the old one set aside
    expect(readIdentity(dataDir)).toEqual({
      state: 'damaged',
      dir: join(dataDir, 'identity'),
      problem: `an enrolment was interrupted before ${aside} was renamed to ${join(dataDir, 'identity')}: start the gateway (or run enrol again) to finish it`,
    });
    const link = openIdentityLink({ dataDir, clock: createManualClock(), logger: createSilentLogger() });
    expect(link?.status().serial).toBe(first);
    // the start leaves what it does not know to be finished; the next enrol removes it
    expect(readdirSync(dataDir).sort()).toEqual(['.identity-ba9876543210.old', 'identity']);
    expect(finishInterruptedEnrolment(dataDir, { clean: true })).toBe(false);
    expect(readdirSync(dataDir)).toEqual(['identity']);
  });

  it('a folder never enrolled is absent, and the sink gets no identity', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ewml-idstore-'));
    expect(readIdentity(dataDir)).toEqual({ state: 'absent', dir: join(dataDir, 'identity') });
    expect(openIdentityLink({ dataDir, clock: createManualClock(), logger: createSilentLogger() })).toBeUndefined();
  });
});
