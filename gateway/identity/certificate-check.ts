/**
 * The device certificate as `doctor` reports it: enrolled or not, the certificate's dates, the key
 * matching it, and whether it is near or past its expiry. Read from the identity folder alone (no
 * network), so it answers the same with the gateway stopped.
 */
import { ErrorCodes } from '../errors.ts';
import { readIdentity } from './identity-store.ts';
import { renewAtOf } from './renewal.ts';

/** One doctor line (installer/doctor/check.ts `CheckResult`): the verdict, the evidence, what to do when not pass. */
export interface DeviceCertificateCheckResult {
  name: 'device certificate';
  status: 'pass' | 'skip' | 'warn' | 'fail';
  evidence: string;
  todo?: string;
  data?: Record<string, unknown>;
}

/** What a running gateway's `/status` says of its identity (status-report.ts `identity`). */
export interface RuntimeIdentity {
  state?: string;
  code?: string;
  problem?: string;
  action?: string;
  lastRenewalError?: string;
}

const NAME = 'device certificate';

/**
 * `relaySink`: the configured sink; with `file` an absent identity is not applicable (skip: a
 * practice set up before enrolment), with `mqtt` or `https` it fails (the broker requires a client
 * certificate) and without a config it warns.
 */
export function deviceCertificateCheck(o: {
  dataDir: string;
  now: number;
  relaySink?: string;
  /** The running gateway's view, when it answers: a revocation is known only there (the cloud refused its renewal). */
  runtime?: RuntimeIdentity;
}): DeviceCertificateCheckResult {
  const r = readIdentity(o.dataDir);
  if (r.state === 'absent')
    return {
      name: NAME,
      status: o.relaySink === 'file' ? 'skip' : o.relaySink === undefined ? 'warn' : 'fail',
      evidence: `not enrolled: no device identity in ${r.dir}${o.relaySink === 'file' ? ' (relay.sink: file)' : ''}`,
      todo: 'ask the eyewear-ML cloud team for an enrolment code, then run `eyewear-gateway enrol CODE --cloud URL`',
    };
  if (r.state === 'damaged')
    return {
      name: NAME,
      status: 'fail',
      evidence: `GW_DEVICE_IDENTITY_DAMAGED: ${r.problem}`,
      todo: ErrorCodes.GW_DEVICE_IDENTITY_DAMAGED.action,
    };
  const c = r.identity.certificate;
  const gw = `gateway ${r.identity.record.gatewayId} (tenant ${r.identity.record.tenantId}), certificate ${c.serial}`;
  const notAfter = Date.parse(c.notAfter);
  const renewAt = renewAtOf(c.notBefore, c.notAfter);
  const data = { serial: c.serial, notBefore: c.notBefore, notAfter: c.notAfter, renewAt: new Date(renewAt).toISOString(), dir: r.dir };
  const rt = o.runtime;
  if (rt?.code && (rt.state === 'revoked' || rt.state === 'expired' || rt.state === 'damaged'))
    return {
      name: NAME,
      status: 'fail',
      evidence: `${rt.code}: the running gateway reports ${rt.problem ?? rt.state}`,
      todo: rt.action ?? ErrorCodes.GW_DEVICE_CERT_REVOKED.action,
      data: { ...data, runtimeState: rt.state },
    };
  if (o.now >= notAfter)
    return {
      name: NAME,
      status: 'fail',
      data,
      evidence: `GW_DEVICE_CERT_EXPIRED: ${gw} expired at ${c.notAfter}`,
      todo: ErrorCodes.GW_DEVICE_CERT_EXPIRED.action,
    };
  if (o.now < Date.parse(c.notBefore))
    return {
      name: NAME,
      status: 'fail',
      data,
      evidence: `${gw} is not valid before ${c.notBefore}: this machine's clock is behind`,
      todo: "set this machine's clock right (NTP); the broker checks the certificate's dates",
    };
  if (o.now >= renewAt)
    return {
      name: NAME,
      status: 'warn',
      data: { ...data, ...(rt?.lastRenewalError ? { lastRenewalError: rt.lastRenewalError } : {}) },
      evidence: `${gw} is past its renewal time ${new Date(renewAt).toISOString()} and expires at ${c.notAfter}${r.identity.pending ? '; a renewed one waits to be confirmed by a connection' : ''}`,
      todo: 'start the gateway (it renews by itself) and check that it reaches the cloud; if it still fails, `eyewear-gateway status` shows the renewal error',
    };
  return {
    name: NAME,
    status: 'pass',
    data,
    evidence: `${gw}, valid until ${c.notAfter}, renews from ${new Date(renewAt).toISOString()}`,
  };
}
