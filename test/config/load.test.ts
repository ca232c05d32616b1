import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'ewml-cfg-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function problems(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('config loading', () => {
  it('runs on embedded defaults with no file', () => {
    const c = loadConfig({ env: {} });
    expect(c.hl7).toMatchObject({ host: '127.0.0.1', port: 2575, maxFrameBytes: 10 * 1024 * 1024 });
    expect(c.admin).toMatchObject({ host: '127.0.0.1', port: 8480 });
    expect(c.relay.sink).toBe('file');
  });

  it('lists every bad field with its path, what was expected and what was found', () => {
    const e = problems(() =>
      loadConfig({
        env: {},
        file: file('bad.yaml', 'hl7:\n  port: 99999\n  profil: epic\n  profile: nope\nrelay:\n  batchSize: "many"\n'),
      }),
    );
    expect(e.code).toBe('GW_CONFIG_INVALID');
    const byPath = Object.fromEntries(e.problems.map((p) => [p.path, p]));
    expect(byPath['hl7.port']).toMatchObject({ found: '99999' });
    expect(byPath['hl7.port'].expected).toContain('65535');
    expect(byPath['hl7.profil'].expected).toContain('no such field');
    expect(byPath['hl7.profile'].expected).toContain('"epic"');
    expect(byPath['relay.batchSize']).toMatchObject({ found: '"many"' });
  });

  it('reports YAML syntax errors and unreadable files as GW_CONFIG_UNREADABLE', () => {
    expect(problems(() => loadConfig({ env: {}, file: file('syntax.yaml', 'hl7: [unclosed\n') })).code).toBe('GW_CONFIG_UNREADABLE');
    expect(problems(() => loadConfig({ env: {}, file: join(dir, 'missing.yaml') })).code).toBe('GW_CONFIG_UNREADABLE');
  });

  it('takes secrets from ${env:NAME} and ${file:PATH}, and never shows a secret value', () => {
    file('token.txt', 's3cret-from-file\n');
    const c = loadConfig({
      env: { MQ_PASS: 'pw-from-env' },
      file: file('s.yaml', 'mqtt:\n  password: ${env:MQ_PASS}\nhttps:\n  token: ${file:token.txt}\n'),
    });
    expect(c.mqtt.password).toBe('pw-from-env');
    expect(c.https.token).toBe('s3cret-from-file');
    const e = problems(() => loadConfig({ env: {}, file: file('s2.yaml', 'mqtt:\n  password: ${env:NOT_SET}\n') }));
    expect(e.code).toBe('GW_SECRET_MISSING');
    expect(e.problems[0]).toMatchObject({ path: 'mqtt.password' });
    const shown = problems(() => loadConfig({ env: {}, overrides: { admin: { token: 12345 } } }));
    expect(shown.problems[0]).toMatchObject({ path: 'admin.token', found: '(secret, not shown)' });
  });

  it('applies EWML__SECTION__FIELD environment overrides over the file', () => {
    const c = loadConfig({
      env: { EWML__HL7__PORT: '2600', EWML__RELAY__MAX_IN_FLIGHT: '8', EWML__ADMIN__ENABLED: 'false' },
      file: file('o.yaml', 'hl7:\n  port: 2599\n'),
    });
    expect(c.hl7.port).toBe(2600);
    expect(c.relay.maxInFlight).toBe(8);
    expect(c.admin.enabled).toBe(false);
  });

  it('requires the cloud public key for the mqtt and https sinks', () => {
    const e = problems(() => loadConfig({ env: {}, overrides: { relay: { sink: 'mqtt' } } }));
    expect(e.problems[0]).toMatchObject({ path: 'cloud.publicKey' });
  });
});

describe('example configs', () => {
  it.each(['practice-mqtt.yaml', 'practice-https.yaml'])('%s is valid once its secrets exist', (name) => {
    const d = mkdtempSync(join(tmpdir(), 'ewml-ex-'));
    // the cloud key is parsed at load (config/rules.ts), so it must be a real public key
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(d, 'cloud-public.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(d, 'secret.pem'), 'x');
    const text = readFileSync(new URL(`../../config/examples/${name}`, import.meta.url), 'utf8').replace(
      /\$\{file:[^}]+\}/g,
      (ref) => '${file:' + join(d, ref.includes('cloud-public') ? 'cloud-public.pem' : 'secret.pem') + '}',
    );
    const p = join(d, name);
    writeFileSync(p, text);
    expect(loadConfig({ file: p, env: { EWML_CLOUD_TOKEN: 't' } }).version).toBe(2);
  });
});
