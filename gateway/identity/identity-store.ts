/**
 * The device identity in the data folder: what enrolment got, and the certificate generations a
 * renewal moves through. Layout (every file 0600, folders 0700, each written through a temporary
 * file, fsync and rename — gateway/crypto/key-file.ts):
 *
 *   <dataDir>/identity/
 *     enrolment.json          what enrolment got: gateway id, tenant, the cloud's enrolment URL,
 *                             the broker URL, when, and the active certificate's serial and dates
 *     current.json            which generation is in use: {"active": SERIAL, "pending"?: SERIAL}
 *     broker-ca.pem           the CA the broker's server certificate chains to (trusted for MQTT)
 *     cloud-ca.pem            the CA of the enrolment endpoint's TLS, when enrol was given --ca
 *     cloud-payload-key.pem   the cloud's public key records are encrypted to (JWE; cloud.publicKey)
 *     cloud-command-key.pem   the cloud's Ed25519 command key (JWS; cloud.commandPublicKey)
 *     certs/SERIAL/device.key the device's private key (PKCS#8 PEM), made on this machine
 *     certs/SERIAL/device.crt its certificate, signed by the cloud's device CA
 *
 * `current.json` is the commit point. An enrolment is built whole in a hidden folder beside
 * `identity/` (`.identity-*.new`), the old one is renamed aside and the new one into place, so a
 * crash leaves the old identity or the new, never a mix; a crash between the two renames leaves a
 * complete `.new` and no `identity/`, which {@link finishInterruptedEnrolment} renames into place
 * (the gateway's start and the next enrol do it; `readIdentity` reports it meanwhile).
 * A renewal writes a new `certs/SERIAL/` and then `current.json` with it as `pending`: the old
 * generation stays until a connection with the new one succeeds (`confirmPending`), and a gateway
 * restarted in between tries the pending one first and falls back to the active one.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, writeFileAtomic } from '../crypto/key-file.ts';

export const IDENTITY_DIR = 'identity';

export const IdentityFiles = {
  record: 'enrolment.json',
  current: 'current.json',
  brokerCa: 'broker-ca.pem',
  cloudCa: 'cloud-ca.pem',
  payloadKey: 'cloud-payload-key.pem',
  commandKey: 'cloud-command-key.pem',
  certs: 'certs',
  key: 'device.key',
  cert: 'device.crt',
} as const;

/** A certificate as a person reads it: ids and dates, no key material. */
export interface CertificateSummary {
  /** Hex, upper case, as OpenSSL prints it. */
  serial: string;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  /** SHA-256 fingerprint, hex pairs with colons (`openssl x509 -fingerprint -sha256`). */
  sha256: string;
}

/** enrolment.json. */
export interface EnrolmentRecord {
  format: 1;
  gatewayId: string;
  tenantId: string;
  practiceId?: string;
  /** Base URL of the cloud's enrolment endpoint (renewals go to `<cloudUrl>/v1/enrolment/renew`). */
  cloudUrl: string;
  brokerUrl?: string;
  enrolledAt: string;
  renewedAt?: string;
  /** The active certificate. */
  certificate: CertificateSummary;
}

/** What enrolment brings home. */
export interface EnrolmentMaterial {
  record: Omit<EnrolmentRecord, 'format' | 'certificate'>;
  keyPem: string;
  certPem: string;
  brokerCaPem: string;
  cloudCaPem?: string;
  payloadKeyPem: string;
  commandKeyPem: string;
}

export interface DeviceIdentity {
  dir: string;
  record: EnrolmentRecord;
  /** The generation to connect with (the pending one when a renewal awaits confirmation). */
  generation: string;
  /** True when `generation` is a renewal not yet confirmed by a connection. */
  pending: boolean;
  /** The active generation (differs from `generation` only while pending). */
  active: string;
  keyPem: string;
  certPem: string;
  certificate: CertificateSummary;
  brokerCaPem: string;
  cloudCaPem?: string;
  payloadKeyPem: string;
  commandKeyPem: string;
}

export type IdentityState =
  | { state: 'absent'; dir: string }
  | { state: 'present'; dir: string; identity: DeviceIdentity }
  /** There, but not usable: which file and why (an errno code or a mismatch, never key bytes). */
  | { state: 'damaged'; dir: string; problem: string };

export const identityDir = (dataDir: string): string => join(dataDir, IDENTITY_DIR);

export function summarize(certPem: string): CertificateSummary {
  const c = new X509Certificate(certPem);
  return {
    serial: c.serialNumber.toUpperCase(),
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    notBefore: c.validFromDate.toISOString(),
    notAfter: c.validToDate.toISOString(),
    sha256: c.fingerprint256,
  };
}

