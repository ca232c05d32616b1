/**
 * `eyewear-gateway fhir jwks` and `fhir check`, as a technician runs them from a config file:
 * jwks makes the key pair in the data folder once and prints only its public half; check proves
 * discovery, the token, /metadata and a page of each resource against a real (test) FHIR server,
 * and says what failed and what to check when the vendor has not registered the key. Config rules
 * refuse a FHIR base URL in clear to another machine.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../../cli/index.ts';
import { loadConfig, validateConfig } from '../../config/load.ts';
import { checkRules } from '../../config/rules.ts';
import { loadCorpus, startFhirServer, type FhirServer } from '../support/fhir-server/index.ts';
import { corpus } from '../support/corpus.ts';

const dirs: string[] = [];
const servers: FhirServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configFile(baseUrl: string, extra = ''): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-fhir-cli-'));
  dirs.push(dir);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(
    file,
    [
      'gateway:',
      `  dataDir: ${dir}/data`,
      'fhir:',
      '  - id: clinic',
      '    vendor: generic',
      `    baseUrl: ${baseUrl}`,
      '    clientId: ewml-cli',
      '    keyAlg: ES384',
      '    resources: [Patient, VisionPrescription, Observation]',
      extra,
      '',
    ].join('\n'),
  );
  return { dir, file };
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s), readFile: () => '', loadConfig: (f) => loadConfig({ file: f }) };
  const code = await runCommand(args, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('fhir jwks', () => {
  it('makes the key pair once, sealed in the data folder, and prints the same public JWKS every time', async () => {
    const { dir, file } = configFile('http://127.0.0.1:9/fhir/r4');
    const first = await run(['fhir', 'jwks', '--config', file]);
    expect(first.code).toBe(0);
    const jwks = JSON.parse(first.out) as { keys: Array<Record<string, string>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig' });
    expect(jwks.keys[0].d).toBeUndefined();
    expect(first.err).toContain(`made a new ES384 key pair for clinic (kid ${jwks.keys[0].kid})`);
    const again = await run(['fhir', 'jwks', '--config', file]);
    expect(again.code).toBe(0);
    expect(again.out).toBe(first.out);
    expect(again.err).toBe('');
    expect(readdirSync(join(dir, 'data', 'secrets', 'clinic'))).toEqual(['client-key-es384.jwk.sealed']);
  });
});

describe.skipIf(!corpus.present)('fhir check', () => {
  it('proves the token, the server and a page of each resource, and exits 0', async () => {
    const pre = configFile('http://127.0.0.1:9/fhir/r4');
    const jwks = JSON.parse((await run(['fhir', 'jwks', '--config', pre.file])).out);
    const fhir = await startFhirServer({
      vendor: 'generic',
      resources: loadCorpus(['fhir/fhir-r4-examples', 'fhir/fhir-eyecare-ig'], { types: ['Patient', 'VisionPrescription', 'Observation'] }),
      clients: [{ clientId: 'ewml-cli', jwks }],
    });
    servers.push(fhir);
    writeFileSync(pre.file, (await import('node:fs')).readFileSync(pre.file, 'utf8').replace('http://127.0.0.1:9/fhir/r4', fhir.baseUrl));
    const r = await run(['fhir', 'check', '--config', pre.file]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`clinic (FHIR R4 server, ${fhir.baseUrl})`);
    expect(r.out).toMatch(/token {7}ok \(kid [\w-]+, ES384, expires \d{4}-/);
    expect(r.out).toContain('server      FHIR 4.0.1, ewml FHIR test server 1.0.0, Bulk $export');
    expect(r.out).toMatch(/Patient +ok {4}strategy lastUpdated; first page \d+/);
    expect(r.out).toMatch(/VisionPrescription +ok {4}strategy lastUpdated; first page 2 of 2; 2 records/);
    expect(r.out).toContain('fhir check: every source is ready');
  });

  it('says the token was refused and what to check, and exits 1, when the key is not registered', async () => {
    const fhir = await startFhirServer({ vendor: 'generic', clients: [] });
    servers.push(fhir);
    const { file } = configFile(fhir.baseUrl);
    const r = await run(['fhir', 'check', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('FAILED: the token endpoint refused the client assertion (invalid_client)');
    expect(r.err).toContain('the key registered with the vendor (eyewear-gateway fhir jwks)');
    expect(r.out).toContain('fhir check: a step failed');
  });
});

describe('source ids', () => {
  it("refuse '.' and '..': an id names folders in the data folder (a remote source's staging folder is emptied at start, so '..' would have emptied the data folder itself)", () => {
    for (const id of ['.', '..', '...']) {
      const v = validateConfig({
        files: [{ id, source: 'sftp', dir: '/out', sftp: { host: '127.0.0.1', username: 'u' } }],
        fhir: [{ id, baseUrl: 'https://ehr.example/fhir', clientId: 'c', resources: ['Patient'] }],
      });
      expect(v.ok).toBe(false);
      expect(v.ok ? [] : v.problems.map((p) => p.path).sort()).toEqual(['fhir[0].id', 'files[0].id']);
    }
    expect(validateConfig({ fhir: [{ id: 'a.b', baseUrl: 'https://ehr.example/fhir', clientId: 'c', resources: ['Patient'] }] }).ok).toBe(
      true,
    );
  });
});

describe('fhir config rules', () => {
  it('refuses a base URL in clear to another machine, and credentials in a URL', () => {
    const v = validateConfig({
      fhir: [
        { id: 'a', baseUrl: 'http://10.0.0.5/fhir', clientId: 'c', resources: ['Patient'] },
        { id: 'b', baseUrl: 'https://u:p@ehr.example/fhir', clientId: 'c', resources: ['Patient'] },
        { id: 'a', baseUrl: 'https://ehr.example/fhir', clientId: 'c', resources: ['Patient'], bulk: { level: 'group' } },
      ],
    });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const problems = checkRules(v.config).map((p) => `${p.path}: ${p.found}`);
    expect(problems).toEqual([
      'fhir[2].id: "a"',
      'fhir[0].baseUrl: a http:// URL to 10.0.0.5',
      'fhir[1].baseUrl: a URL with a user or password in it',
      'fhir[2].bulk.groupId: nothing',
    ]);
  });
});
