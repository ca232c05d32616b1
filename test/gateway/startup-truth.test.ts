/**
 * A start that tells the truth: a listener that cannot bind is named, with its cause and what to
 * do, in the banner, `/ready` and `status`; `start` exits 1 when nothing could start; `status`
 * says so when the port it reaches is not this config's gateway.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GATEWAY_HEADER } from '../../gateway/admin/admin-server.ts';
import { LEASE_FILE } from '../../gateway/data-lease.ts';
import { startProblem, startReportOf } from '../../gateway/status-report.ts';
import { childGateway, type ChildExit, type ChildGateway } from '../support/child-gateway.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';
import { freePort, waitFor, waitForPort } from '../support/net.ts';
import { gatewayVersion } from '../../gateway/version.ts';

const root = new URL('../../', import.meta.url).pathname;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Something else on a port: a bare TCP listener. */
async function occupy(port: number): Promise<Server> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((r, j) => {
    s.once('error', j);
    s.listen(port, '127.0.0.1', () => r());
  });
  cleanups.push(() => new Promise((r) => s.close(r)));
  return s;
}
const tempDir = () => mkdtempSync(join(tmpdir(), 'ewml-truth-'));
function configFile(dir: string, o: { dataDir: string; hl7Port: number; adminPort: number }): string {
  const f = join(dir, `gw-${o.hl7Port}-${o.adminPort}.yaml`);
  writeFileSync(f, `gateway:\n  dataDir: ${o.dataDir}\n  timezone: UTC\nhl7:\n  port: ${o.hl7Port}\nadmin:\n  port: ${o.adminPort}\n`);
  return f;
}
const cliAsync = (...args: string[]) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const c = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args]);
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
/** A CLI `start` child whose stderr and exit are kept. */
function child(cfg: string, readyPort: number) {
  const seen = { err: '', exits: [] as ChildExit[] };
  const g: ChildGateway = childGateway(
    () => cfg,
    () => readyPort,
    {
      onOutput: (stream, d) => {
        if (stream === 'stderr') seen.err += d;
      },
      onExit: (e) => seen.exits.push(e),
    },
  );
  cleanups.push(() => g.terminate(10_000));
  return { g, seen };
}
const inUse = (port: number, setting: string) =>
  `not started: GW_START_FAILED (EADDRINUSE) — 127.0.0.1:${port} is already in use by another program (or another gateway): free the port or change ${setting}`;

