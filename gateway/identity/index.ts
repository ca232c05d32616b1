/**
 * The device identity (issue 16 point 5): the key pair made on this machine, the certificate the
 * cloud's device CA signed at enrolment, the broker's CA and the cloud's keys, kept in
 * `<dataDir>/identity/` (layout: identity-store.ts), and its renewal while the gateway runs.
 * installer/enrol.ts enrols; the MQTT sink connects with it (gateway/sinks/index.ts).
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { GatewayError } from '../errors.ts';
import { finishInterruptedEnrolment, readIdentity } from './identity-store.ts';
import { createIdentityLink, type DeviceIdentityLink } from './renewal.ts';

export { deviceCertificateCheck, type DeviceCertificateCheckResult } from './certificate-check.ts';
export { createDeviceKeyRequest, DEVICE_REQUEST_NAME } from './device-key.ts';
export { endpointUrl, requestEnrolment, requestRenewal, type EnrolmentResponse } from './enrolment-client.ts';
export {
  identityDir,
  IdentityFiles,
  readIdentity,
  writeEnrolment,
  type DeviceIdentity,
  type EnrolmentRecord,
  type IdentityState,
} from './identity-store.ts';
export { createIdentityLink, RENEW_AT, renewAtOf, type DeviceIdentityLink, type IdentityStatus } from './renewal.ts';

/**
 * The identity link for the MQTT sink, or undefined when this data folder was never enrolled. A
 * damaged identity refuses the start (GW_DEVICE_IDENTITY_DAMAGED), as a bad config does: a sink
 * that silently connected without its certificate would only be refused by the broker.
 */
export function openIdentityLink(o: { dataDir: string; clock: Clock; logger: Logger }): DeviceIdentityLink | undefined {
  if (finishInterruptedEnrolment(o.dataDir)) o.logger.warn('an interrupted enrolment was finished: its new identity is now in place');
  const r = readIdentity(o.dataDir);
  if (r.state === 'absent') return undefined;
  if (r.state === 'damaged') throw new GatewayError('GW_DEVICE_IDENTITY_DAMAGED', r.problem);
  return createIdentityLink({ dataDir: o.dataDir, identity: r.identity, clock: o.clock, logger: o.logger });
}

/**
 * The identity the MQTT sink connects with, for a config that names no client certificate of its
 * own. The config must name the gateway and tenant the identity was issued to: records and topics
 * carry them, and the broker admits the certificate for its own topics only.
 */
export function identityForSink(
  config: { gateway: { id: string; tenantId: string; dataDir: string } },
  d: { clock: Clock; logger: Logger },
): DeviceIdentityLink | undefined {
  const link = openIdentityLink({
    dataDir: resolve(config.gateway.dataDir),
    clock: d.clock,
    logger: d.logger.child({ component: 'identity' }),
  });
  if (!link) return undefined;
  const s = link.status();
  const enrolledTenant = s.tenantId;
  if (s.gatewayId !== config.gateway.id || enrolledTenant !== config.gateway.tenantId)
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `this data folder is enrolled as gateway ${s.gatewayId} of tenant ${enrolledTenant}, but the config says gateway.id ${config.gateway.id}, gateway.tenantId ${config.gateway.tenantId}: set them to the enrolled ones (enrol --config FILE writes them)`,
    );
  return link;
}
