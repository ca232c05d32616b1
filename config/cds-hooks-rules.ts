/**
 * The `cdsHooks` rules the schema's shape cannot say (config/rules.ts runs them): when the service is
 * on it needs a certificate and key that parse and belong together, a publicUrl (the `aud` every
 * token is checked against), and at least one trusted EHR with an https JWK Set URL. Each mirrors a
 * check gateway/cds-hooks/cds-service.ts makes at start.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { pemOf, pemSource } from './cds-hooks-schema.ts';
import type { GatewayConfig } from './schema.ts';

type Add = (path: string, expected: string, found: string, todo: string) => void;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** `https:`, or `http:` to this machine's loopback (a test bench). */
function urlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return v === '' ? 'nothing' : 'text that is not a URL';
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) return `a ${u.protocol}// URL`;
  if (u.search || u.hash) return 'a URL with a query or fragment';
  return undefined;
}

type CdsHooksConfig = GatewayConfig['cdsHooks'];

export function cdsHooksRules(config: GatewayConfig, add: Add, skip: (v: unknown) => boolean): void {
  const c = config.cdsHooks;
  if (!c.enabled) return;
  portRule(config, add);
  const pu = urlProblem(c.publicUrl);
  if (pu || c.publicUrl.endsWith('/'))
    add(
      'cdsHooks.publicUrl',
      "the https:// base URL the EHR calls, without a trailing slash (a token's aud is it plus /cds-services/{id})",
      pu ?? 'a URL ending in /',
      'set it to the URL registered in the EHR, e.g. https://optical-gw.practice.local:8443',
    );
  if (c.issuers.length === 0)
    add(
      'cdsHooks.issuers',
      'at least one EHR (iss and jku) when cdsHooks.enabled',
      'no entries',
      "add the EHR's issuer and JWK Set URL: issuers: [{ iss: https://ehr.example/…, jku: https://ehr.example/…/jwks }]",
    );
  c.issuers.forEach((i, n) => {
    const p = urlProblem(i.jku);
    if (p)
      add(
        `cdsHooks.issuers[${n}].jku`,
        "an https:// URL of the EHR's JWK Set (http:// only to 127.0.0.1)",
        p,
        'use the JWK Set URL the EHR vendor publishes for its CDS Hooks client',
      );
  });
  tlsRules(c, add, skip);
}

function tlsRules(c: CdsHooksConfig, add: Add, skip: (v: unknown) => boolean): void {
  const read = (field: 'cert' | 'key'): string | undefined => {
    const v = c.tls[field];
    const path = `cdsHooks.tls.${field}`;
    if (skip(v)) return undefined;
    const what = field === 'cert' ? 'the server certificate (PEM)' : "the certificate's private key (PEM)";
    if (!v) {
      add(
        path,
        `${what} when cdsHooks.enabled`,
        'nothing',
        `set ${path}: \${file:/path/${field === 'cert' ? 'cds-cert.pem' : 'cds-key.pem'}}`,
      );
      return undefined;
    }
    const src = pemSource(v);
    if (src === 'missing-file') {
      // a file name, never PEM text: a private key pasted here by mistake is caught above (pem)
      add(path, `${what}, or the path of a file holding it`, 'a path to no file', 'check the path (readable by the service account)');
      return undefined;
    }
    try {
      return pemOf(v);
    } catch {
      add(path, `${what}, or the path of a readable file holding it`, 'a file that cannot be read', 'check the permissions');
      return undefined;
    }
  };
  const certPem = read('cert');
  const keyPem = read('key');
  let cert: X509Certificate | undefined;
  if (certPem !== undefined) {
    try {
      cert = new X509Certificate(certPem);
    } catch {
      add(
        'cdsHooks.tls.cert',
        'a PEM certificate (-----BEGIN CERTIFICATE-----)',
        certPem.includes('PRIVATE KEY') ? 'a private key' : 'PEM that does not parse as a certificate',
        'point it at the certificate file, not the key',
      );
    }
  }
  if (keyPem !== undefined) {
    try {
      const key = createPrivateKey(keyPem);
      if (cert && !cert.checkPrivateKey(key))
        add('cdsHooks.tls.key', 'the private key of cdsHooks.tls.cert', 'another key', 'use the key the certificate was issued for');
    } catch {
      // never the text itself
      add(
        'cdsHooks.tls.key',
        'a PEM private key (-----BEGIN PRIVATE KEY-----), unencrypted',
        'PEM that does not parse as a private key',
        'export the key without a passphrase, readable only by the service account',
      );
    }
  }
}

/** Its own port: the admin API's or the MLLP listener's would make the second bind fail (gateway start). */
function portRule(c: GatewayConfig, add: Add): void {
  const { port, host } = c.cdsHooks;
  if (port === 0) return;
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  const clash = (other: { enabled: boolean; host: string; port: number }) =>
    other.enabled && other.port === port && (other.host === host || wildcard(other.host) || wildcard(host));
  for (const [name, other] of [
    ['admin.port', c.admin],
    ['hl7.port', c.hl7],
  ] as const) {
    if (clash(other))
      add('cdsHooks.port', `a port other than ${name} (${other.port})`, String(port), 'give the CDS service its own port (default 8443)');
  }
}