describe('start-up that tells the truth', () => {
  it('an MLLP port in use: /ready is false naming the listener, the cause and the setting; the admin API still runs and says who it is', async () => {
    const busy = await freePort();
    await occupy(busy);
    const h: Harness = await startHarness({ hl7: { port: busy } });
    cleanups.push(() => h.stop());
    const app = h.gw.parts.admin!.app;
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({
      ready: false,
      reasons: [`listener hl7v2 ${inUse(busy, 'hl7.port')}`],
      version: gatewayVersion(),
      pid: process.pid,
    });
    const report = h.gw.startReport();
    expect(report).toEqual({
      nothingRunning: false,
      components: [
        {
          component: 'adapter:hl7v2',
          role: 'source',
          state: 'failed',
          cause: 'EADDRINUSE',
          listen: { host: '127.0.0.1', port: busy, setting: 'hl7.port' },
        },
        { component: 'admin', role: 'admin', state: 'running', listen: { host: '127.0.0.1', port: 0, setting: 'admin.port' } },
      ],
    });
    const s = await app.inject({ url: '/status', headers: { authorization: `Bearer ${h.gw.parts.token}` } });
    expect(s.headers[GATEWAY_HEADER]).toBe(h.config.gateway.id);
    expect(s.json()).toMatchObject({
      gateway: { id: h.config.gateway.id, pid: process.pid, dataDir: h.dataDir },
      ready: { ready: false },
      adapters: { hl7v2: { status: 'down', error: 'EADDRINUSE' } },
    });
    // a refused request names the gateway too, so a client can tell "another gateway" from "another program"
    expect((await app.inject({ url: '/status' })).headers[GATEWAY_HEADER]).toBe(h.config.gateway.id);
  });

  it('start with the MLLP port in use: the banner names what did not start and what to do (not "running — MLLP"), and status shows it', async () => {
    const dir = tempDir();
    const busy = await freePort();
    await occupy(busy);
    const adminPort = await freePort();
    const cfg = configFile(dir, { dataDir: join(dir, 'data'), hl7Port: busy, adminPort });
    const { g, seen } = child(cfg, adminPort);
    await g.start();
    await waitFor(() => seen.err.includes('Ctrl-C stops'), 20_000, 'the start banner');
    expect(seen.err).not.toContain('running — MLLP');
    expect(seen.err).toContain(`started, but not all of it — MLLP NOT listening, admin http://127.0.0.1:${adminPort}`);
    expect(seen.err).toContain(`\n  listener hl7v2 ${inUse(busy, 'hl7.port')}\n`);
    const st = await cliAsync('status', '--config', cfg);
    expect(st.err).toBe('');
    expect(st.code).toBe(0);
    expect(st.out).toContain(`\nNOT ready: listener hl7v2 ${inUse(busy, 'hl7.port')}\n`);
    expect(st.out).toContain('adapter hl7v2: down (EADDRINUSE)');
    const exit = await g.terminate(15_000);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(existsSync(join(dir, 'data', LEASE_FILE))).toBe(false);
  }, 60_000);

  it('start with both the MLLP and the admin port in use: nothing could start, so it says both and exits 1, leaving no lease', async () => {
    const dir = tempDir();
    const [mllp, admin] = [await freePort(), await freePort()];
    await occupy(mllp);
    await occupy(admin);
    const cfg = configFile(dir, { dataDir: join(dir, 'data'), hl7Port: mllp, adminPort: admin });
    const { g, seen } = child(cfg, admin);
    g.spawn();
    await waitFor(() => seen.exits.length === 1, 30_000, 'the start to give up');
    expect(seen.exits[0]).toEqual({ code: 1, signal: null, signalledByTest: false });
    expect(seen.err).not.toContain('running —');
    expect(seen.err).toContain('did not start: nothing could run (no source and no admin API)');
    expect(seen.err).toContain(`\n  listener hl7v2 ${inUse(mllp, 'hl7.port')}\n`);
    expect(seen.err).toContain(`\n  admin API ${inUse(admin, 'admin.port')}\n`);
    expect(existsSync(join(dir, 'data', LEASE_FILE))).toBe(false);
  }, 60_000);

  it('status refuses to print what another program on the admin port answers', async () => {
    const dir = tempDir();
    const port = await freePort();
    const other: HttpServer = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((r) => other.listen(port, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => other.close(r)));
    const dataDir = join(dir, 'data');
    const cfg = configFile(dir, { dataDir, hl7Port: await freePort(), adminPort: port });
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'admin.token'), 'some-token\n');
    const r = await cliAsync('status', '--config', cfg);
    expect(r.code).toBe(4);
    expect(r.out).toBe('');
    expect(r.err).toContain(
      `something answers at http://127.0.0.1:${port} (HTTP 200) but it is not an eyewear gateway: another program holds admin.port ${port}`,
    );
  }, 30_000);

  it("status says so when the admin port is another gateway's (one with another data folder)", async () => {
    const h = await startHarness({});
    cleanups.push(() => h.stop());
    await waitForPort(h.adminPort, 5000);
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    const cfg = configFile(dir, { dataDir, hl7Port: await freePort(), adminPort: h.adminPort });
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'admin.token'), 'not-that-gateways-token\n');
    const r = await cliAsync('status', '--config', cfg);
    expect(r.code).toBe(4);
    expect(r.err).toContain(
      `an eyewear gateway (id ${h.config.gateway.id}) answers at http://127.0.0.1:${h.adminPort}, but not the one using the data folder ${dataDir}: it refused that folder's admin token`,
    );
    // the same token (a token set in the config) but another data folder: still not this one
    const cfg2 = join(dir, 'same-token.yaml');
    writeFileSync(cfg2, `gateway:\n  dataDir: ${dataDir}\nadmin:\n  port: ${h.adminPort}\n  token: ${h.gw.parts.token}\n`);
    const r2 = await cliAsync('status', '--config', cfg2);
    expect(r2.code).toBe(4);
    expect(r2.err).toContain(
      `the gateway answering at http://127.0.0.1:${h.adminPort} uses the data folder ${h.dataDir}, not ${dataDir}: it is not the gateway of this config`,
    );
  }, 30_000);

  it('says what to do for each bind failure, and "nothing running" only when every asked-for component is a listener that failed', () => {
    const listen = { host: '127.0.0.1', port: 104, setting: 'hl7.port' };
    expect(startProblem({ component: 'adapter:hl7v2', role: 'source', state: 'failed', cause: 'EACCES', listen })).toBe(
      'listener hl7v2 not started: GW_START_FAILED (EACCES) — not allowed to listen on 127.0.0.1:104 (ports below 1024 need privileges): choose another hl7.port',
    );
    expect(
      startProblem({
        component: 'admin',
        role: 'admin',
        state: 'failed',
        cause: 'EADDRNOTAVAIL',
        listen: { host: '10.9.9.9', port: 8480, setting: 'admin.port' },
      }),
    ).toBe('admin API not started: GW_START_FAILED (EADDRNOTAVAIL) — 10.9.9.9 is not an address of this machine: change admin.host');
    expect(startProblem({ component: 'adapter:pms', role: 'source', state: 'failed', cause: 'ECONNREFUSED' })).toBe(
      'source pms not started: GW_START_FAILED (ECONNREFUSED) — see the log for the cause and fix what it names',
    );
    const failed = { component: 'adapter:hl7v2', role: 'source', state: 'failed', cause: 'EADDRINUSE', listen } as const;
    const running = {
      component: 'admin',
      role: 'admin',
      state: 'running',
      listen: { host: '127.0.0.1', port: 8480, setting: 'admin.port' },
    } as const;
    expect(startReportOf([failed, running]).nothingRunning).toBe(false);
    expect(startReportOf([failed, { ...running, state: 'failed', cause: 'EADDRINUSE' }]).nothingRunning).toBe(true);
    // a database not reachable yet (the PC booted the gateway before the PMS) is retried: the gateway stays up
    const dbDown = { component: 'adapter:pms', role: 'source', state: 'failed', cause: 'ECONNREFUSED' } as const;
    expect(startReportOf([{ ...failed }, dbDown]).nothingRunning).toBe(false);
    expect(startReportOf([dbDown]).nothingRunning).toBe(false);
    // no source and no admin API by config: the gateway only relays its outbox, and that is not a failure
    expect(startReportOf([]).nothingRunning).toBe(false);
  });

  it("status says so when the gateway answering is not the process the data folder's lease names", async () => {
    const h = await startHarness({});
    cleanups.push(() => h.stop());
    const dir = tempDir();
    const cfg = configFile(dir, { dataDir: h.dataDir, hl7Port: h.mllpPort, adminPort: h.adminPort });
    expect((await cliAsync('status', '--config', cfg)).code).toBe(0);
    // another live process named as the folder's owner (as if this gateway ran on a folder it does not own)
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    cleanups.push(() => {
      other.kill('SIGKILL');
    });
    await new Promise((r) => other.once('spawn', r));
    const leaseFile = join(h.dataDir, LEASE_FILE);
    const before = existsSync(leaseFile) ? readFileSync(leaseFile, 'utf8') : undefined;
    writeFileSync(
      leaseFile,
      JSON.stringify({ pid: other.pid, startedAt: new Date().toISOString(), host: hostname(), token: 'c'.repeat(32) }),
    );
    cleanups.push(() => {
      if (before !== undefined) writeFileSync(leaseFile, before);
      else rmSync(leaseFile, { force: true });
    });
    const r = await cliAsync('status', '--config', cfg);
    expect(r.code).toBe(4);
    expect(r.err).toContain(
      `the gateway answering at http://127.0.0.1:${h.adminPort} is process ${process.pid}, but the data folder's lease names process ${other.pid}: it is not the gateway of this config`,
    );
  }, 30_000);
});
