/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureService } from './services.ts';

export interface TestPki {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

export function makeTestPki(): TestPki {
  const openssl = ensureService('openssl');
  const d = mkdtempSync(join(tmpdir(), 'ewml-pki-'));
  const run = (...args: string[]) => execFileSync(openssl, args, { cwd: d, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=ewml-test-ca',
  );
  writeFileSync(
    join(d, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  for (const n of ['server', 'client']) {
    run(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${n}.key`,
      '-out',
      `${n}.csr`,
      '-subj',
      `/CN=${n === 'server' ? 'localhost' : 'gw-test'}`,
    );
    run(
      'x509',
      '-req',
      '-in',
      `${n}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${n}.pem`,
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
  }
  const r = (f: string) => readFileSync(join(d, f), 'utf8');
  return { ca: r('ca.pem'), cert: r('server.pem'), key: r('server.key'), clientCert: r('client.pem'), clientKey: r('client.key') };
}
