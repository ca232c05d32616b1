/**
 * `eyewear-gateway setup` against real components: the program itself (bin/eyewear-gateway.js,
 * spawned), a real MLLP port, a real PostgreSQL with Practice Studio's schema, a real SSH server's
 * SFTP, real folders; the interactive flow through a real pseudo-terminal (util-linux `script`).
 * What it writes is loaded back with the gateway's own loader, and searched for the secrets.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliCommand, CliIo } from '../../cli/command.ts';
import { runCli } from '../../cli/registry.ts';
import { loadConfig } from '../../config/load.ts';
import { createSetupCommand } from '../../installer/commands/setup.ts';
import { detect } from '../../installer/setup/detect.ts';
import { freePort } from '../support/net.ts';
import { startPostgres, type PgServer } from '../support/postgres.ts';
import { createPracticeStudio } from '../support/practice-studio-db.ts';
import { startSshd, type SshServer } from '../support/sshd.ts';
import { generateKeyPairSync } from 'node:crypto';
import { createEnrolmentCloud } from '../reference-cloud/enrolment.ts';
import { type HttpReferenceCloud, startHttpReferenceCloud } from '../reference-cloud/reference-cloud.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { makeTestPki } from '../support/tls.ts';
import { loadCorpus, startFhirServer, type FhirServer } from '../support/fhir-server/index.ts';
import { corpus } from '../support/corpus.ts';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin/eyewear-gateway.js');

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.once('error', reject);
    c.once('close', (code) => resolve({ code, out, err }));
  });
}

const clean = (s: string) =>
  s
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequences (readline's cursor moves)
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    .replace(/\r\n/g, '\n')
    .replace(/\r/g, '');

/** Drives a command in a real pseudo-terminal: `script` gives it a tty, answers go in as keystrokes. */
function terminal(command: string) {
  const c = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  let seen = 0;
  c.stdout.on('data', (d: Buffer) => {
    raw += d.toString();
  });
  c.stderr.on('data', (d: Buffer) => {
    raw += d.toString();
  });
  const closed = new Promise<number | null>((resolve) => c.once('close', (code) => resolve(code)));
  return {
    text: () => clean(raw),
    /** Waits (bounded) for `prompt` after what was already answered, then types `answer` and Enter. */
    async answer(prompt: string, answer: string, enter = '\r'): Promise<void> {
      const until = Date.now() + 30_000;
      for (;;) {
        const t = clean(raw);
        const at = t.indexOf(prompt, seen);
        if (at >= 0) {
          seen = at + prompt.length;
          c.stdin.write(answer + enter);
          return;
        }
        if (c.exitCode !== null || Date.now() > until) throw new Error(`no prompt "${prompt}"; the terminal showed:\n${t.slice(seen)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    closed,
  };
}

let pg: PgServer;
let ssh: SshServer;
let db: { database: string; user: string; password: string };
let dir: string;
let n = 0;
const fresh = () => {
  const d = join(dir, `case-${++n}`);
  mkdirSync(join(d, 'exports'), { recursive: true });
  return d;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ewml-setup-'));
  [pg, ssh] = await Promise.all([startPostgres(), startSshd()]);
  db = await createPracticeStudio(pg, 'postgres', { patients: 3 });
}, 180_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), ssh?.stop()]);
});

/** `setup --non-interactive` with one folder source (`<d>/exports`), the config written to `out` and the data in `<d>/data`; more flags after it. */
const folderSetup = (d: string, out: string): string[] => [
  'setup',
  '--non-interactive',
  '--source',
  'folder',
  '--folder',
  join(d, 'exports'),
  '--out',
  out,
  '--data-dir',
  join(d, 'data'),
];

describe('setup --non-interactive', () => {
  it('tests a real MLLP port, PostgreSQL, SFTP and folder, and writes a config the loader accepts with no secret in it', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const data = join(d, 'data');
    const hl7Port = await freePort();
    const remote = ssh.mkdir('exports-1');
    writeFileSync(join(d, 'client.key'), ssh.clientKey);
    const r = await run(
      [
        'setup',
        '--non-interactive',
        '--source',
        'hl7',
        '--hl7-port',
        String(hl7Port),
        '--hl7-host',
        '127.0.0.1',
        '--source',
        'db',
        '--db-url',
        `postgres://${db.user}@127.0.0.1:${pg.port}/${db.database}`,
        '--db-password-env',
        'PS_PW',
        '--source',
        'folder',
        '--folder',
        join(d, 'exports'),
        '--source',
        'sftp',
        '--sftp-url',
        `sftp://${ssh.user}@127.0.0.1:${ssh.port}${remote}`,
        '--sftp-host-key',
        ssh.hostKeySha256,
        '--sftp-key-file',
        join(d, 'client.key'),
        '--out',
        out,
        '--data-dir',
        data,
        '--gateway-id',
        'gw-setup-1',
        '--no-doctor',
      ],
      { PS_PW: db.password },
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines.filter((l) => l.startsWith('step ')).map((l) => l.replace(/:.*/, ''))).toEqual([
      'step 1/7',
      'step 2/7',
      'step 3/7',
      'step 4/7',
      'step 5/7',
      'step 6/7',
      'step 7/7',
    ]);
    expect(lines).toContain(
      `  HL7 MLLP listener on 127.0.0.1:${hl7Port} (profile generic): ok — 127.0.0.1:${hl7Port} is free to listen on; set the PMS's HL7 interface to send to this machine's address, port ${hl7Port}`,
    );
    expect(lines).toContain(
      `  database db (postgres ${db.user}@127.0.0.1:${pg.port}/${db.database}): ok — connected read-only; every stream is ready`,
    );
    expect(lines).toContain(`  folder folder (${join(d, 'exports')}, profile optical-csv): ok — readable and writable, 0 file(s) waiting`);
    expect(lines).toContain(
      `  SFTP sftp (${ssh.user}@127.0.0.1:${ssh.port}${remote}, profile optical-csv): ok — logged in (host key ${ssh.hostKeySha256}); 0 file(s) in ${remote}`,
    );
    expect(lines).toContain(`setup done: config ${out}; 2 secret(s) in credentials files, none in the config`);

    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain(db.password);
    expect(text).not.toContain('PRIVATE KEY');
    const config = loadConfig({ file: out, env: {} });
    expect(config.gateway.id).toBe('gw-setup-1');
    expect(config.gateway.dataDir).toBe(data);
    expect(config.hl7).toMatchObject({ enabled: true, host: '127.0.0.1', port: hl7Port });
    expect(config.databases).toHaveLength(1);
    expect(config.databases[0]).toMatchObject({
      id: 'db',
      engine: 'postgres',
      profile: 'practice-studio',
      host: '127.0.0.1',
      port: pg.port,
      database: db.database,
      user: db.user,
      password: db.password,
    });
    expect(config.files.map((f) => [f.id, f.source, f.dir])).toEqual([
      ['folder', 'folder', join(d, 'exports')],
      ['sftp', 'sftp', remote],
    ]);
    // the loader's ${file:} drops one trailing newline, and the probe logged in with the key as loaded
    expect(config.files[1].sftp.privateKey).toBe(ssh.clientKey.replace(/\n$/, ''));
    expect(readFileSync(join(data, 'credentials', 'sftp.privateKey'), 'utf8')).toBe(ssh.clientKey);
    expect(config.files[1].sftp.hostKeySha256).toBe(ssh.hostKeySha256);
    // each secret in its own credentials file, mode 0600, referenced by ${file:}
    expect(text).toContain(`password: \${file:${join(data, 'credentials', 'db.password')}}`);
    expect(readdirSync(join(data, 'credentials')).sort()).toEqual(['db.password', 'sftp.privateKey']);
    expect(statSync(join(data, 'credentials', 'db.password')).mode & 0o777).toBe(0o600);
  }, 60_000);

  it('says exactly what failed for an unreachable database, and writes nothing', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const closed = await freePort();
    const r = await run([
      'setup',
      '--non-interactive',
      '--source',
      'db',
      '--db-url',
      `postgres://reader@127.0.0.1:${closed}/practice`,
      '--out',
      out,
      '--data-dir',
      join(d, 'data'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      `  database db (postgres reader@127.0.0.1:${closed}/practice): FAILED — cannot connect: connect ECONNREFUSED 127.0.0.1:${closed}`,
      '  what to do: check the host, port, database name, user and password (a read-only user is enough), and that this machine may reach the server',
      'error: 1 source(s) failed their test: nothing written. Fix them, or add --keep-failed to write the config anyway',
      '',
    ]);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(d, 'data', 'credentials'))).toBe(false);
  });

  it('refuses an MLLP port another program listens on, and a folder that does not exist', async () => {
    const d = fresh();
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await run([
        'setup',
        '--non-interactive',
        '--source',
        'hl7',
        '--hl7-host',
        '127.0.0.1',
        '--hl7-port',
        String(port),
        '--source',
        'folder',
        '--folder',
        join(d, 'missing'),
        '--out',
        join(d, 'gw.yaml'),
        '--data-dir',
        join(d, 'data'),
      ]);
      expect(r.code).toBe(1);
      expect(r.err.split('\n')).toEqual([
        `  HL7 MLLP listener on 127.0.0.1:${port} (profile generic): FAILED — port ${port} on 127.0.0.1 is in use (EADDRINUSE): another program listens there`,
        '  what to do: stop that program (a gateway already running? see eyewear-gateway status), or choose another port and set the PMS to send there',
        `  folder folder (${join(d, 'missing')}, profile optical-csv): FAILED — no folder at ${join(d, 'missing')} (ENOENT)`,
        '  what to do: give the folder the PMS exports into (create it, or mount the share first)',
        'error: 2 source(s) failed their test: nothing written. Fix them, or add --keep-failed to write the config anyway',
        '',
      ]);
      expect(existsSync(join(d, 'gw.yaml'))).toBe(false);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('writes a config with a failed source only under --keep-failed, and says so', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const r = await run([
      'setup',
      '--non-interactive',
      '--source',
      'folder',
      '--folder',
      join(d, 'later'),
      '--keep-failed',
      '--out',
      out,
      '--data-dir',
      join(d, 'data'),
      '--no-doctor',
    ]);
    expect(r.code).toBe(0);
    expect(r.err.split('\n')).toEqual([
      `  folder folder (${join(d, 'later')}, profile optical-csv): FAILED — no folder at ${join(d, 'later')} (ENOENT)`,
      '  what to do: give the folder the PMS exports into (create it, or mount the share first)',
      `  warning: folder folder (${join(d, 'later')}, profile optical-csv) is in the config although its test FAILED (--keep-failed)`,
      '',
    ]);
    expect(loadConfig({ file: out, env: {} }).files[0].dir).toBe(join(d, 'later'));
  });

  it('never overwrites an existing config without --force, and keeps a backup with it', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const before = '# the practice config, hand-made\nversion: 2\ngateway:\n  id: gw-before\n';
    writeFileSync(out, before);
    const args = [...folderSetup(d, out), '--no-doctor'];
    const refused = await run(args);
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toBe(
      `error: ${out} exists: not overwritten, nothing written. Re-run with --force to replace it (a backup is kept), or choose another file with --out\n`,
    );
    expect(readFileSync(out, 'utf8')).toBe(before);

    const forced = await run([...args, '--force']);
    expect(forced.err).toBe('');
    expect(forced.code).toBe(0);
    const backups = readdirSync(d).filter((f) => f.startsWith('gw.yaml.') && f.endsWith('.bak'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(d, backups[0]), 'utf8')).toBe(before);
    expect(forced.out).toContain(`  wrote ${out} (backup ${join(d, backups[0])}); validated by loading it back\n`);
    expect(loadConfig({ file: out, env: {} }).files[0].dir).toBe(join(d, 'exports'));
  });

  it.skipIf(!corpus.present)(
    'tests a FHIR source with fhir check: refused until the key it made is registered, then written',
    async () => {
      const d = fresh();
      const out = join(d, 'gw.yaml');
      const data = join(d, 'data');
      const fhir: FhirServer = await startFhirServer({
        vendor: 'generic',
        resources: loadCorpus(['fhir/fhir-r4-examples'], { types: ['Patient'] }),
        clients: [],
      });
      try {
        const args = [
          'setup',
          '--non-interactive',
          '--source',
          'fhir',
          '--fhir-url',
          fhir.baseUrl,
          '--fhir-client-id',
          'ewml-setup',
          '--fhir-resources',
          'Patient',
          '--out',
          out,
          '--data-dir',
          data,
          '--no-doctor',
        ];
        const first = await run(args);
        expect(first.code).toBe(1);
        const jwksFile = join(data, 'public', 'fhir', 'jwks.json');
        expect(first.err).toContain('FAILED: the token endpoint refused the client assertion (invalid_client)');
        expect(first.err).toContain(
          `  FHIR fhir (generic, ${fhir.baseUrl}): FAILED — the FHIR check failed (the step is listed above)\n  what to do: check the base URL and the client id; the key pair this gateway signs with is made: register its public JWKS (${jwksFile}) with the vendor for client ewml-setup, then test again\n`,
        );
        expect(existsSync(out)).toBe(false);
        // the technician registers the JWKS setup made, and runs it again: the same key is used
        await fhir.stop();
        const registered = await startFhirServer({
          vendor: 'generic',
          resources: loadCorpus(['fhir/fhir-r4-examples'], { types: ['Patient'] }),
          clients: [{ clientId: 'ewml-setup', jwks: JSON.parse(readFileSync(jwksFile, 'utf8')) }],
        });
        try {
          const second = await run(args.map((a) => (a === fhir.baseUrl ? registered.baseUrl : a)));
          expect(second.err).toBe('');
          expect(second.code).toBe(0);
          expect(second.out).toContain(
            `  FHIR fhir (generic, ${registered.baseUrl}): ok — discovery, token, /metadata and a page of each resource are fine\n`,
          );
          const config = loadConfig({ file: out, env: {} });
          expect(config.fhir.map((f) => [f.id, f.baseUrl, f.clientId, f.resources])).toEqual([
            ['fhir', registered.baseUrl, 'ewml-setup', ['Patient']],
          ]);
        } finally {
          await registered.stop();
        }
      } finally {
        await fhir.stop().catch(() => undefined);
      }
    },
    60_000,
  );

  it('says a config it cannot write, with what to do, and leaves nothing of the run behind', async () => {
    const d = fresh();
    writeFileSync(join(d, 'a-file'), '');
    const out = join(d, 'a-file', 'gw.yaml');
    const r = await run([...folderSetup(d, out)]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error: cannot write ${out} or its credentials files (ENOTDIR): nothing written. Check the disk and the folders, then run setup again\n`,
    );
    expect(r.out.endsWith('step 4/7: write the config\n')).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['a-file', 'exports']);
  });

  it('runs doctor by name at the end', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const r = await run([...folderSetup(d, out)]);
    expect(r.code).toBe(0);
    const after = r.out.slice(r.out.indexOf('step 7/7: doctor\n'));
    // the doctor's own report (its wording is the doctor's), on the file setup wrote
    expect(after).toContain(out);
    expect(after).toContain(join(d, 'exports'));
    expect(after).toMatch(/\n {2}doctor's exit code: \d+\n/);
  }, 30_000);
});

describe('setup with enrolment against the reference cloud', () => {
  let https: HttpReferenceCloud;
  let enrolment: Awaited<ReturnType<typeof createEnrolmentCloud>>;
  let caFile: string;
  beforeAll(async () => {
    const pki = makeTestPki();
    caFile = join(dir, 'cloud-ca.pem');
    writeFileSync(caFile, pki.ca);
    const payload = makeCloudKeys();
    enrolment = await createEnrolmentCloud({
      brokerCaPem: makeTestPki().ca,
      // no broker runs here: enrolment only names it
      brokerUrl: 'mqtts://127.0.0.1:8883',
      payloadKeyPem: payload.publicPem,
      commandKeyPem: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    https = await startHttpReferenceCloud({ privateKey: payload.privateKey, tls: { cert: pki.cert, key: pki.key }, enrolment });
  }, 60_000);
  afterAll(async () => {
    await https?.stop();
  });

  it('writes the config, enrols with the one-time code (which points the config at the cloud), and keeps the secrets out of it', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const code = enrolment.issueCode({ gatewayId: 'gw-setup-enrolled', tenantId: 'acme-optical', practiceId: 'clinic-7' });
    const r = await run(
      [
        'setup',
        '--non-interactive',
        '--source',
        'db',
        '--db-url',
        `postgres://${db.user}@127.0.0.1:${pg.port}/${db.database}`,
        '--db-password-env',
        'PS_PW',
        '--out',
        out,
        '--data-dir',
        join(d, 'data'),
        '--enrol-code',
        code,
        '--cloud',
        https.url,
        '--cloud-ca',
        caFile,
        '--no-doctor',
      ],
      { PS_PW: db.password },
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('step 5/7: enrol with the cloud\n');
    expect(r.out).toContain('\n  enrolled\n');
    expect(enrolment.issued.map((c) => c.gatewayId)).toContain('gw-setup-enrolled');
    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain(db.password);
    const config = loadConfig({ file: out, env: {} });
    expect(config.gateway).toMatchObject({ id: 'gw-setup-enrolled', tenantId: 'acme-optical' });
    expect(config.relay.sink).toBe('mqtt');
    expect(config.databases[0].password).toBe(db.password);
  }, 60_000);

  it('goes on to the next steps when enrolment is refused, and says how to retry', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const r = await run([...folderSetup(d, out), '--enrol-code', 'NOT-A-CODE', '--cloud', https.url, '--cloud-ca', caFile, '--no-doctor']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('error GW_ENROLMENT_CODE_REFUSED: ');
    expect(r.err).toContain(`  enrol ended with exit code 1 (said above); retry: eyewear-gateway enrol CODE --cloud URL --config ${out}\n`);
    expect(r.out).toContain('step 6/7: install the service\n');
    expect(r.out).toContain(`setup finished with a failed step (said above): config ${out}`);
    expect(loadConfig({ file: out, env: {} }).relay.sink).toBe('file');
  }, 60_000);
});

