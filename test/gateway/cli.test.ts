/** The CLI as a user runs it: a child process, its stdout, stderr and exit code. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpus } from '../support/corpus.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { adtA04, siu } from '../support/hl7-fixtures.ts';
import { gatewayVersion } from '../../gateway/version.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ewml-cli-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], { encoding: 'utf8', cwd: dir, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
/** Async, for commands that talk to a gateway running in this same process (spawnSync would block it). */
const cliAsync = (...args: string[]) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], { cwd: dir });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.on('close', (code) => resolve({ code, out, err }));
  });
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('eyewear-gateway CLI', () => {
  it('prints help for every command and the version', () => {
    const h = cli('--help');
    expect(h.code).toBe(0);
    for (const c of ['start', 'check-config', 'status', 'preview', 'send', 'unseal', 'version']) {
      expect(h.out).toContain(c);
      const sub = cli(c, '--help');
      expect(sub.code).toBe(0);
      expect(sub.out).toContain(`eyewear-gateway ${c}`);
    }
    expect(cli('version').out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('start --help says one gateway per data folder and exit 1 when nothing could start', () => {
    const r = cli('start', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('a second start on the same folder stops with GW_DATA_DIR_IN_USE');
    expect(r.out).toContain('Exit 1 when nothing could start (no source and no admin API).');
  });

  it('exits 2 on usage errors', () => {
    expect(cli('frobnicate').code).toBe(2);
    expect(cli('check-config').code).toBe(2);
    expect(cli('preview', '--bogus-flag', 'x').code).toBe(2);
  });

  it('check-config: 0 for a valid file, 3 with every bad field listed', () => {
    expect(cli('check-config', file('ok.yaml', 'hl7:\n  port: 2600\n')).code).toBe(0);
    const bad = cli('check-config', file('bad.yaml', 'hl7:\n  port: -1\nadmin:\n  hots: x\n'));
    expect(bad.code).toBe(3);
    expect(bad.err).toContain('hl7.port');
    expect(bad.err).toContain('admin.hots');
  });

  it.skipIf(!corpus.present)(
    "preview reads export files too: CSV by the profile's kinds, FHIR from the corpus, XML through a files[] entry; bad rows named by file#row",
    () => {
      const csv = file(
        'patients_x.csv',
        'patient_id,last_name,first_name,birth_date,sex\nQ1,Sample,Ivy,05/06/1970,F\nQ2,Sample,Jon,99/99/1970,M\n',
      );
      const r = cli('preview', csv, '--profile', 'optical-csv');
      expect(r.code).toBe(5);
      expect(
        r.out
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { source: { sourceId: string } }).source.sourceId),
      ).toEqual(['patients/Q1']);
      expect(r.err).toContain(`${csv}#2: error GW_MAP_FAILED: patients.birthDate is not a date`);
      expect(r.err).toContain('preview: 2 message(s)/row(s), 1 record(s), 1 with errors');
      const fhir = cli('preview', corpus.path('fhir', 'fhir-r4-examples', 'VisionPrescription-33123.json'));
      expect(fhir.code).toBe(0);
      expect((JSON.parse(fhir.out.trim()) as { type: string }).type).toBe('spectacle-rx');
      const xml = file(
        'om.xml',
        '<EWExport><EWSpecRx RxID="X1" RxType="Final"><PatientID>7</PatientID><RxDate>2026-01-02</RxDate><OD><Sphere>-1.00</Sphere></OD><OS><Sphere>-1.25</Sphere></OS></EWSpecRx></EWExport>',
      );
      const cfg = file('om.yaml', `files:\n  - id: om\n    dir: ${dir}\n    profile: officemate-xml\n`);
      const x = cli('preview', xml, '--source', 'om', '--config', cfg);
      expect(x.code).toBe(0);
      expect(JSON.parse(x.out.trim())).toMatchObject({ type: 'spectacle-rx', source: { system: 'OFFICEMATE', sourceId: 'EWSpecRx/X1' } });
      expect(cli('preview', csv, '--profile', 'nonsense').code).toBe(2);
    },
  );

  it('preview prints one canonical record per line and touches no outbox', () => {
    const f = file('two.hl7', `${adtA04({ id: 'PV1' })}\n${siu({ id: 'PV2' })}\n`);
    const r = cli('preview', f, '--profile', 'practice-studio');
    expect(r.code).toBe(0);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['patient', 'provider', 'provider', 'appointment']);
    expect(r.err).toContain('2 message(s)/row(s), 4 record(s), 0 with errors');
    expect(spawnSync('ls', [dir]).stdout.toString()).not.toContain('data');
  });

  it('preview exits 5 and says why when a message fails', () => {
    const r = cli('preview', file('bad.hl7', adtA04().replace('MRN001^^^CLINIC^MR', '')));
    expect(r.code).toBe(5);
    expect(r.err).toMatch(/error GW_MAP_FAILED: PID-3 patient identifier is missing at PID-1-3/);
    const p = cli('preview', file('junk.hl7', 'MSH|^^^^|x'));
    expect(p.code).toBe(5);
    expect(p.err).toContain('GW_PARSE_FAILED');
  });

  describe('against a running gateway', () => {
    let h: Harness;
    let cfg: string;
    beforeAll(async () => {
      h = await startHarness({});
      cfg = file('running.yaml', `gateway:\n  dataDir: ${h.dataDir}\nhl7:\n  port: ${h.mllpPort}\nadmin:\n  port: ${h.adminPort}\n`);
    });
    afterAll(async () => {
      await h.stop();
    });

    it("send delivers a file's messages over MLLP and prints the answers", async () => {
      const r = await cliAsync('send', file('s.hl7', adtA04({ id: 'SEND1' })), '--config', cfg);
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe('SEND1 AA');
    });

    it('status reads the admin API with the stored token', async () => {
      const r = await cliAsync('status', '--config', cfg);
      expect(r.code).toBe(0);
      expect(r.out).toContain('adapter hl7v2: up');
      expect(r.out).toMatch(/counts: accepted \d+/);
      const j = JSON.parse((await cliAsync('status', '--json', '--config', cfg)).out) as { sink: { kind: string } };
      expect(j.sink.kind).toBe('file');
    });

    it("status says the gateway is ready, and that it checked it is this config's gateway (its id, data folder and the x-ewml-gateway header)", async () => {
      const r = await cliAsync('status', '--config', cfg);
      expect(r.code).toBe(0);
      expect(r.out.split('\n')[1]).toBe('ready: yes');
      const j = JSON.parse((await cliAsync('status', '--json', '--config', cfg)).out) as {
        gateway: { dataDir: string; pid: number };
        ready: unknown;
      };
      expect(j.gateway).toMatchObject({ dataDir: h.dataDir, pid: process.pid });
      expect(j.ready).toEqual({ ready: true, reasons: [], version: gatewayVersion(), pid: process.pid });
    });

    it('unseal turns the file sink output back into canonical records', async () => {
      const { readdirSync } = await import('node:fs');
      const { waitFor } = await import('../support/net.ts');
      await waitFor(
        () => {
          try {
            return readdirSync(h.gw.parts.paths.fileSinkDir).length > 0;
          } catch {
            return false;
          }
        },
        10_000,
        'file sink output',
      );
      const f = join(h.gw.parts.paths.fileSinkDir, readdirSync(h.gw.parts.paths.fileSinkDir)[0]);
      const r = cli('unseal', f, '--config', cfg);
      expect(r.code).toBe(0);
      // one canonical record per output line: a bundle's line gives each of its records
      const { readFileSync } = await import('node:fs');
      const expected = readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .flatMap((l) => {
          const row = JSON.parse(l) as { id: string; ids?: string[] };
          return row.ids ?? [row.id];
        });
      const records = r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; schemaVersion: string });
      expect(records.map((x) => x.id)).toEqual(expected);
      expect(records.every((x) => x.schemaVersion === '1.0')).toBe(true);
    });
  });

  it('send to the configured port exits 4 and sends nothing when another program holds it (and the admin port)', async () => {
    const { createServer } = await import('node:net');
    const { createServer: createHttpServer } = await import('node:http');
    const { mkdirSync } = await import('node:fs');
    const { freePort } = await import('../support/net.ts');
    // another program: a TCP listener on the MLLP port (counting connections) and a plain HTTP server on the admin port
    let connections = 0;
    const mllp = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    const http = createHttpServer((_req, res) => {
      res.end('{}');
    });
    const [mllpPort, adminPort] = [await freePort(), await freePort()];
    await new Promise<void>((r) => mllp.listen(mllpPort, '127.0.0.1', r));
    await new Promise<void>((r) => http.listen(adminPort, '127.0.0.1', r));
    try {
      const dataDir = join(dir, 'other-program');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'admin.token'), 'a-token-of-this-config\n');
      const cfg = file('other.yaml', `gateway:\n  dataDir: ${dataDir}\nhl7:\n  port: ${mllpPort}\nadmin:\n  port: ${adminPort}\n`);
      const r = await cliAsync('send', file('o.hl7', adtA04({ id: 'OTHER1' })), '--config', cfg);
      expect(r.code).toBe(4);
      expect(r.err).toContain(`something answers at http://127.0.0.1:${adminPort} (HTTP 200) but it is not an eyewear gateway`);
      expect(r.err).toContain(`nothing was sent. To send to 127.0.0.1:${mllpPort} without this check, give --host and --port.`);
      expect(r.out).toBe('');
      expect(connections).toBe(0);
    } finally {
      await new Promise((r) => mllp.close(r));
      await new Promise((r) => http.close(r));
    }
  });

  it("send exits 4 with /ready's reasons, sending nothing, when this config's gateway runs without its MLLP listener", async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const { mkdirSync } = await import('node:fs');
    const { freePort } = await import('../support/net.ts');
    const dataDir = join(dir, 'no-mllp');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'admin.token'), 'tok-no-mllp\n');
    // this config's gateway as its admin API shows it: same id and data folder, adapter hl7v2 down (its port was taken)
    const reason = 'hl7v2: EADDRINUSE (port in use)';
    const admin = createHttpServer((req, res) => {
      res.setHeader('x-ewml-gateway', 'gw-no-mllp');
      if (req.headers.authorization !== 'Bearer tok-no-mllp') {
        res.statusCode = 401;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          gateway: { id: 'gw-no-mllp', dataDir },
          ready: { ready: false, reasons: [reason] },
          adapters: { hl7v2: { status: 'down', error: 'EADDRINUSE' } },
        }),
      );
    });
    const [adminPort, mllpPort] = [await freePort(), await freePort()];
    await new Promise<void>((r) => admin.listen(adminPort, '127.0.0.1', r));
    try {
      const cfg = file(
        'no-mllp.yaml',
        `gateway:\n  id: gw-no-mllp\n  dataDir: ${dataDir}\nhl7:\n  port: ${mllpPort}\nadmin:\n  port: ${adminPort}\n`,
      );
      const r = await cliAsync('send', file('m.hl7', adtA04({ id: 'NOMLLP1' })), '--config', cfg);
      expect(r.code).toBe(4);
      expect(r.err).toContain(
        `this config's gateway runs, but its MLLP listener (adapter hl7v2) is not up (down): ${reason}. Nothing was sent`,
      );
      expect(r.out).toBe('');
    } finally {
      await new Promise((r) => admin.close(r));
    }
  });

  it('send to the configured port exits 4 when no gateway of this config runs', () => {
    const cfg = file('none-send.yaml', `gateway:\n  dataDir: ${dir}/nodata-send\nadmin:\n  port: 1\n`);
    const r = cli('send', file('n.hl7', adtA04({ id: 'NONE1' })), '--config', cfg);
    expect(r.code).toBe(4);
    expect(r.err).toContain(`no admin token at ${dir}/nodata-send/admin.token`);
    expect(r.err).toContain("what to do: give the running gateway's config (--config FILE)");
    expect(r.err).toContain('nothing was sent.');
  });

  it('a config upgraded in memory is a warning on the terminal with what to do, not a Node process warning', () => {
    const old = file('v1-preview.yaml', 'folders:\n  - id: drop\n    dir: /srv/drop\n');
    const r = cli('preview', file('w.hl7', adtA04({ id: 'WARN1' })), '--config', old);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(
      /^warning version: version 1, upgraded in memory \(.+\)\n {2}what to do: run `eyewear-gateway migrate-config .+v1-preview\.yaml` to upgrade the file \(it keeps a backup\)\n/,
    );
    expect(r.err).not.toContain('ConfigWarning');
    expect(r.err).not.toContain('(node:');
  });

  it('status exits 4 with advice when no gateway runs', () => {
    const cfg = file('none.yaml', `gateway:\n  dataDir: ${dir}/nodata\nadmin:\n  port: 1\n`);
    const r = cli('status', '--config', cfg);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/no admin token|not reachable/);
  });
});

describe('status lines for a database source', () => {
  it("shows each stream's first-load progress: rows done of total, rate, time left", async () => {
    const { adapterLines } = await import('../../cli/index.ts');
    const lines = adapterLines('ps', {
      status: 'up',
      detail: {
        state: 'first load',
        'charges.phase': 'initial',
        'charges.rowsDone': 250000,
        'charges.rowsTotal': 1000000,
        'charges.rowsPerSecond': 20000,
        'charges.secondsLeft': 38,
        'patients.phase': 'incremental',
        'patients.rowsDone': 5000,
      },
    });
    expect(lines).toEqual([
      'adapter ps: up {"state":"first load"}',
      '  charges: first load 250,000 / 1,000,000 rows, 20,000 rows/s, ~38 s left',
      '  patients: incremental, first load done (5,000 rows)',
    ]);
  });
});
