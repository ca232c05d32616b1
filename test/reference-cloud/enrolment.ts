/**
 * The reference cloud's enrolment endpoint: a device CA, one-time enrolment codes, and the two
 * routes a gateway calls (gateway/identity/enrolment-client.ts has the contract):
 *
 *   POST /v1/enrolment        {code, csr}   a code the cloud team issued (single use, expiring) and
 *                                           the gateway's PKCS#10 request -> its certificate (CN =
 *                                           gateway id, O = tenant), the broker's CA, the broker URL
 *                                           and the cloud's payload and command keys
 *   POST /v1/enrolment/renew  {csr}         over mutual TLS with a certificate this CA issued, not
 *                                           expired and not revoked -> a new certificate for the
 *                                           same gateway and the request's (new) key
 *
 * The request's signature is checked (proof that the caller holds the key); the subject the
 * gateway asked for is ignored, the cloud names the certificate. Mounted on the HTTPS reference
 * cloud (reference-cloud.ts `startHttpReferenceCloud({ enrolment })`), which asks for, but does not
 * require, a client certificate: the renew route decides.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { createDeviceKeyRequest, loadX509 } from '../../gateway/identity/device-key.ts';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface EnrolmentCloudOptions {
  brokerCaPem: string;
  brokerUrl?: string;
  payloadKeyPem: string;
  commandKeyPem: string;
  /** Lifetime of the certificates issued (default 24 h). */
  certLifetimeMs?: number;
  /** The cloud's clock for codes and certificate dates (default Date.now). */
  now?: () => number;
}

export interface IssuedCertificate {
  serial: string;
  gatewayId: string;
  tenantId: string;
  route: 'enrol' | 'renew';
  notBefore: string;
  notAfter: string;
  pem: string;
}

export interface EnrolmentCloud {
  /** The device CA's certificate: the broker trusts client certificates signed by it. */
  readonly deviceCaPem: string;
  /** A one-time code for a gateway, valid `ttlMs` (default 1 h) from now. */
  issueCode(o: { gatewayId: string; tenantId: string; practiceId?: string; ttlMs?: number }): string;
  /** Revokes a certificate by serial (hex, upper case): its renewals are refused, and it is in {@link crlPem}. */
  revoke(serial: string): void;
  /** The device CA's CRL (PEM) of every certificate revoked so far, for the broker (`crlfile`). */
  crlPem(): Promise<string>;
  /**
   * A client certificate from the device CA for one of the cloud's own services (the receiver that
   * reads `up/records` from the broker), made outside enrolment.
   */
  issueServiceCertificate(commonName: string): Promise<{ certPem: string; keyPem: string }>;
  /** Every certificate issued, in order. */
  readonly issued: IssuedCertificate[];
  /** Answers seen, by route and error (`enrol:code_used`, `renew:ok`), for tests. */
  readonly answers: string[];
  /** The broker URL enrolment answers give (settable: the broker may start after this CA, whose certificate it needs). */
  brokerUrl?: string;
  /** Changeable between calls (a test issues a short-lived certificate). */
  certLifetimeMs: number;
  /** What the HTTPS server needs to ask for a client certificate and check it against the device CA. */
  readonly tlsOptions: { requestCert: true; rejectUnauthorized: false; ca: string };
  /** Handles the request when it is an enrolment route; undefined otherwise. */
  handle(req: IncomingMessage, body: Buffer): Promise<{ status: number; body: unknown }> | undefined;
}

interface Code {
  gatewayId: string;
  tenantId: string;
  practiceId?: string;
  expiresAt: number;
  used: boolean;
}

