/**
 * `eyewear-gateway api check`, as a technician runs it from a config file against the vendor
 * simulators: it proves the way in and maps one page of each entity (DrChrono: the refresh token
 * is rotated and the new one sealed where the gateway keeps it), says what to check when the
 * credentials are refused, and exits 5 when a page maps with errors.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, type CliIo } from '../../cli/index.ts';
import { loadConfig } from '../../config/load.ts';
import {
  athenaDepartment,
  athenaPatient,
  drchronoAppointment,
  drchronoPatient,
  startAthenaSim,
  startDrchronoSim,
  type AthenaSim,
  type DrchronoSim,
} from '../support/api-sim/index.ts';

const dirs: string[] = [];
let drc: DrchronoSim;
let ath: AthenaSim;

beforeAll(async () => {
  drc = await startDrchronoSim({ timezone: 'UTC' });
  for (let i = 0; i < 3; i++) drc.put('patients', drchronoPatient(i));
  drc.put('appointments', drchronoAppointment(1, 1));
  ath = await startAthenaSim({ timezone: 'UTC', departments: [athenaDepartment(1)] });
  ath.changePatient(athenaPatient(1));
});

afterAll(async () => {
  await drc?.stop();
  await ath?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configFile(lines: string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-api-cli-'));
  dirs.push(dir);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, ['gateway:', `  dataDir: ${dir}/data`, '  timezone: UTC', 'apis:', ...lines, ''].join('\n'));
  return { dir, file };
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s), readFile: () => '', loadConfig: (f) => loadConfig({ file: f }) };
  const code = await runCommand(args, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const drchronoEntry = (refreshToken: string, entities = '[{ name: patients }, { name: appointments }]') => [
  '  - id: drc',
  '    profile: drchrono',
  `    baseUrl: ${drc.origin}`,
  `    entities: ${entities}`,
  '    auth:',
  `      tokenUrl: ${drc.origin}/o/token/`,
  `      clientId: ${drc.clientId}`,
  `      clientSecret: ${drc.clientSecret}`,
  `      refreshToken: ${refreshToken}`,
];

describe('api check', () => {
  it('proves the token and maps a page of each entity, sealing the rotated refresh token where the gateway keeps it', async () => {
    const { dir, file } = configFile(drchronoEntry(drc.refreshToken()));
    const r = await run(['api', 'check', '--config', file]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('drc (DrChrono, http://127.0.0.1:');
    expect(r.out).toMatch(/auth {8}ok \(refresh-token, token expires \d{4}-/);
    expect(r.out).toMatch(/patients +ok {4}first page 3; 3 records/);
    expect(r.out).toMatch(/appointments +ok {4}first page 1; 1 records/);
    expect(r.out).toContain('refresh token: the vendor rotated it; the newest is sealed in the data folder (generation 1)');
    expect(r.out).toContain('api check: every source is ready');
    expect(readdirSync(join(dir, 'data', 'secrets', 'drc'))).toEqual(['oauth-refresh-token-1.sealed']);
    // the second check takes the sealed token: the configured one has been used up
    const again = await run(['api', 'check', '--config', file]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('(generation 2)');
  });

  it('says to authorize again when the vendor refuses the refresh token, and exits 1', async () => {
    const { file } = configFile(drchronoEntry('revoked-long-ago'));
    const r = await run(['api', 'check', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('FAILED: the token endpoint refused the gateway (invalid_grant)');
    expect(r.err).toContain('authorize the gateway again as the practice and put the new refresh token in auth.refreshToken');
    expect(r.out).toContain('api check: a step failed');
  });

  it('exits 5 when a page maps with errors, naming the field and never its value', async () => {
    const { file } = configFile([
      '  - id: ath',
      '    profile: athenahealth',
      `    baseUrl: ${ath.origin}`,
      `    variables: { practiceId: "${ath.practiceId}" }`,
      `    auth: { clientId: ${ath.clientId}, clientSecret: ${ath.clientSecret} }`,
      '    entities:',
      '      - name: departments',
      '      - name: patients',
      '        records:',
      '          - type: patient',
      '            fields:',
      '              identifiers[0].system: { value: ATHENA }',
      '              identifiers[0].value: patientid',
      '              birthDate: { column: firstname, transform: date }',
    ]);
    const r = await run(['api', 'check', '--config', file, '--source', 'ath']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/departments +ok {4}first page 1 of 1; 1 records/);
    // the patients feed is not subscribed yet: check says so and reads nothing
    expect(r.out).toContain('patients             ok    not subscribed yet');
    ath.subscribed.add('patients');
    const after = await run(['api', 'check', '--config', file, '--source', 'ath']);
    expect(after.code).toBe(5);
    expect(after.out).toMatch(/patients +ERROR first page 1 of 1; 1 records/);
    expect(after.err).toContain('patients: patients.birthDate is not a date');
    expect(after.err).not.toContain('Bram');
    expect(after.out).toContain('api check: 1 entity maps with errors');
  });
});
