/**
 * The running gateway's device identity: the TLS material the MQTT sink connects with, and its
 * renewal before expiry.
 *
 * States (`IdentityStatus.state`):
 *   valid     the certificate in use is within its dates; a renewal is scheduled at `renewAt`
 *             (RENEW_AT of its lifetime after notBefore)
 *   renewing  a renewal is under way (a new key pair and request, sent over mutual TLS with the
 *             current certificate to the enrolment endpoint's renew route)
 *   pending   a renewed certificate is stored as the pending generation and the sink reconnects
 *             with it; the first successful connection confirms it (it becomes the active one and
 *             the old one is removed), a refusal by the broker discards it and the old one is used
 *   expired   now is past the certificate's notAfter, or the cloud said so: GW_DEVICE_CERT_EXPIRED
 *   revoked   the cloud refused the renewal because it revoked the certificate, or the broker
 *             refused the connection with a certificate_revoked alert (its CRL): GW_DEVICE_CERT_REVOKED
 *   damaged   the identity folder could not be read back after a change: GW_DEVICE_IDENTITY_DAMAGED
 * expired, revoked and damaged are terminal for this process: only a new enrolment mends them, and
 * the status says so (code, problem, what to do). A renewal that fails for any other reason (cloud
 * unreachable) stays `valid` with `lastRenewalError` and is tried again every RETRY_MS until the
 * certificate expires.
 *
 * Time comes from the injected clock, so a test drives the schedule instead of sleeping.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.ts';
import { ErrorCodes, type ErrorCode, GatewayError, isGatewayError } from '../errors.ts';
import { createDeviceKeyRequest, DEVICE_REQUEST_NAME } from './device-key.ts';
import { requestRenewal } from './enrolment-client.ts';
import { confirmPending, type DeviceIdentity, discardPending, readIdentity, stagePending } from './identity-store.ts';

export const IdentityState = {
  valid: 'valid',
  renewing: 'renewing',
  pending: 'pending',
  expired: 'expired',
  revoked: 'revoked',
  damaged: 'damaged',
} as const;
export type IdentityState = (typeof IdentityState)[keyof typeof IdentityState];

export interface IdentityStatus {
  state: IdentityState;
  gatewayId: string;
  tenantId: string;
  serial: string;
  notAfter: string;
  renewAt: string;
  /** Set in the terminal states. */
  code?: ErrorCode;
  problem?: string;
  action?: string;
  /** The last renewal failure that will be retried (a code, and its message: no key material). */
  lastRenewalError?: string;
}

/** Renew when this fraction of the certificate's lifetime has passed. */
export const RENEW_AT = 2 / 3;
/** Wait between renewal tries after a failure that may pass (cloud unreachable). */
export const RETRY_MS = 10 * 60_000;
/** Longest single timer: a far renewal is re-checked daily (Node timers overflow past 2^31 ms). */
const MAX_TIMER_MS = 24 * 3600_000;

export type RenewFn = typeof requestRenewal;

export interface IdentityLinkOptions {
  dataDir: string;
  identity: DeviceIdentity;
  clock: Clock;
  logger: Logger;
  /** The renew call (default: the HTTPS one); tests may put a failing one in. */
  renew?: RenewFn;
}

/** What the MQTT sink asks of the identity. */
export interface DeviceIdentityLink {
  /** The TLS material to connect with now. */
  tls(): { ca: string; cert: string; key: string };
  /** Called when the material changed (renewed, or fallen back): reconnect with `tls()`. */
  onChange(cb: () => void): () => void;
  /** A connection with the current material succeeded (confirms a pending renewal). */
  connected(): void;
  /** The broker refused the TLS handshake with the current material (discards a pending renewal). */
  refused(reason: string): void;
  start(): void;
  stop(): Promise<void>;
  status(): IdentityStatus;
  /** Resolves when no renewal is under way (tests, shutdown). */
  idle(): Promise<void>;
}

export function renewAtOf(notBefore: string, notAfter: string): number {
  const from = Date.parse(notBefore);
  const to = Date.parse(notAfter);
  return from + Math.floor((to - from) * RENEW_AT);
}

