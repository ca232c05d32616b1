/**
 * Enrolment with the eyewear-ML cloud (issue 16 point 5): a key pair made here, a certificate
 * request sent with the one-time code from the cloud team, and what the cloud answers (the device
 * certificate, the broker's CA, the cloud's payload and command keys, the gateway id and tenant)
 * stored in the data folder's device-identity folder (gateway/identity/identity-store.ts has the
 * layout). With a config file, its gateway id, tenant, cloud keys and broker URL are pointed at
 * what enrolment got, so the next start connects with mutual TLS.
 *
 * Nothing is replaced unless everything arrived and checked out: the new identity is built whole
 * beside the old and renamed into place, and the config is rewritten (atomically) only after that.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../gateway/crypto/key-file.ts';
import { GatewayError } from '../gateway/errors.ts';
import {
  createDeviceKeyRequest,
  DEVICE_REQUEST_NAME,
  endpointUrl,
  type EnrolmentRecord,
  identityDir,
  IdentityFiles,
  readIdentity,
  renewAtOf,
  requestEnrolment,
  writeEnrolment,
} from '../gateway/identity/index.ts';

export interface EnrolOptions {
  code: string;
  /** Base URL of the cloud's enrolment endpoint (https://…). */
  cloudUrl: string;
  /** The gateway's data folder (config gateway.dataDir, resolved). */
  dataDir: string;
  /** PEM of the CA the cloud's TLS certificate chains to, when not a public one. */
  caPem?: string;
  /** Replace an existing identity. */
  force?: boolean;
  /** A config file to point at the new identity (created when it does not exist). */
  configFile?: string;
  now?: () => number;
}

export interface EnrolOutcome {
  record: EnrolmentRecord;
  dir: string;
  renewAt: string;
  /** The config fields written, in order (empty without a config file). */
  configChanges: string[];
  /** The lines a config needs, for a technician without `--config`. */
  configLines: string[];
  /** Said when something will not work as the technician may expect (a client certificate in the config wins over the identity). */
  warnings: string[];
}

const CODE = /^[A-Za-z0-9][A-Za-z0-9-]{3,63}$/;

export async function enrolGateway(o: EnrolOptions): Promise<EnrolOutcome> {
  const now = o.now ?? Date.now;
  const code = o.code.trim();
  if (!CODE.test(code))
    throw new GatewayError(
      'GW_ENROLMENT_CODE_REFUSED',
      'that is not an enrolment code (4-64 letters, digits and dashes, as the cloud team sent it)',
    );
  endpointUrl(o.cloudUrl, '/v1/enrolment'); // an http:// or malformed URL is refused before anything else
  const dataDir = resolve(o.dataDir);
  const existing = readIdentity(dataDir);
  if (existing.state !== 'absent' && !o.force) {
    const what =
      existing.state === 'present'
        ? `gateway ${existing.identity.record.gatewayId} of tenant ${existing.identity.record.tenantId} (certificate ${existing.identity.certificate.serial}, valid until ${existing.identity.certificate.notAfter})`
        : `a damaged identity (${existing.problem})`;
    throw new GatewayError('GW_ALREADY_ENROLLED', `${existing.dir} already holds ${what}; pass --force to replace it`);
  }
  const { keyPem, csrPem } = await createDeviceKeyRequest(DEVICE_REQUEST_NAME);
  const answer = await requestEnrolment(o.cloudUrl, code, csrPem, { ca: o.caPem });
  const cert = new X509Certificate(answer.certificate);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem)))
    throw new GatewayError('GW_ENROLMENT_FAILED', "the certificate the cloud sent is not for this gateway's key; nothing was written", {
      retry: 'permanent',
    });
  if (cert.validToDate.getTime() <= now())
    throw new GatewayError(
      'GW_ENROLMENT_FAILED',
      `the certificate the cloud sent expired at ${cert.validToDate.toISOString()} (check this machine's clock); nothing was written`,
      { retry: 'permanent' },
    );
  const record = writeEnrolment(dataDir, {
    record: {
      gatewayId: answer.gatewayId,
      tenantId: answer.tenantId,
      ...(answer.practiceId ? { practiceId: answer.practiceId } : {}),
      cloudUrl: o.cloudUrl,
      ...(answer.brokerUrl ? { brokerUrl: answer.brokerUrl } : {}),
      enrolledAt: new Date(now()).toISOString(),
    },
    keyPem,
    certPem: answer.certificate,
    brokerCaPem: answer.brokerCa,
    ...(o.caPem ? { cloudCaPem: o.caPem } : {}),
    payloadKeyPem: answer.payloadKey,
    commandKeyPem: answer.commandKey,
  });
  const dir = identityDir(dataDir);
  handToDataFolderOwner(dataDir, dir);
  const settings = configSettings(record, dir);
  const warnings: string[] = [];
  const configChanges = o.configFile ? updateConfig(o.configFile, settings, warnings) : [];
  return {
    record,
    dir,
    renewAt: new Date(renewAtOf(record.certificate.notBefore, record.certificate.notAfter)).toISOString(),
    configChanges,
    configLines: settings.map(([path, value]) => `${path.join('.')}: ${value}`),
    warnings,
  };
}