export async function createEnrolmentCloud(o: EnrolmentCloudOptions): Promise<EnrolmentCloud> {
  const x509 = await loadX509();
  const now = o.now ?? Date.now;
  const caKeys = (await webcrypto.subtle.generateKey(ALG, false, ['sign', 'verify'])) as unknown as CryptoKeyPairLike;
  const t = now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=ewml reference device CA, O=eyewear-ML reference cloud',
    notBefore: new Date(t - 86_400_000),
    notAfter: new Date(t + 365 * 86_400_000),
    keys: caKeys as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as never),
    ],
  });
  const deviceCaPem = ca.toString('pem');
  const codes = new Map<string, Code>();
  const revoked = new Set<string>();
  const issued: IssuedCertificate[] = [];
  const answers: string[] = [];

  async function issue(csrPem: string, who: { gatewayId: string; tenantId: string }, route: IssuedCertificate['route']): Promise<string> {
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify())) throw new BadRequest('the request is not signed by its own key');
    // the first byte below 0x80 keeps the serial positive and its hex free of a leading zero
    const serialBytes = randomBytes(16);
    serialBytes[0] = 0x10 + (serialBytes[0] % 0x70);
    const serial = serialBytes.toString('hex').toUpperCase();
    const from = now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${who.gatewayId}, O=${who.tenantId}`,
      issuer: ca.subject,
      notBefore: new Date(Math.floor(from / 1000) * 1000),
      notAfter: new Date(Math.floor((from + api.certLifetimeMs) / 1000) * 1000),
      signingAlgorithm: ALG,
      publicKey: csr.publicKey,
      signingKey: caKeys.privateKey as never,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey as never),
      ],
    });
    const pem = cert.toString('pem');
    issued.push({ serial, ...who, route, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString(), pem });
    return pem;
  }

  async function enrol(body: Record<string, unknown>) {
    const code = typeof body.code === 'string' ? codes.get(body.code) : undefined;
    if (typeof body.csr !== 'string') throw new BadRequest('csr is missing');
    if (!code) return refuse(403, 'enrol', 'code_unknown');
    if (code.used) return refuse(403, 'enrol', 'code_used');
    if (now() >= code.expiresAt) return refuse(403, 'enrol', 'code_expired');
    const certificate = await issue(body.csr, code, 'enrol');
    code.used = true;
    answers.push('enrol:ok');
    return {
      status: 200,
      body: {
        gatewayId: code.gatewayId,
        tenantId: code.tenantId,
        ...(code.practiceId ? { practiceId: code.practiceId } : {}),
        certificate,
        brokerCa: o.brokerCaPem,
        ...(api.brokerUrl ? { brokerUrl: api.brokerUrl } : {}),
        payloadKey: o.payloadKeyPem,
        commandKey: o.commandKeyPem,
      },
    };
  }

  async function renew(req: IncomingMessage, body: Record<string, unknown>) {
    const socket = req.socket as TLSSocket;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!peer?.serialNumber) return refuse(401, 'renew', 'certificate_required');
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? '');
      return refuse(401, 'renew', why === 'CERT_HAS_EXPIRED' ? 'certificate_expired' : 'certificate_unknown');
    }
    const serial = peer.serialNumber.toUpperCase();
    const was = issued.find((c) => c.serial === serial);
    if (!was) return refuse(401, 'renew', 'certificate_unknown');
    if (revoked.has(serial)) return refuse(403, 'renew', 'certificate_revoked');
    if (typeof body.csr !== 'string') throw new BadRequest('csr is missing');
    const certificate = await issue(body.csr, { gatewayId: was.gatewayId, tenantId: was.tenantId }, 'renew');
    answers.push('renew:ok');
    return { status: 200, body: { certificate } };
  }

  function refuse(status: number, route: string, error: string) {
    answers.push(`${route}:${error}`);
    return { status, body: { error } };
  }

  const api: EnrolmentCloud = {
    deviceCaPem,
    issued,
    answers,
    certLifetimeMs: o.certLifetimeMs ?? 86_400_000,
    ...(o.brokerUrl ? { brokerUrl: o.brokerUrl } : {}),
    tlsOptions: { requestCert: true, rejectUnauthorized: false, ca: deviceCaPem },
    issueCode({ gatewayId, tenantId, practiceId, ttlMs }) {
      const code = randomBytes(9)
        .toString('base64url')
        .toUpperCase()
        .replace(/[^A-Z0-9]/g, 'X');
      const c = `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}`;
      codes.set(c, { gatewayId, tenantId, ...(practiceId ? { practiceId } : {}), expiresAt: now() + (ttlMs ?? 3_600_000), used: false });
      return c;
    },
    revoke: (serial) => void revoked.add(serial.toUpperCase()),
    async crlPem() {
      const at = now();
      const crl = await x509.X509CrlGenerator.create({
        issuer: ca.subject,
        thisUpdate: new Date(at - 60_000),
        nextUpdate: new Date(at + 86_400_000),
        signingAlgorithm: ALG,
        signingKey: caKeys.privateKey as never,
        entries: [...revoked].map((serialNumber) => ({ serialNumber, revocationDate: new Date(at - 60_000) })),
        extensions: [await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey as never)],
      });
      // OpenSSL (mosquitto's crlfile) reads the RFC 7468 label, X509 CRL, not the library's CRL
      return crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----');
    },
    async issueServiceCertificate(commonName) {
      const { keyPem, csrPem } = await createDeviceKeyRequest(commonName);
      return { certPem: await issue(csrPem, { gatewayId: commonName, tenantId: 'ewml-cloud' }, 'enrol'), keyPem };
    },
    handle(req, raw) {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'POST' || (path !== '/v1/enrolment' && path !== '/v1/enrolment/renew')) return undefined;
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        body = parsed as Record<string, unknown>;
      } catch {
        return Promise.resolve({ status: 400, body: { error: 'bad_request', message: 'the body is not a JSON object' } });
      }
      return (path === '/v1/enrolment' ? enrol(body) : renew(req, body)).catch((e: unknown) => ({
        status: 400,
        body: { error: 'bad_request', message: e instanceof BadRequest ? e.message : 'the request does not parse' },
      }));
    },
  };
  return api;
}

class BadRequest extends Error {}

interface CryptoKeyPairLike {
  publicKey: unknown;
  privateKey: unknown;
}