export function createIdentityLink(o: IdentityLinkOptions): DeviceIdentityLink {
  const renew = o.renew ?? requestRenewal;
  let id = o.identity;
  let state: IdentityState = id.pending ? 'pending' : 'valid';
  let terminal: { code: ErrorCode; problem: string } | undefined;
  let lastRenewalError: string | undefined;
  let retryAt = 0;
  let timer: TimerHandle | undefined;
  let running = false;
  let inFlight: Promise<void> = Promise.resolve();
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const l of listeners) l();
  };

  const end = (s: IdentityState, code: ErrorCode, problem: string) => {
    state = s;
    terminal = { code, problem };
    o.logger.error({ code, serial: id.certificate.serial }, 'device identity: %s', problem);
  };

  const reload = (preferPending: boolean): boolean => {
    const r = readIdentity(o.dataDir, { preferPending });
    if (r.state !== 'present') {
      end('damaged', 'GW_DEVICE_IDENTITY_DAMAGED', r.state === 'damaged' ? r.problem : 'the identity folder disappeared');
      return false;
    }
    id = r.identity;
    return true;
  };

  function schedule(): void {
    o.clock.clearTimeout(timer);
    timer = undefined;
    if (!running || terminal) return;
    const now = o.clock.now();
    const notAfter = Date.parse(id.certificate.notAfter);
    if (now >= notAfter) {
      end('expired', 'GW_DEVICE_CERT_EXPIRED', `the device certificate ${id.certificate.serial} expired at ${id.certificate.notAfter}`);
      return;
    }
    if (state === 'pending' || state === 'renewing') return;
    const due = Math.max(renewAtOf(id.certificate.notBefore, id.certificate.notAfter), retryAt);
    if (now >= due) {
      inFlight = renewNow();
      return;
    }
    timer = o.clock.setTimeout(schedule, Math.min(Math.min(due, notAfter) - now, MAX_TIMER_MS), { unref: true });
  }

  async function renewNow(): Promise<void> {
    state = 'renewing';
    const serial = id.certificate.serial;
    o.logger.info({ serial, notAfter: id.certificate.notAfter }, 'device certificate: renewing');
    try {
      const { keyPem, csrPem } = await createDeviceKeyRequest(DEVICE_REQUEST_NAME);
      const certPem = await renew(id.record.cloudUrl, csrPem, { ca: id.cloudCaPem, cert: id.certPem, key: id.keyPem });
      if (!running) return;
      // an answer that is not a current certificate for the new key is a failed renewal, never stored
      const got = new X509Certificate(certPem);
      if (!got.checkPrivateKey(createPrivateKey(keyPem)))
        throw new GatewayError('GW_ENROLMENT_FAILED', 'the renewed certificate is not for the new key; it was not stored');
      if (got.validToDate.getTime() <= o.clock.now())
        throw new GatewayError(
          'GW_ENROLMENT_FAILED',
          `the renewed certificate expired at ${got.validToDate.toISOString()}; it was not stored`,
        );
      const next = stagePending(o.dataDir, keyPem, certPem);
      lastRenewalError = undefined;
      retryAt = 0;
      if (!reload(true)) return;
      state = 'pending';
      o.logger.info({ serial: next.serial, previous: serial, notAfter: next.notAfter }, 'device certificate renewed; reconnecting with it');
      changed();
    } catch (e) {
      if (isGatewayError(e, 'GW_DEVICE_CERT_REVOKED'))
        return end('revoked', e.code, `the device certificate ${serial} is revoked: ${e.message}`);
      if (isGatewayError(e, 'GW_DEVICE_CERT_EXPIRED'))
        return end('expired', e.code, `the device certificate ${serial} has expired: ${e.message}`);
      state = 'valid';
      lastRenewalError = isGatewayError(e) ? `${e.code}: ${e.message}` : `${(e as Error).name}: ${(e as Error).message}`;
      retryAt = o.clock.now() + RETRY_MS;
      o.logger.warn({ serial, error: lastRenewalError, retryInMs: RETRY_MS }, 'device certificate renewal failed; will retry');
    } finally {
      if (running) schedule();
    }
  }

  return {
    tls: () => ({ ca: id.brokerCaPem, cert: id.certPem, key: id.keyPem }),
    onChange(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    connected() {
      if (state !== 'pending') return;
      try {
        confirmPending(o.dataDir, new Date(o.clock.now()));
      } catch (e) {
        return end('damaged', 'GW_DEVICE_IDENTITY_DAMAGED', `could not confirm the renewed certificate: ${(e as Error).message}`);
      }
      if (!reload(false)) return;
      state = 'valid';
      o.logger.info({ serial: id.certificate.serial }, 'renewed device certificate confirmed by the broker');
      schedule();
    },
    refused(reason) {
      if (state !== 'pending') {
        // the broker's TLS alert says why (RFC 8446 6.2: certificate_revoked, certificate_expired)
        if (terminal) return;
        const serial = id.certificate.serial;
        if (/CERTIFICATE_REVOKED/.test(reason))
          end('revoked', 'GW_DEVICE_CERT_REVOKED', `the broker refused the device certificate ${serial} as revoked (${reason})`);
        else if (/CERTIFICATE_EXPIRED/.test(reason))
          end('expired', 'GW_DEVICE_CERT_EXPIRED', `the broker refused the device certificate ${serial} as expired (${reason})`);
        return;
      }
      o.logger.warn({ serial: id.generation, reason }, 'the broker refused the renewed certificate; falling back to the previous one');
      discardPending(o.dataDir);
      if (!reload(false)) return;
      state = 'valid';
      lastRenewalError = `the broker refused the renewed certificate (${reason})`;
      retryAt = o.clock.now() + RETRY_MS;
      changed();
      schedule();
    },
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop() {
      running = false;
      o.clock.clearTimeout(timer);
      timer = undefined;
      listeners.clear();
      await inFlight;
    },
    status() {
      const s: IdentityStatus = {
        state,
        gatewayId: id.record.gatewayId,
        tenantId: id.record.tenantId,
        serial: id.certificate.serial,
        notAfter: id.certificate.notAfter,
        renewAt: new Date(renewAtOf(id.certificate.notBefore, id.certificate.notAfter)).toISOString(),
      };
      if (terminal) Object.assign(s, { code: terminal.code, problem: terminal.problem, action: ErrorCodes[terminal.code].action });
      if (lastRenewalError) s.lastRenewalError = lastRenewalError;
      return s;
    },
    idle: () => inFlight,
  };
}
