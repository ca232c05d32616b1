/** `eyewear-gateway reload` as a technician runs it against a gateway started with --config FILE. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { childGateway } from '../support/child-gateway.ts';
import { freePort } from '../support/net.ts';

const root = new URL('../../', import.meta.url).pathname;
const run = (...args: string[]) =>
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

const dir = mkdtempSync(join(tmpdir(), 'ewml-reload-cli-'));
const file = join(dir, 'gateway.yaml');
let gw: ReturnType<typeof childGateway> | undefined;
afterAll(async () => {
  await gw?.kill();
});

describe('eyewear-gateway reload', () => {
  it('applies a new MLLP port, names what waits for a restart, and refuses a file that does not validate', async () => {
    const [hl7a, hl7b, admin] = [await freePort(), await freePort(), await freePort()];
    const write = (hl7: number, extra = '') =>
      writeFileSync(
        file,
        `version: 2\ngateway:\n  dataDir: ${join(dir, 'data')}\n  timezone: UTC\nlog:\n  level: warn\nhl7:\n  port: ${hl7}\nadmin:\n  port: ${admin}\n${extra}`,
      );
    write(hl7a);
    let port = hl7a;
    gw = childGateway(
      () => file,
      () => port,
    );
    await gw.start();

    write(hl7b, 'outbox:\n  maxBytes: 2147483648\n');
    const ok = await run('reload', '--config', file);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(
      'config reloaded\n  applied now: none\n  sources started again: hl7v2; added: none; stopped: none\n  waiting for a restart: outbox.maxBytes\n',
    );
    port = hl7b;
    const st = await run('status', '--config', file, '--json');
    expect(st.code).toBe(0);
    expect(JSON.parse(st.out)).toMatchObject({
      adapters: { hl7v2: { status: 'up', detail: { port: hl7b } } },
      config: { waitingForRestart: ['outbox.maxBytes'] },
    });

    write(hl7a, 'relay:\n  batchSize: 0\n');
    const bad = await run('reload', '--config', file);
    // the command reads the file first (to find the admin port): an invalid file stops here, before the gateway is asked
    expect(bad.code).toBe(3);
    expect(bad.err).toContain('GW_CONFIG_INVALID: config is invalid\n  - relay.batchSize: expected integer to be greater or equal to 1');
    // status reads the file too: put the running one back to ask (the refused file asked for the old port)
    write(hl7b, 'outbox:\n  maxBytes: 2147483648\n');
    const after = await run('status', '--config', file, '--json');
    expect(JSON.parse(after.out)).toMatchObject({ adapters: { hl7v2: { status: 'up', detail: { port: hl7b } } } });
    expect(await gw.terminate(15_000)).toMatchObject({ code: 0, signal: null });
  }, 60_000);
});