class Damaged extends Error {}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new Damaged(`${what} (${file}) ${code === 'ENOENT' ? 'is missing' : `is not readable (${code})`}`);
  }
}

function readJson<T>(file: string, what: string): T {
  const text = readText(file, what);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Damaged(`${what} (${file}) is not JSON`);
  }
}

const SERIAL = /^[0-9A-F]{1,64}$/;

interface Pointer {
  active: string;
  pending?: string;
}

function readGeneration(dir: string, serial: string): { keyPem: string; certPem: string; certificate: CertificateSummary } {
  if (!SERIAL.test(serial)) throw new Damaged(`${IdentityFiles.current} names a generation that is not a serial number`);
  const g = join(dir, IdentityFiles.certs, serial);
  const keyPem = readText(join(g, IdentityFiles.key), 'the device key');
  const certPem = readText(join(g, IdentityFiles.cert), 'the device certificate');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new Damaged(`the device certificate (${join(g, IdentityFiles.cert)}) is not a PEM certificate`);
  }
  let matches = false;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    throw new Damaged(`the device key (${join(g, IdentityFiles.key)}) is not a PEM private key`);
  }
  if (!matches) throw new Damaged(`the device key in ${g} is not the key of its certificate`);
  return { keyPem, certPem, certificate: summarize(certPem) };
}

/**
 * Reads the identity. With `preferPending: false` the active generation is returned even when a
 * pending one exists (the fallback after the pending one was refused).
 */
export function readIdentity(dataDir: string, opts: { preferPending?: boolean } = {}): IdentityState {
  const dir = identityDir(dataDir);
  if (!existsSync(join(dir, IdentityFiles.current))) {
    const pending = completeNew(dataDir);
    if (!existsSync(dir) && pending)
      return {
        state: 'damaged',
        dir,
        problem: `an enrolment was interrupted before ${pending} was renamed to ${dir}: start the gateway (or run enrol again) to finish it`,
      };
    if (existsSync(dir) && readdirSync(dir).length > 0)
      return { state: 'damaged', dir, problem: `${IdentityFiles.current} is missing from ${dir}, which is not empty` };
    return { state: 'absent', dir };
  }
  try {
    const pointer = readJson<Pointer>(join(dir, IdentityFiles.current), 'the generation pointer');
    const record = readJson<EnrolmentRecord>(join(dir, IdentityFiles.record), 'the enrolment record');
    if (record.format !== 1 || typeof record.gatewayId !== 'string' || typeof record.cloudUrl !== 'string')
      throw new Damaged(`the enrolment record (${join(dir, IdentityFiles.record)}) is not format 1`);
    let generation = pointer.active;
    let pending = false;
    let material: ReturnType<typeof readGeneration> | undefined;
    if (pointer.pending && opts.preferPending !== false) {
      try {
        material = readGeneration(dir, pointer.pending);
        generation = pointer.pending;
        pending = true;
      } catch {
        material = undefined; // a pending generation half-written by a crash: the active one still works
      }
    }
    material ??= readGeneration(dir, pointer.active);
    const cloudCaFile = join(dir, IdentityFiles.cloudCa);
    return {
      state: 'present',
      dir,
      identity: {
        dir,
        record,
        generation,
        pending,
        active: pointer.active,
        ...material,
        brokerCaPem: readText(join(dir, IdentityFiles.brokerCa), "the broker's CA"),
        ...(existsSync(cloudCaFile) ? { cloudCaPem: readText(cloudCaFile, "the cloud's CA") } : {}),
        payloadKeyPem: readText(join(dir, IdentityFiles.payloadKey), "the cloud's payload key"),
        commandKeyPem: readText(join(dir, IdentityFiles.commandKey), "the cloud's command key"),
      },
    };
  } catch (e) {
    if (e instanceof Damaged) return { state: 'damaged', dir, problem: e.message };
    throw e;
  }
}

const write = (file: string, text: string) => writeFileAtomic(file, Buffer.from(text, 'utf8'));

const HIDDEN = new RegExp(`^\\.${IDENTITY_DIR}-[0-9a-f]{12}\\.(new|old)$`);

/** A `.identity-*.new` folder written to the end (it has its commit point), if any. */
function completeNew(dataDir: string): string | undefined {
  if (!existsSync(dataDir)) return undefined;
  const n = readdirSync(dataDir).find((e) => HIDDEN.test(e) && e.endsWith('.new') && existsSync(join(dataDir, e, IdentityFiles.current)));
  return n === undefined ? undefined : join(dataDir, n);
}

/**
 * Completes an enrolment a crash cut between its two renames (the old identity aside, the new not
 * yet in place); with `clean` (enrol itself, which knows no other enrol runs in this folder) also
 * removes the hidden folders an interrupted one leaves. True when it renamed.
 */
