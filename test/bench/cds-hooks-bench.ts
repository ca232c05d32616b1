/**
 * CDS Hooks answer latency (`npx node test/bench/cds-hooks-bench.ts`, or section 7 of `npm run
 * bench`): the service on a read model of PATIENTS patients (a real sealed SQLite file), a test
 * EHR signing every request with a fresh RS384 JWT, REQUESTS `patient-view` calls one at a time
 * over a kept-alive TLS connection, each timed from send to the last byte of the answer. Baseline
 * in the same run: the same server's discovery (`GET /cds-services`: TLS, routing, JSON, no JWT and
 * no lookup), so the ratio is what verifying the token and reading the model add. Also the token
 * check and the lookup alone, in-process, and the read model's write cost per committed record.
 */
import { mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { loadConfig } from '../../config/load.ts';
import { createCdsHooksService } from '../../gateway/cds-hooks/index.ts';
import { createReadModel } from '../../gateway/cds-hooks/read-model.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createPartitionKeyer } from '../../gateway/crypto/partition-keyer.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import { createSilentLogger } from '../../gateway/logger.ts';
import { createMetrics } from '../../gateway/metrics.ts';
import { makeTestPki } from '../support/tls.ts';
import { hookRequest, startTestEhr } from '../gateway/cds-hooks/test-ehr.ts';

const PATIENTS = Number(process.env.CDS_BENCH_PATIENTS ?? 100_000);
const REQUESTS = Number(process.env.CDS_BENCH_REQUESTS ?? 2000);
const PUBLIC_URL = 'https://optical-gw.bench:8443';
const PV = `${PUBLIC_URL}/cds-services/eyewear-patient-view`;
const fmt = (n: number, d = 2) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function rxRecord(i: number, expiresAt: string): CanonicalRecord {
  const id = deterministicId('cds-bench', String(i));
  return {
    id,
    type: 'spectacle-rx',
    schemaVersion: '1.0',
    op: 'upsert',
    tenantId: 't',
    practiceId: 'p',
    gatewayId: 'g',
    source: { system: 'BENCH', adapter: 'hl7v2', sourceId: `rx${i}` },
    occurredAt: '2025-01-15T09:00:00Z',
    observedAt: '2025-01-15T09:00:00Z',
    data: {
      patient: { system: 'CLINIC', value: `M${i}` },
      issuedAt: '2025-01-15',
      expiresAt,
      cylinderConvention: 'minus',
      right: { sphere: -1 },
      left: { sphere: -1 },
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(name: string, xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${name.padEnd(34)} p50 ${fmt(percentile(s, 50))} ms  p95 ${fmt(percentile(s, 95))} ms  p99 ${fmt(percentile(s, 99))} ms  max ${fmt(s[s.length - 1])} ms  (n=${s.length})`;
}

/** Runs the whole measurement, printing each figure through `log`. */
export async function cdsHooksBench(log: (line: string) => void): Promise<void> {
  const pki = makeTestPki();
  const ehr = await startTestEhr();
  const dataDir = mkdtempSync(join(tmpdir(), 'ewml-cds-bench-'));
  const key = Buffer.alloc(32, 11);
  const sealer = createRecordSealer(key);
  const keyer = createPartitionKeyer(key);
  const expires = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);

  // the write side: what the read model costs per committed record (one transaction per 2,000)
  {
    const model = createReadModel({
      file: join(dataDir, 'cds-read-model.db'),
      sealer,
      keyer,
      clock: systemClock,
      logger: createSilentLogger(),
      maxPatients: PATIENTS * 2,
    });
    model.open();
    const t0 = performance.now();
    // pages of 500 committed records, the event loop turning between them as it does between commits
    for (let i = 0; i < PATIENTS; i += 500) {
      model.ingest(Array.from({ length: Math.min(500, PATIENTS - i) }, (_, k) => rxRecord(i + k, expires)));
      await new Promise((r) => setImmediate(r));
    }
    model.lookup([{ system: 'CLINIC', value: 'M0' }]); // writes what is queued
    const ms = performance.now() - t0;
    log(
      `read model: ${fmt(PATIENTS, 0)} patients written in ${fmt(ms / 1000)} s = ${fmt((ms * 1000) / PATIENTS)} µs per record (${fmt(PATIENTS / (ms / 1000), 0)} records/s)`,
    );
    const t1 = performance.now();
    for (let i = 0; i < REQUESTS; i++) model.lookup([{ system: 'CLINIC', value: `M${(i * 7919) % PATIENTS}` }]);
    log(`lookup alone (in-process): ${fmt(((performance.now() - t1) * 1000) / REQUESTS)} µs per lookup`);
    model.close();
  }

  const config = loadConfig({
    env: {},
    overrides: {
      cdsHooks: {
        enabled: true,
        port: 0,
        publicUrl: PUBLIC_URL,
        tls: { cert: pki.cert, key: pki.key },
        issuers: [{ iss: ehr.iss, jku: ehr.jku, identifierSystems: { 'urn:oid:1.2.3': 'CLINIC' } }],
        maxPatients: PATIENTS * 2,
      },
    },
  }).cdsHooks;
  const svc = createCdsHooksService({
    config,
    timezone: 'UTC',
    dataDir,
    sealer,
    partitionKeyer: keyer,
    clock: systemClock,
    logger: createSilentLogger(),
    metrics: createMetrics(),
  });
  svc.openReadModel();
  await svc.start();
  const port = svc.address()?.port ?? 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pki.ca });
  const call = (method: 'GET' | 'POST', path: string, body?: unknown, token?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          agent,
          headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });

  const pv = async (i: number) => {
    const id = `ehr-${i}`;
    const body = hookRequest('patient-view', id, {
      prefetch: { patient: { resourceType: 'Patient', id, identifier: [{ system: 'urn:oid:1.2.3', value: `M${(i * 7919) % PATIENTS}` }] } },
    });
    const token = await ehr.sign(PV); // signing is the EHR's cost: outside the timed span
    const t0 = performance.now();
    const r = await call('POST', '/cds-services/eyewear-patient-view', body, token);
    const ms = performance.now() - t0;
    if (r.status !== 200 || !r.text.includes('expires in 10 days')) throw new Error(`unexpected answer ${r.status} ${r.text}`);
    return ms;
  };
  const disc = async () => {
    const t0 = performance.now();
    const r = await call('GET', '/cds-services');
    if (r.status !== 200) throw new Error(`discovery ${r.status}`);
    return performance.now() - t0;
  };

  for (let i = 0; i < 200; i++) {
    await pv(i);
    await disc();
  }
  // interleaved, so both see the same machine state
  const answers: number[] = [];
  const discovery: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    answers.push(await pv(i + 1000));
    discovery.push(await disc());
  }
  log(summary('patient-view (JWT + lookup + card)', answers));
  log(summary('baseline: GET /cds-services', discovery));
  const med = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      50,
    );
  log(`ratio p50 patient-view / discovery: ${fmt(med(answers) / med(discovery))}`);
  log(`JWK Set fetches for ${REQUESTS + 200} verified tokens: ${ehr.fetches()}`);
  agent.destroy();
  await svc.stop();
  svc.closeReadModel();
  await ehr.stop();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await cdsHooksBench((s) => process.stdout.write(`${s}\n`));
