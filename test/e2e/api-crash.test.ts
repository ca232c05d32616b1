/**
 * Rule 1 for an API source: a child gateway reading DrChrono's patients (the simulator, in this
 * process) is killed with SIGKILL mid-page — twice while a page request waits for its answer, twice
 * just after an answer was written (while the gateway maps and commits it). After the last restart
 * the reference cloud holds every patient the API has — none missing — because each page's rows
 * and the next link after it commit together; the restarts go on from the stored link (far fewer
 * page requests than a run from the start after each kill), and each start's refresh uses the
 * refresh token the previous one rotated and sealed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { newStore, startHttpReferenceCloud, type HttpReferenceCloud, type ReceivedStore } from '../reference-cloud/reference-cloud.ts';
import { drchronoPatient, startDrchronoSim, type DrchronoSim } from '../support/api-sim/index.ts';
import { childGateway } from '../support/child-gateway.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { freePort, waitFor } from '../support/net.ts';

const PATIENTS = 2000;
const PAGE = 50;
const PAGES = PATIENTS / PAGE;

/** The patients (by source id) the cloud received. */
class PatientLedger extends Map<string, CanonicalRecord> {
  readonly ids = new Set<string>();
  override set(id: string, rec: CanonicalRecord): this {
    super.set(id, { id } as CanonicalRecord);
    if (rec.type === 'patient') this.ids.add(rec.source.sourceId);
    return this;
  }
}

describe('crash safety of an API source', () => {
  const cloudKeys = makeCloudKeys();
  const ledger = new PatientLedger();
  const dir = mkdtempSync(join(tmpdir(), 'ewml-apicrash-'));
  const config = join(dir, 'gateway.yaml');
  let adminPort = 0;
  let cloud: HttpReferenceCloud;
  let sim: DrchronoSim;
  const gw = childGateway(
    () => config,
    () => adminPort,
  );

  beforeAll(async () => {
    cloud = await startHttpReferenceCloud({
      privateKey: cloudKeys.privateKey,
      store: { ...newStore(), records: ledger, order: { push: () => 0 } as unknown as string[] } as ReceivedStore,
    });
    sim = await startDrchronoSim({ timezone: 'UTC' });
    for (let i = 0; i < PATIENTS; i++) sim.put('patients', drchronoPatient(i));
    adminPort = await freePort();
    const pub = join(dir, 'pub.pem');
    writeFileSync(pub, cloudKeys.publicPem);
    writeFileSync(
      config,
      [
        'gateway:',
        `  dataDir: ${dir}/data`,
        '  timezone: UTC',
        'log:',
        '  level: warn',
        'hl7:',
        '  enabled: false',
        'admin:',
        `  port: ${adminPort}`,
        'relay:',
        '  sink: https',
        '  batchSize: 500',
        '  backoffInitialMs: 50',
        '  backoffMaxMs: 500',
        '  idlePollMs: 100',
        'https:',
        `  url: ${cloud.url}`,
        'cloud:',
        `  publicKey: \${file:${pub}}`,
        'apis:',
        '  - id: drc',
        '    profile: drchrono',
        `    baseUrl: ${sim.origin}`,
        '    entities: [{ name: patients }]',
        `    pageSize: ${PAGE}`,
        '    pollIntervalMs: 60000',
        '    rateLimit: { perSecond: 200, perHour: 100000 }',
        '    auth:',
        `      tokenUrl: ${sim.origin}/o/token/`,
        `      clientId: ${sim.clientId}`,
        `      clientSecret: ${sim.clientSecret}`,
        `      refreshToken: ${sim.refreshToken()}`,
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    await gw.kill();
    await cloud?.stop();
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the child and SIGKILLs it at the `at`th page call after this start, before or after its answer. */
  async function runUntilKilled(at: number, when: 'before' | 'after'): Promise<void> {
    const base = sim.requests.filter((r) => !r.token).length;
    let killed = false;
    sim.hooks[when] = ({ n }) => {
      if (killed || n < base + at) return;
      killed = true;
      const pid = gw.pid();
      if (pid) process.kill(pid, 'SIGKILL');
    };
    await gw.start();
    await waitFor(() => killed, 30_000, `kill at page ${at}`);
    await gw.kill();
    sim.hooks[when] = undefined;
  }

  it(`has every one of ${PATIENTS.toLocaleString('en')} patients after four kills mid-page`, { timeout: 120_000 }, async () => {
    await runUntilKilled(6, 'before');
    await runUntilKilled(5, 'after');
    await runUntilKilled(7, 'before');
    await runUntilKilled(4, 'after');
    console.log(`after four kills: cloud has ${ledger.ids.size} patients`);
    expect(ledger.ids.size).toBeLessThan(PATIENTS); // the kills fell inside the first load
    await gw.start();
    await waitFor(() => ledger.ids.size >= PATIENTS, 60_000, 'every patient');
    await gw.kill();
    expect(ledger.ids.size).toBe(PATIENTS);
    // restarts went on from the stored next link: at most the four interrupted pages were asked twice
    const pages = sim.requests.filter((r) => !r.token && r.path === '/api/patients' && r.status === 200 && !r.query.since).length;
    expect(pages).toBeLessThanOrEqual(PAGES + 4);
    expect(pages).toBeGreaterThanOrEqual(PAGES);
    // five starts, five refreshes, each with the token the one before rotated: none refused
    const tokens = sim.requests.filter((r) => r.token);
    expect(tokens.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  });
});
