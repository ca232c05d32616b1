/**
 * The gateway's side of the cloud's enrolment endpoint (installer/README.md "Enrolment and the device identity"; the
 * reference cloud's test/reference-cloud/enrolment.ts implements the other side):
 *
 *   POST <cloud>/v1/enrolment        {"code", "csr"}        -> 200 {gatewayId, tenantId, practiceId?,
 *                                                              certificate, brokerCa, brokerUrl?,
 *                                                              payloadKey, commandKey}
 *                                                           -> 403 {"error": "code_unknown" | "code_used" | "code_expired"}
 *   POST <cloud>/v1/enrolment/renew  {"csr"}, over mutual TLS with the current device certificate
 *                                                           -> 200 {certificate}
 *                                                           -> 401 {"error": "certificate_required" | "certificate_expired" | "certificate_unknown"}
 *                                                           -> 403 {"error": "certificate_revoked"}
 *
 * HTTPS only (plain http is refused: the answer carries the keys the gateway will trust), always
 * with the server's certificate verified: against the CA given (`ca`), else the system's.
 */
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { GatewayError } from '../errors.ts';

export interface EnrolmentResponse {
  gatewayId: string;
  tenantId: string;
  practiceId?: string;
  certificate: string;
  brokerCa: string;
  brokerUrl?: string;
  payloadKey: string;
  commandKey: string;
}

export interface CloudTls {
  /** PEM of the CA the cloud's server certificate chains to; absent: the system's CAs. */
  ca?: string;
  /** The client certificate and key (renewal). */
  cert?: string;
  key?: string;
}

const TIMEOUT_MS = 30_000;
const MAX_BODY = 1 << 20;
const ID = /^(?!\.+$)[A-Za-z0-9._-]+$/;

/** The endpoint URL under `cloudUrl`; refuses anything but https. */
export function endpointUrl(cloudUrl: string, path: string): URL {
  let base: URL;
  try {
    base = new URL(cloudUrl);
  } catch {
    throw new GatewayError('GW_ENROLMENT_FAILED', `the cloud URL "${cloudUrl}" is not a URL (expected https://host[:port])`, {
      retry: 'permanent',
    });
  }
  if (base.protocol !== 'https:')
    throw new GatewayError('GW_ENROLMENT_FAILED', `the cloud URL must be https:// (got ${base.protocol}//${base.host})`, {
      retry: 'permanent',
    });
  return new URL(`${base.pathname.replace(/\/+$/, '')}${path}`, base);
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON POST; a transport failure is GW_ENROLMENT_FAILED with what went wrong (an errno or TLS code). */
export function postJson(url: URL, body: unknown, tls: CloudTls): Promise<Answer> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const fail = (e: Error & { code?: string }) => {
      const code = e.code ?? e.name;
      // our verification of the server's certificate (OpenSSL's X509_V_ERR names, Node's altname check), not a TLS alert from it
      const untrusted = !code.startsWith('ERR_SSL_') && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code);
      reject(
        new GatewayError(
          'GW_ENROLMENT_FAILED',
          untrusted
            ? `the cloud's TLS certificate at ${url.host} is not trusted (${code}): pass the CA that signed it with --ca FILE (verification is never turned off)`
            : `could not reach the cloud's enrolment endpoint at ${url.host} (${code})`,
          { cause: e },
        ),
      );
    };
    const opts = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': payload.length },
      timeout: TIMEOUT_MS,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: true,
    };
    const req = httpsRequest(url, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(Object.assign(new Error('answer larger than 1 MiB'), { code: 'EMSGSIZE' }));
        else chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = undefined;
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          return reject(
            new GatewayError(
              'GW_ENROLMENT_FAILED',
              `the enrolment endpoint at ${url.host} answered ${res.statusCode} without a JSON object`,
            ),
          );
        resolve({ status: res.statusCode ?? 0, body: parsed as Record<string, unknown> });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', fail);
    req.end(payload);
  });
}

const isPem = (v: unknown, label: string): v is string => typeof v === 'string' && v.includes(`-----BEGIN ${label}-----`);