export function finishInterruptedEnrolment(dataDir: string, opts: { clean?: boolean } = {}): boolean {
  if (!existsSync(dataDir)) return false;
  const dir = identityDir(dataDir);
  let renamed = false;
  const ready = completeNew(dataDir);
  if (!existsSync(dir) && ready) {
    renameSync(ready, dir);
    fsyncDir(dataDir);
    renamed = true;
  }
  if (opts.clean) for (const e of readdirSync(dataDir)) if (HIDDEN.test(e)) rmSync(join(dataDir, e), { recursive: true, force: true });
  return renamed;
}

function writeGeneration(dir: string, keyPem: string, certPem: string): CertificateSummary {
  const certificate = summarize(certPem);
  const g = join(dir, IdentityFiles.certs, certificate.serial);
  write(join(g, IdentityFiles.key), keyPem);
  write(join(g, IdentityFiles.cert), certPem);
  fsyncDir(join(dir, IdentityFiles.certs));
  return certificate;
}

/**
 * Writes a whole new identity and puts it in place of any old one in one rename. The caller has
 * checked that replacing is wanted (enrol --force).
 */
export function writeEnrolment(dataDir: string, m: EnrolmentMaterial): EnrolmentRecord {
  finishInterruptedEnrolment(dataDir, { clean: true });
  const dir = identityDir(dataDir);
  const tmp = join(dataDir, `.${IDENTITY_DIR}-${randomBytes(6).toString('hex')}.new`);
  try {
    const certificate = writeGeneration(tmp, m.keyPem, m.certPem);
    write(join(tmp, IdentityFiles.brokerCa), m.brokerCaPem);
    if (m.cloudCaPem) write(join(tmp, IdentityFiles.cloudCa), m.cloudCaPem);
    write(join(tmp, IdentityFiles.payloadKey), m.payloadKeyPem);
    write(join(tmp, IdentityFiles.commandKey), m.commandKeyPem);
    const record: EnrolmentRecord = { format: 1, ...m.record, certificate };
    write(join(tmp, IdentityFiles.record), `${JSON.stringify(record, null, 2)}\n`);
    write(join(tmp, IdentityFiles.current), `${JSON.stringify({ active: certificate.serial } satisfies Pointer)}\n`);
    const old = join(dataDir, `.${IDENTITY_DIR}-${randomBytes(6).toString('hex')}.old`);
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
    fsyncDir(dataDir);
    rmSync(old, { recursive: true, force: true });
    return record;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Stores a renewed key and certificate as the pending generation; the active one stays. */
export function stagePending(dataDir: string, keyPem: string, certPem: string): CertificateSummary {
  const dir = identityDir(dataDir);
  const pointer = readJson<Pointer>(join(dir, IdentityFiles.current), 'the generation pointer');
  const certificate = writeGeneration(dir, keyPem, certPem);
  write(join(dir, IdentityFiles.current), `${JSON.stringify({ active: pointer.active, pending: certificate.serial } satisfies Pointer)}\n`);
  return certificate;
}

/**
 * A connection with the pending generation succeeded: it becomes the active one, the record says
 * so, and the generations no longer named are removed. Returns false when nothing was pending.
 */
export function confirmPending(dataDir: string, at: Date): boolean {
  const dir = identityDir(dataDir);
  const pointer = readJson<Pointer>(join(dir, IdentityFiles.current), 'the generation pointer');
  if (!pointer.pending) return false;
  const { certPem } = readGeneration(dir, pointer.pending);
  const record = readJson<EnrolmentRecord>(join(dir, IdentityFiles.record), 'the enrolment record');
  const next: EnrolmentRecord = { ...record, renewedAt: at.toISOString(), certificate: summarize(certPem) };
  write(join(dir, IdentityFiles.current), `${JSON.stringify({ active: pointer.pending } satisfies Pointer)}\n`);
  write(join(dir, IdentityFiles.record), `${JSON.stringify(next, null, 2)}\n`);
  for (const g of readdirSync(join(dir, IdentityFiles.certs)))
    if (g !== pointer.pending) rmSync(join(dir, IdentityFiles.certs, g), { recursive: true, force: true });
  fsyncDir(join(dir, IdentityFiles.certs));
  return true;
}

/** The pending generation was refused by the broker: forget it, keep the active one. */
export function discardPending(dataDir: string): void {
  const dir = identityDir(dataDir);
  const pointer = readJson<Pointer>(join(dir, IdentityFiles.current), 'the generation pointer');
  if (!pointer.pending) return;
  write(join(dir, IdentityFiles.current), `${JSON.stringify({ active: pointer.active } satisfies Pointer)}\n`);
  rmSync(join(dir, IdentityFiles.certs, pointer.pending), { recursive: true, force: true });
}
