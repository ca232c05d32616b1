/** `cdsHooks` loads off by default; switched on, it needs TLS files that parse and match, a publicUrl and trusted EHRs. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadConfigReport, type ConfigProblem } from '../../config/load.ts';
import { makeTestPki, type TestPki } from '../support/tls.ts';

function problems(cdsHooks: Record<string, unknown>, extra: Record<string, unknown> = {}): ConfigProblem[] {
  try {
    loadConfig({ env: {}, overrides: { cdsHooks, ...extra } });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

describe('cdsHooks config rules', () => {
  let pki: TestPki;
  let other: TestPki;
  let dir: string;
  let ok: Record<string, unknown>;
  beforeAll(() => {
    pki = makeTestPki();
    other = makeTestPki();
    dir = mkdtempSync(join(tmpdir(), 'ewml-cds-cfg-'));
    writeFileSync(join(dir, 'cert.pem'), pki.cert);
    writeFileSync(join(dir, 'key.pem'), pki.key);
    ok = {
      enabled: true,
      publicUrl: 'https://optical-gw.practice.local:8443',
      tls: { cert: `\${file:${join(dir, 'cert.pem')}}`, key: `\${file:${join(dir, 'key.pem')}}` },
      issuers: [{ iss: 'https://ehr.example/fhir', jku: 'https://ehr.example/jwks' }],
    };
  });

  it('is off by default with its documented defaults', () => {
    const c = loadConfig({ env: {} }).cdsHooks;
    expect(c).toEqual({
      enabled: false,
      host: '127.0.0.1',
      port: 8443,
      publicUrl: '',
      tls: { cert: '', key: '' },
      issuers: [],
      rxExpiryWarningDays: 30,
      rxValidityMonths: { spectacle: 24, contactLens: 12 },
      appointmentDays: 90,
      maxPatients: 200_000,
    });
  });

  it('loads a complete config (TLS by ${file:…} or by path), each issuer defaulted', () => {
    expect(problems(ok)).toEqual([]);
    expect(problems({ ...ok, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } })).toEqual([]);
    const c = loadConfig({ env: {}, overrides: { cdsHooks: ok } }).cdsHooks;
    expect(c.issuers).toEqual([
      { iss: 'https://ehr.example/fhir', jku: 'https://ehr.example/jwks', patientSystem: '', identifierSystems: {} },
    ]);
  });

  it('refuses enabled without TLS files, publicUrl and issuers, naming each field', () => {
    const p = problems({ enabled: true });
    expect(p.map((x) => x.path)).toEqual(['cdsHooks.publicUrl', 'cdsHooks.issuers', 'cdsHooks.tls.cert', 'cdsHooks.tls.key']);
    expect(p.every((x) => x.todo)).toBe(true);
  });

  it('refuses a key that is not the certificate’s, a path to no file, a plain-http jku and a trailing slash', () => {
    expect(problems({ ...ok, tls: { cert: pki.cert, key: other.key } }).map((x) => [x.path, x.found])).toEqual([
      ['cdsHooks.tls.key', 'another key'],
    ]);
    expect(problems({ ...ok, tls: { cert: join(dir, 'nope.pem'), key: pki.key } }).map((x) => [x.path, x.found])).toEqual([
      ['cdsHooks.tls.cert', 'a path to no file'],
    ]);
    // the key pasted where the certificate belongs: said, and never shown
    const swapped = problems({ ...ok, tls: { cert: pki.key, key: pki.key } });
    expect(swapped.map((x) => [x.path, x.found])).toEqual([['cdsHooks.tls.cert', 'a private key']]);
    expect(JSON.stringify(swapped)).not.toContain('PRIVATE KEY-----');
    expect(problems({ ...ok, issuers: [{ iss: 'x', jku: 'http://ehr.example/jwks' }] }).map((x) => x.path)).toEqual([
      'cdsHooks.issuers[0].jku',
    ]);
    expect(problems({ ...ok, issuers: [{ iss: 'x', jku: 'http://127.0.0.1:9/jwks' }] })).toEqual([]);
    expect(problems({ ...ok, publicUrl: 'https://gw.local:8443/' }).map((x) => x.path)).toEqual(['cdsHooks.publicUrl']);
  });

  it("refuses the admin API's port", () => {
    expect(problems({ ...ok, port: 8480 }).map((x) => [x.path, x.expected])).toEqual([
      ['cdsHooks.port', 'a port other than admin.port (8480)'],
    ]);
  });

  it('leaves ${file:…} references unchecked offline', () => {
    const r = loadConfigReport({
      env: {},
      offline: true,
      overrides: { cdsHooks: { ...ok, tls: { cert: '${file:/nowhere/c.pem}', key: '${file:/nowhere/k.pem}' } } },
    });
    expect(r.unchecked).toEqual(['cdsHooks.tls.cert', 'cdsHooks.tls.key']);
  });
});
