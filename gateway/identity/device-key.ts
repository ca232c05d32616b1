/**
 * The device key pair and its certificate request (PKCS#10, RFC 2986), made on the device: the
 * private key is generated here and leaves this process only into the identity folder's 0600 file;
 * the cloud sees the request, which carries the public key and proves possession by its signature.
 *
 * ECDSA P-256 with SHA-256: the one client-key type every TLS stack on the path accepts (mosquitto
 * over OpenSSL, managed brokers such as AWS IoT Core, Node's TLS); Ed25519 client certificates are
 * not accepted by all of them, so they are not used here.
 *
 * @peculiar/x509 builds the request on WebCrypto (pure JavaScript, bundles with esbuild). Its
 * dependency injection (tsyringe) needs the Reflect metadata polyfill, so both load only here and
 * only when a request is made (enrolment, renewal), never on a gateway's ordinary start.
 */
import { webcrypto } from 'node:crypto';

/** The subject a device's request names, at enrolment and renewal alike: the cloud sets the certificate's real subject (gateway and tenant), and a gateway id may be longer than a request's 64-character name. */
export const DEVICE_REQUEST_NAME = 'eyewear-gateway';

export interface DeviceKeyRequest {
  /** The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
  /** The certificate request, PEM (`-----BEGIN CERTIFICATE REQUEST-----`). */
  csrPem: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Loads @peculiar/x509 (with the polyfill its tsyringe asks for) and points it at Node's WebCrypto. */
export async function loadX509(): Promise<typeof import('@peculiar/x509')> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}

/**
 * A new P-256 key pair and a request signed with it, for the subject `CN=<commonName>` (the cloud
 * sets the certificate's subject itself; the name only helps a person reading the request).
 */
export async function createDeviceKeyRequest(commonName: string): Promise<DeviceKeyRequest> {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(commonName))
    throw new Error(`device request: common name must be 1-64 of A-Z a-z 0-9 . _ - (got ${commonName.length} characters)`);
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys: keys as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'],
    signingAlgorithm: ALGORITHM,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
  return { keyPem, csrPem: csr.toString('pem') };
}