describe('setup finds enrol, install and doctor by name', () => {
  const io = () => {
    const o = { out: [] as string[], err: [] as string[] };
    const cli: CliIo = {
      out: (s) => o.out.push(s),
      err: (s) => o.err.push(s),
      readFile: (p) => readFileSync(p, 'utf8'),
      loadConfig: (file) => loadConfig({ file, env: {} }),
      env: {},
    };
    return { o, cli };
  };

  it('passes the code, the cloud and the written config to enrol, and install only with --install', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const calls: string[][] = [];
    const recorder = (name: string): CliCommand => ({
      name,
      synopsis: name,
      summary: name,
      help: name,
      options: { cloud: { type: 'string' } },
      run: ({ positionals, values, configFile }) => {
        calls.push([name, ...positionals, String(values.cloud), String(configFile)]);
        return name === 'install' ? 1 : 0;
      },
    });
    const list = [recorder('enrol'), recorder('install')];
    const setup = createSetupCommand({ commands: () => list });
    const { o, cli } = io();
    const base = [...folderSetup(d, out)];
    const code = await runCli([...base, '--enrol-code', 'ABCD-1234', '--cloud', 'https://127.0.0.1:9/enrol', '--install'], cli, [setup]);
    expect(calls).toEqual([
      ['enrol', 'ABCD-1234', 'https://127.0.0.1:9/enrol', out],
      ['install', 'undefined', out],
    ]);
    // install failed: setup says so and exits 1; doctor is not in this list
    expect(code).toBe(1);
    expect(o.err).toContain(`  install ended with exit code 1 (said above); retry: eyewear-gateway install --config ${out}`);
    expect(o.out).toContain('  enrolled');
    expect(o.out).toContain(`  not in this build (no \`doctor\` command); check with: eyewear-gateway check-config ${out}`);
  });

  it('refuses incomplete flags with what each needs (exit 2), before anything is tested or written', async () => {
    const d = fresh();
    const setup = createSetupCommand({ commands: () => [] });
    const base = ['setup', '--non-interactive', '--out', join(d, 'gw.yaml'), '--data-dir', join(d, 'data')];
    const cases: Array<[string[], string]> = [
      [[], 'setup: setup --non-interactive needs at least one --source (hl7, db, folder, sftp, fhir)'],
      [['--source', 'db'], 'setup: source db #1 needs its own --db-url (the k-th --source db takes the k-th --db-url)'],
      [
        ['--source', 'db', '--db-url', 'oracle://h/x'],
        'setup: --db-url: unknown database kind "oracle": use postgres, mariadb (mysql), mssql or sqlite',
      ],
      [['--source', 'hl7', '--hl7-port', '70000'], 'setup: --hl7-port needs a port number 1-65535, got "70000"'],
      [
        ['--source', 'sftp', '--sftp-url', 'sftp://u@h/x', '--sftp-password-env', 'P'],
        "setup: source sftp #1 needs --sftp-host-key SHA256:… (the server's host key fingerprint: ssh-keyscan -p 22 h | ssh-keygen -lf -, confirmed with the practice's IT)",
      ],
      [
        ['--source', 'folder', '--folder', d, '--enrol-code', 'C'],
        'setup: --enrol-code needs --cloud URL (the enrolment endpoint, from the cloud team)',
      ],
      [['--source', 'nfs'], 'setup: --source is one of hl7, db, folder, sftp, fhir; got "nfs"'],
    ];
    for (const [extra, message] of cases) {
      const { o, cli } = io();
      expect(await runCli([...base, ...extra], cli, [setup])).toBe(2);
      expect(o.err).toEqual([message]);
      expect(o.out).toEqual([]);
    }
    expect(existsSync(join(d, 'gw.yaml'))).toBe(false);
  });

  it('takes a password given in --db-url as the secret, warns that it was seen, and keeps it out of the YAML', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const setup = createSetupCommand({ commands: () => [] });
    const { o, cli } = io();
    const url = `postgres://${db.user}:${encodeURIComponent(db.password)}@127.0.0.1:${pg.port}/${db.database}`;
    const code = await runCli(
      ['setup', '--non-interactive', '--source', 'db', '--db-url', url, '--out', out, '--data-dir', join(d, 'data'), '--no-doctor'],
      cli,
      [setup],
    );
    expect(o.err).toEqual([
      'warning: the database password was given in --db-url, where the process list shows it; prefer --db-password-env VAR',
    ]);
    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8')).not.toContain(db.password);
    expect(loadConfig({ file: out, env: {} }).databases[0].password).toBe(db.password);
  });

  it('says when this build has no enrol command, and goes on', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const { o, cli } = io();
    const setup = createSetupCommand({ commands: () => [] });
    const code = await runCli([...folderSetup(d, out), '--enrol-code', 'X1', '--cloud', 'https://127.0.0.1:9/'], cli, [setup]);
    expect(code).toBe(0);
    expect(o.out).toContain('  not in this build (no `enrol` command): the gateway runs with its local file sink until it is enrolled');
    expect(existsSync(out)).toBe(true);
  });
});