type Setting = [path: string[], value: string];

/** What a config needs to run on this identity (public keys by `${file:…}`: no key text in the YAML). */
function configSettings(r: EnrolmentRecord, dir: string): Setting[] {
  const s: Setting[] = [
    [['gateway', 'id'], r.gatewayId],
    [['gateway', 'tenantId'], r.tenantId],
  ];
  if (r.practiceId) s.push([['gateway', 'practiceId'], r.practiceId]);
  s.push(
    [['cloud', 'publicKey'], `\${file:${join(dir, IdentityFiles.payloadKey)}}`],
    [['cloud', 'commandPublicKey'], `\${file:${join(dir, IdentityFiles.commandKey)}}`],
  );
  if (r.brokerUrl) s.push([['mqtt', 'url'], r.brokerUrl]);
  return s;
}

/**
 * Sets `settings` in the YAML file (comments and other fields kept), and `relay.sink: mqtt` where
 * it was the pre-enrolment `file` sink or unset. Written atomically, keeping the file's mode and
 * owner (the service account must still read it).
 */
function updateConfig(file: string, settings: Setting[], warnings: string[]): string[] {
  const exists = existsSync(file);
  const text = exists ? readFileSync(file, 'utf8') : '';
  const doc = parseDocument(text);
  if (doc.errors.length)
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `${file} is not valid YAML (${doc.errors[0].message}); the identity was written, the config was not`,
    );
  const changes: string[] = [];
  for (const [path, value] of settings) {
    if (doc.getIn(path) === value) continue;
    doc.setIn(path, value);
    changes.push(path.join('.'));
  }
  const sink = doc.getIn(['relay', 'sink']);
  if (sink === undefined || sink === 'file') {
    doc.setIn(['relay', 'sink'], 'mqtt');
    changes.push('relay.sink');
  } else if (sink !== 'mqtt') warnings.push(`relay.sink is ${String(sink)}: the device certificate is used by the mqtt sink only`);
  if (doc.getIn(['mqtt', 'cert']) !== undefined)
    warnings.push(
      'mqtt.cert is set in the config: it is used instead of the enrolled device certificate; remove mqtt.cert, mqtt.key and mqtt.ca to use the enrolment',
    );
  if (changes.length === 0) return changes;
  const st = exists ? statSync(file) : undefined;
  writeFileAtomic(file, Buffer.from(doc.toString(), 'utf8'));
  if (st) {
    chmodSync(file, st.mode & 0o777);
    if (process.getuid?.() === 0) chownSync(file, st.uid, st.gid);
  }
  return changes;
}

/**
 * Run as root on an installed gateway (whose data folder belongs to the service user), the identity
 * is given to that user too: the service must read its key, and rewrite the folder when it renews.
 */
function handToDataFolderOwner(dataDir: string, dir: string): void {
  if (process.getuid?.() !== 0) return;
  const owner = statSync(dataDir);
  if (owner.uid === 0) return;
  // never through a link: the folder belongs to the service user, who could put one there for root to follow
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink())
      throw new GatewayError(
        'GW_DEVICE_IDENTITY_DAMAGED',
        `${p} is a symbolic link; the identity folder holds none: remove it and enrol again`,
      );
    lchownSync(p, owner.uid, owner.gid);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
}