/** Checks an answer's certificate: a PEM certificate for `keyPem`'s key, issued to this device. */
function checkCertificate(pem: unknown, where: string): string {
  if (!isPem(pem, 'CERTIFICATE')) throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: the answer has no PEM certificate`);
  try {
    new X509Certificate(pem);
  } catch {
    throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: the certificate in the answer does not parse`);
  }
  return pem;
}

const CODE_PROBLEMS: Record<string, string> = {
  code_unknown: 'the cloud does not know this enrolment code (mistyped, or for another cloud)',
  code_used: 'this enrolment code was already used (a code works once)',
  code_expired: 'this enrolment code has expired',
};

/** POST /v1/enrolment with the one-time code and the request. */
export async function requestEnrolment(cloudUrl: string, code: string, csrPem: string, tls: CloudTls): Promise<EnrolmentResponse> {
  const url = endpointUrl(cloudUrl, '/v1/enrolment');
  const { status, body } = await postJson(url, { code, csr: csrPem }, tls);
  const error = typeof body.error === 'string' ? body.error : '';
  if (status === 403 && error in CODE_PROBLEMS)
    throw new GatewayError('GW_ENROLMENT_CODE_REFUSED', `${CODE_PROBLEMS[error]}; ask the cloud team for a new one`, {
      details: { reason: error },
    });
  if (status !== 200)
    throw new GatewayError('GW_ENROLMENT_FAILED', `the enrolment endpoint answered ${status}${error ? ` (${error})` : ''}`, {
      retry: status >= 500 || status === 429 ? 'transient' : 'permanent',
      details: { status, error },
    });
  const where = `the enrolment answer from ${url.host}`;
  for (const f of ['gatewayId', 'tenantId'] as const)
    if (typeof body[f] !== 'string' || !ID.test(body[f] as string))
      throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: ${f} is missing or not an id (A-Z a-z 0-9 . _ -)`);
  if (!isPem(body.brokerCa, 'CERTIFICATE')) throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: brokerCa is not a PEM certificate`);
  for (const f of ['payloadKey', 'commandKey'] as const)
    if (!isPem(body[f], 'PUBLIC KEY')) throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: ${f} is not a PEM public key`);
  if (body.brokerUrl !== undefined && (typeof body.brokerUrl !== 'string' || !/^mqtts:\/\//.test(body.brokerUrl)))
    throw new GatewayError('GW_ENROLMENT_FAILED', `${where}: brokerUrl is not an mqtts:// URL`);
  return {
    gatewayId: body.gatewayId as string,
    tenantId: body.tenantId as string,
    ...(typeof body.practiceId === 'string' ? { practiceId: body.practiceId } : {}),
    certificate: checkCertificate(body.certificate, where),
    brokerCa: body.brokerCa as string,
    ...(typeof body.brokerUrl === 'string' ? { brokerUrl: body.brokerUrl } : {}),
    payloadKey: body.payloadKey as string,
    commandKey: body.commandKey as string,
  };
}

/** POST /v1/enrolment/renew over mutual TLS with the current certificate. */
export async function requestRenewal(
  cloudUrl: string,
  csrPem: string,
  tls: Required<Pick<CloudTls, 'cert' | 'key'>> & CloudTls,
): Promise<string> {
  const url = endpointUrl(cloudUrl, '/v1/enrolment/renew');
  const { status, body } = await postJson(url, { csr: csrPem }, tls);
  const error = typeof body.error === 'string' ? body.error : '';
  if (status === 403 && error === 'certificate_revoked')
    throw new GatewayError('GW_DEVICE_CERT_REVOKED', 'the cloud refused to renew the device certificate: it is revoked');
  if (status === 401 && error === 'certificate_expired')
    throw new GatewayError('GW_DEVICE_CERT_EXPIRED', 'the cloud refused to renew the device certificate: it has expired');
  if (status !== 200)
    throw new GatewayError('GW_ENROLMENT_FAILED', `the renewal endpoint answered ${status}${error ? ` (${error})` : ''}`, {
      retry: status >= 500 || status === 429 ? 'transient' : 'permanent',
      details: { status, error },
    });
  return checkCertificate(body.certificate, `the renewal answer from ${url.host}`);
}