describe('detection', () => {
  it('reports what answers on the ports it looks at, as hints', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const hl7Port = (busy.address() as { port: number }).port;
    const closed = await freePort();
    try {
      const hints = await detect({ hl7Port, dbPorts: { postgres: pg.port, mariadb: closed, mssql: closed } });
      expect(hints.map((h) => h.what)).toEqual([
        `something already listens on 127.0.0.1:${hl7Port}, the usual HL7 MLLP port (another gateway or an interface engine?): this gateway will need another port, or that program stopped`,
        `something answers on 127.0.0.1:${pg.port}, PostgreSQL's usual port (perhaps the PMS database; only a login will tell)`,
      ]);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });
});

describe('setup in a terminal', () => {
  it('asks with defaults, hides the password, offers to re-enter a failed source, and writes the config', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const hl7Port = await freePort();
    const t = terminal(`${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --no-doctor`);
    await t.answer('Gateway id (from the cloud team) [gw-local]: ', 'gw-tty');
    await t.answer('Tenant id [local]: ', '');
    await t.answer('Practice id [local]: ', 'practice-9');
    await t.answer(`Data folder [${join(d, 'data')}]: `, '');
    await t.answer('Sources, comma-separated (hl7, db, folder, sftp, fhir) [', 'hl7,db,folder');
    await t.answer('Address to listen on (0.0.0.0: every network of this machine) [0.0.0.0]: ', '127.0.0.1');
    await t.answer('MLLP port [', String(hl7Port));
    await t.answer('PMS/EHR profile (', '');
    await t.answer('Database engine (postgres, mariadb, mssql, sqlite) [', 'postgres');
    await t.answer('Server [127.0.0.1]: ', '');
    await t.answer('Port [', String(pg.port));
    await t.answer('Database name: ', db.database);
    await t.answer('Practice Studio schema [ps]: ', '');
    await t.answer('User (read-only is enough): ', db.user);
    await t.answer('Password (not shown; kept out of the config file): ', 'wrong-password-typed');
    // the failure, what to do, and the choice; re-entering keeps the answers as defaults
    await t.answer('[r]e-enter, [s]kip this source, or [k]eep it although it failed [r]: ', '');
    await t.answer('Database engine (postgres, mariadb, mssql, sqlite) [postgres]: ', '');
    await t.answer('Server [127.0.0.1]: ', '');
    await t.answer(`Port [${pg.port}]: `, '');
    await t.answer(`Database name [${db.database}]: `, '');
    await t.answer('Practice Studio schema [ps]: ', '');
    await t.answer(`User (read-only is enough) [${db.user}]: `, '');
    await t.answer('Password (not shown; kept out of the config file): ', db.password);
    await t.answer('Folder the PMS exports into: ', join(d, 'exports'));
    await t.answer('Export layout (', '');
    await t.answer(`Write ${out}? (y/n) [y]: `, '');
    await t.answer('Enrolment code from the cloud team (Enter to skip): ', '');
    await t.answer('Install and start the gateway as a service now? (y/n) [n]: ', '');
    expect(await t.closed).toBe(0);
    const screen = t.text();
    expect(screen).toContain(
      `  database db (postgres ${db.user}@127.0.0.1:${pg.port}/${db.database}): FAILED — cannot connect: password authentication failed for user "${db.user}"\n`,
    );
    expect(screen).toContain(
      `  database db (postgres ${db.user}@127.0.0.1:${pg.port}/${db.database}): ok — connected read-only; every stream is ready\n`,
    );
    // typed without echo: neither password reached the screen
    expect(screen).not.toContain(db.password);
    expect(screen).not.toContain('wrong-password-typed');
    expect(screen).toContain(`setup done: config ${out}; 1 secret(s) in credentials files, none in the config`);
    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain(db.password);
    const config = loadConfig({ file: out, env: {} });
    expect(config.gateway).toMatchObject({ id: 'gw-tty', tenantId: 'local', practiceId: 'practice-9' });
    expect(config.hl7).toMatchObject({ enabled: true, host: '127.0.0.1', port: hl7Port, profile: 'generic' });
    expect(config.databases[0]).toMatchObject({ engine: 'postgres', port: pg.port, user: db.user, password: db.password });
    expect(config.files[0]).toMatchObject({ id: 'folder', source: 'folder', dir: join(d, 'exports'), profile: 'optical-csv' });
  }, 90_000);

  it("shows the SFTP server's host key to compare, pins it on yes, and logs in with the key file", async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const remote = ssh.mkdir('exports-tty');
    writeFileSync(join(d, 'client.key'), ssh.clientKey);
    const t = terminal(
      `${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --gateway-id gw-sftp --tenant local --practice local --no-doctor`,
    );
    await t.answer('Gateway id (from the cloud team) [gw-sftp]: ', '');
    await t.answer('Tenant id [local]: ', '');
    await t.answer('Practice id [local]: ', '');
    await t.answer('Data folder [', '');
    await t.answer('Sources, comma-separated (hl7, db, folder, sftp, fhir) [', 'sftp');
    await t.answer('SFTP server: ', '127.0.0.1');
    await t.answer('Port [22]: ', String(ssh.port));
    await t.answer('User: ', ssh.user);
    await t.answer('Remote folder [/]: ', remote);
    await t.answer('Is it theirs? Pin it (y/n) [n]: ', 'y');
    await t.answer('Private key file (Enter to use a password instead): ', join(d, 'client.key'));
    await t.answer(`Private key file [${join(d, 'client.key')}]: `, '');
    await t.answer('Its passphrase (Enter for none; not shown): ', '');
    await t.answer('Export layout (', '');
    await t.answer(`Write ${out}? (y/n) [y]: `, '');
    await t.answer('Enrolment code from the cloud team (Enter to skip): ', '');
    await t.answer('Install and start the gateway as a service now? (y/n) [n]: ', '');
    expect(await t.closed).toBe(0);
    const screen = t.text();
    expect(screen).toContain(`  The server's host key is ${ssh.hostKeySha256}.\n`);
    expect(screen).toContain(
      `  SFTP sftp (${ssh.user}@127.0.0.1:${ssh.port}${remote}, profile optical-csv): ok — logged in (host key ${ssh.hostKeySha256}); 0 file(s) in ${remote}\n`,
    );
    const text = readFileSync(out, 'utf8');
    expect(text).not.toContain('PRIVATE KEY');
    const config = loadConfig({ file: out, env: {} });
    expect(config.files[0].sftp).toMatchObject({ host: '127.0.0.1', port: ssh.port, username: ssh.user, hostKeySha256: ssh.hostKeySha256 });
    expect(config.files[0].sftp.privateKey).toBe(ssh.clientKey.replace(/\n$/, ''));
  }, 90_000);

  it('keeps a failed source only when told, saying so, and skips one on s', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const t = terminal(`${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --no-doctor`);
      await t.answer('Gateway id (from the cloud team) [gw-local]: ', '');
      await t.answer('Tenant id [local]: ', '');
      await t.answer('Practice id [local]: ', '');
      await t.answer('Data folder [', '');
      await t.answer('Sources, comma-separated (hl7, db, folder, sftp, fhir) [', 'folder,hl7');
      await t.answer('Folder the PMS exports into: ', join(d, 'not-mounted-yet'));
      await t.answer('Export layout (', '');
      await t.answer('[r]e-enter, [s]kip this source, or [k]eep it although it failed [r]: ', 'k');
      await t.answer('Address to listen on (0.0.0.0: every network of this machine) [0.0.0.0]: ', '127.0.0.1');
      await t.answer('MLLP port [', String(port));
      await t.answer('PMS/EHR profile (', '');
      await t.answer('[r]e-enter, [s]kip this source, or [k]eep it although it failed [r]: ', 's');
      await t.answer(`Write ${out}? (y/n) [y]: `, '');
      await t.answer('Enrolment code from the cloud team (Enter to skip): ', '');
      await t.answer('Install and start the gateway as a service now? (y/n) [n]: ', '');
      expect(await t.closed).toBe(0);
      const screen = t.text();
      expect(screen).toContain(
        `  kept: folder folder (${join(d, 'not-mounted-yet')}, profile optical-csv) goes into the config although its test FAILED\n`,
      );
      expect(screen).toContain('  skipped hl7\n');
      const config = loadConfig({ file: out, env: {} });
      expect(config.files.map((f) => f.dir)).toEqual([join(d, 'not-mounted-yet')]);
      expect(config.hl7.enabled).toBe(false);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  }, 60_000);

  it('stops cleanly on Ctrl-C with nothing written, and says how to start again', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const t = terminal(`${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --no-doctor`);
    await t.answer('Gateway id (from the cloud team) [gw-local]: ', '');
    await t.answer('Tenant id [local]: ', '\u0003', '');
    expect(await t.closed).toBe(1);
    expect(t.text()).toContain(
      'setup stopped: nothing was written. Run eyewear-gateway setup again to start over (or setup --non-interactive with flags)\n',
    );
    expect(existsSync(out)).toBe(false);
  }, 30_000);

  it('stops cleanly on Ctrl-D at a prompt, and on Ctrl-C while a test is running', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    const eof = terminal(`${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --no-doctor`);
    await eof.answer('Gateway id (from the cloud team) [gw-local]: ', '\u0004', '');
    expect(await eof.closed).toBe(1);
    expect(eof.text()).toContain('setup stopped: nothing was written.');

    // a server that takes the connection and never speaks SSH: the host-key read waits on it
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const t = terminal(`${process.execPath} ${bin} setup --out ${out} --data-dir ${join(d, 'data')} --no-doctor`);
      await t.answer('Gateway id (from the cloud team) [gw-local]: ', '');
      await t.answer('Tenant id [local]: ', '');
      await t.answer('Practice id [local]: ', '');
      await t.answer('Data folder [', '');
      await t.answer('Sources, comma-separated (hl7, db, folder, sftp, fhir) [', 'sftp');
      await t.answer('SFTP server: ', '127.0.0.1');
      await t.answer('Port [22]: ', String(port));
      await t.answer('User: ', 'someone');
      await t.answer('Remote folder [/]: ', '');
      // no prompt is open now: Ctrl-C reaches the process as SIGINT from the terminal
      await t.answer(`reading the host key of 127.0.0.1:${port} …`, '\u0003', '');
      expect(await t.closed).toBe(130);
      expect(t.text()).toContain('setup stopped: nothing was written. Run eyewear-gateway setup again to start over');
      expect(existsSync(out)).toBe(false);
    } finally {
      silent.close();
    }
  }, 60_000);

  it('asks before replacing an existing config, and leaves it alone on no', async () => {
    const d = fresh();
    const out = join(d, 'gw.yaml');
    writeFileSync(out, 'version: 2\n');
    const t = terminal(`${process.execPath} ${bin} setup --out ${out} --no-doctor`);
    await t.answer(`${out} exists. Replace it at step 4 (a backup is kept)? (y/n) [n]: `, '');
    expect(await t.closed).toBe(1);
    expect(t.text()).toContain(`stopped: ${out} exists: not overwritten, nothing written.`);
    expect(readFileSync(out, 'utf8')).toBe('version: 2\n');
    expect(readdirSync(d).filter((f) => f.endsWith('.bak'))).toEqual([]);
  }, 30_000);
});
