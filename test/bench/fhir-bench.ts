/**
 * FHIR source figures (issue 15's proof line, issue 14's memory goal): a gateway process reads
 * 100,000 synthetic Patients from the test FHIR server (test/support/fhir-server/, in this
 * process) (a) by a Bulk Data export and (b) by paging through a search, and relays them to the
 * file sink. Each run is timed as the whole job including the relay's drain: from the moment the
 * gateway is up (its admin port answers; the admin API starts first and the sources after it)
 * until `ewml_records_delivered_total` reaches the count. Its process's RSS is sampled from /proc
 * through the job, and the kernel's high-water mark (VmHWM) read at the end.
 *
 * The baselines read the same resources from the same server in their own process, doing nothing
 * but `JSON.parse` (test/bench/fhir-parse-baseline.ts). They run before and after the gateway's
 * two runs (A B B A), so a drift of the machine's speed shows as a spread between the two.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayFhirKeys } from '../support/fhir-gateway.ts';
import { createTestClientKeys, fetchAccessToken, startFhirServer, syntheticPatients } from '../support/fhir-server/index.ts';
import { freePort } from '../support/net.ts';
import { spawnGateway, stopChild } from './child.ts';
import type { BaselineResult } from './fhir-parse-baseline.ts';

export interface GatewayRun {
  mode: 'bulk' | 'paging';
  resources: number;
  /** Spawn → the admin port answers. */
  bootMs: number;
  /** The admin port answers → the last record delivered. */
  jobMs: number;
  rate: number;
  /** The kernel's high-water mark of the process (VmHWM), boot included. */
  peakRssMiB: number;
  /** The largest VmRSS sampled every 50 ms during the job. */
  sampledPeakRssMiB: number;
  /** VmRSS once everything was delivered. */
  endRssMiB: number;
  /** VmRSS when a quarter, half and three quarters of the records had been delivered: flat if memory does not grow with the job. */
  quarterRssMiB: number[];
}

export interface FhirBenchResult {
  resources: number;
  pageSize: number;
  /** VmRSS of a gateway process with no source at all, 2 s after it came up: the floor under the peaks. */
  idleRssMiB: number;
  bulk: GatewayRun;
  paging: GatewayRun;
  /** The two baseline runs of each kind (before and after the gateway's runs). */
  parseBulk: BaselineResult[];
  parsePaging: BaselineResult[];
}

const SOURCE = 'ehr';
const ADMIN_TOKEN = 'bench-admin-token-fhir';

const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const kib = (s: string, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;

function runBaseline(script: string, env: Record<string, string>, timeoutMs: number): Promise<BaselineResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script], { env: { ...process.env, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`baseline ${env.FHIR_MODE}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as BaselineResult);
    });
  });
}

async function delivered(adminPort: number): Promise<number> {
  try {
    const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await r.text();
    let n = 0;
    for (const m of text.matchAll(/^ewml_records_delivered_total(?:\{[^}]*\})? (\d+)/gm)) n += Number(m[1]);
    return n;
  } catch {
    return 0;
  }
}

/** One gateway process's whole job (`cli`: default bin/eyewear-gateway.js, e.g. the single executable's bundle instead). */
export async function gatewayRun(o: {
  root: string;
  cli?: string;
  dir: string;
  mode: 'bulk' | 'paging';
  baseUrl: string;
  clientId: string;
  resources: number;
  /** `_count` of the search, and the resources committed per page in both modes. */
  pageSize: number;
  deadlineMs: number;
}): Promise<GatewayRun> {
  const adminPort = await freePort();
  const cfg = join(o.dir, 'gw.yaml');
  writeFileSync(
    cfg,
    [
      'gateway:',
      `  dataDir: ${o.dir}/data`,
      '  timezone: UTC',
      'log:',
      '  level: warn',
      'hl7:',
      '  enabled: false',
      'admin:',
      `  port: ${adminPort}`,
      '  token: ${env:EWML_BENCH_ADMIN_TOKEN}',
      'fhir:',
      `  - id: ${SOURCE}`,
      '    vendor: generic',
      `    baseUrl: ${o.baseUrl}`,
      `    clientId: ${o.clientId}`,
      '    keyAlg: ES384',
      '    resources: [Patient]',
      `    pageSize: ${o.pageSize}`,
      // one cycle: the next poll would come an hour later
      '    pollIntervalMs: 3600000',
      `    bulk: { mode: ${o.mode === 'bulk' ? 'always' : 'never'} }`,
      '',
    ].join('\n'),
  );
  process.env.EWML_BENCH_ADMIN_TOKEN = ADMIN_TOKEN;
  const t0 = performance.now();
  const child = await spawnGateway(o.cli ?? join(o.root, 'bin/eyewear-gateway.js'), cfg, adminPort);
  try {
    const pid = child.pid!;
    const tUp = performance.now();
    let sampled = 0;
    const quarters: number[] = [];
    const sampler = setInterval(() => {
      try {
        sampled = Math.max(sampled, kib(status(pid), 'VmRSS'));
      } catch {
        // the process is gone; the wait below reports it
      }
    }, 50);
    try {
      const until = Date.now() + o.deadlineMs;
      let n = 0;
      while ((n = await delivered(adminPort)) < o.resources) {
        while (quarters.length < 3 && n >= ((quarters.length + 1) * o.resources) / 4) quarters.push(kib(status(pid), 'VmRSS'));
        if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) after ${n} records`);
        if (Date.now() > until) throw new Error(`${o.mode}: only ${n} of ${o.resources} records delivered in ${o.deadlineMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      clearInterval(sampler);
    }
    const tDone = performance.now();
    const s = status(pid);
    const jobMs = tDone - tUp;
    return {
      mode: o.mode,
      resources: o.resources,
      bootMs: tUp - t0,
      jobMs,
      rate: (o.resources / jobMs) * 1000,
      peakRssMiB: kib(s, 'VmHWM'),
      sampledPeakRssMiB: Math.max(sampled, kib(s, 'VmRSS')),
      endRssMiB: kib(s, 'VmRSS'),
      quarterRssMiB: quarters,
    };
  } finally {
    await stopChild(child);
  }
}

/** A gateway with the same sections but no source, 2 s after its admin port answered. */
async function idleRss(root: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-fhir-idle-'));
  const adminPort = await freePort();
  const cfg = join(dir, 'gw.yaml');
  writeFileSync(
    cfg,
    `gateway:\n  dataDir: ${dir}/data\n  timezone: UTC\nlog:\n  level: warn\nhl7:\n  enabled: false\nadmin:\n  port: ${adminPort}\n`,
  );
  const child = await spawnGateway(join(root, 'bin/eyewear-gateway.js'), cfg, adminPort);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    return kib(status(child.pid!), 'VmRSS');
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function fhirBench(o: { resources: number; root: string; deadlineMs?: number }): Promise<FhirBenchResult> {
  const deadlineMs = o.deadlineMs ?? 120_000;
  const pageSize = 100;
  const bulkDir = mkdtempSync(join(tmpdir(), 'ewml-bench-fhir-bulk-'));
  const pageDir = mkdtempSync(join(tmpdir(), 'ewml-bench-fhir-page-'));
  // the gateways' client keys exist before the server starts, which registers their JWKS
  const bulkKeys = await gatewayFhirKeys(SOURCE, 'ES384', join(bulkDir, 'data'));
  const pageKeys = await gatewayFhirKeys(SOURCE, 'ES384', join(pageDir, 'data'));
  const baselineKeys = await createTestClientKeys('ewml-bench-baseline', 'ES384');
  const fhir = await startFhirServer({
    vendor: 'generic',
    synthetic: [syntheticPatients(o.resources)],
    clients: [
      { clientId: 'ewml-bench-bulk', jwks: bulkKeys.jwks },
      { clientId: 'ewml-bench-paging', jwks: pageKeys.jwks },
      { clientId: baselineKeys.clientId, jwks: baselineKeys.jwks },
    ],
    // tokens outlive the section: the baseline's is fetched once
    tokenLifetimeSeconds: 3600,
    bulk: { pollsBeforeReady: 1, retryAfterSeconds: 1, maxResourcesPerFile: 10_000 },
  });
  try {
    const script = join(o.root, 'test/bench/fhir-parse-baseline.ts');
    const token = await fetchAccessToken(baselineKeys, fhir.tokenUrl, 'system/Patient.rs');
    const env = { FHIR_BASE: fhir.baseUrl, FHIR_TOKEN: token, FHIR_COUNT: String(pageSize) };
    const baseline = async () => ({
      bulk: await runBaseline(script, { ...env, FHIR_MODE: 'bulk' }, deadlineMs),
      paging: await runBaseline(script, { ...env, FHIR_MODE: 'paging' }, deadlineMs),
    });
    const before = await baseline();
    const bulk = await gatewayRun({
      ...o,
      pageSize,
      deadlineMs,
      dir: bulkDir,
      mode: 'bulk',
      baseUrl: fhir.baseUrl,
      clientId: 'ewml-bench-bulk',
    });
    const paging = await gatewayRun({
      ...o,
      pageSize,
      deadlineMs,
      dir: pageDir,
      mode: 'paging',
      baseUrl: fhir.baseUrl,
      clientId: 'ewml-bench-paging',
    });
    const after = await baseline();
    const idleRssMiB = await idleRss(o.root);
    for (const b of [before.bulk, after.bulk, before.paging, after.paging]) {
      if (b.resources !== o.resources) throw new Error(`a baseline read ${b.resources} of ${o.resources} resources`);
    }
    return {
      resources: o.resources,
      pageSize,
      idleRssMiB,
      bulk,
      paging,
      parseBulk: [before.bulk, after.bulk],
      parsePaging: [before.paging, after.paging],
    };
  } finally {
    await fhir.stop();
    // the outboxes and the file sinks' output: ~100 MB a run
    for (const d of [bulkDir, pageDir]) rmSync(d, { recursive: true, force: true });
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const perSecond = (resources: number, ms: number) => (resources / ms) * 1000;
const mb = (mib: number) => (mib * 1048576) / 1e6;

/**
 * Section 8 of `npm run bench` (`BENCH_FHIR_RESOURCES`, default 100,000): runs {@link fhirBench}
 * and prints its figures, ratios and the peak RSS against issue 14's goal.
 */
export async function fhirSection(root: string, log: (line: string) => void): Promise<void> {
  const n = Number(process.env.BENCH_FHIR_RESOURCES ?? 100_000);
  log(
    `\n8. FHIR source: ${fmt(n)} synthetic Patients from the test FHIR server (in the bench process), gateway in its own process, file sink; each job timed until its last record was delivered`,
  );
  const r = await fhirBench({ resources: n, root });
  const bulkBase = r.parseBulk.map((b) => perSecond(b.resources, b.jobMs));
  const pageBase = r.parsePaging.map((b) => perSecond(b.resources, b.jobMs));
  const files = r.parseBulk.map((b) => perSecond(b.resources, b.readMs));
  const range = (xs: number[], d = 0) => `${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)}`;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  log(
    `  baseline Bulk, parse only (kick-off, status wait, ${fmt(r.parseBulk[0].bytes / 1048576, 1)} MiB of NDJSON downloaded, JSON.parse per line), before/after ${bulkBase.map((x) => fmt(x)).join(' / ')} resources/s (the files alone ${files.map((x) => fmt(x)).join(' / ')}); its process's peak RSS ${r.parseBulk.map((b) => fmt(b.peakRssMiB)).join(' / ')} MiB`,
  );
  log(
    `  baseline paging, parse only (fetch + JSON.parse of each Bundle, _count=${r.pageSize}), before/after ${pageBase.map((x) => fmt(x)).join(' / ')} resources/s; peak RSS ${r.parsePaging.map((b) => fmt(b.peakRssMiB)).join(' / ')} MiB`,
  );
  for (const g of [r.bulk, r.paging]) {
    const base = g.mode === 'bulk' ? bulkBase : pageBase;
    log(
      `  gateway ${g.mode === 'bulk' ? 'Bulk NDJSON import (kick-off, status wait, files, map, validate, seal, commit, relay)' : `paging a search (${fmt(n / r.pageSize)} pages, map, validate, seal, commit, relay)`} ${fmt(g.rate).padStart(7)} resources/s, ${fmt(g.jobMs / 1000, 1)} s (boot ${fmt(g.bootMs / 1000, 1)} s before it); ratio to the baseline ${fmt(g.rate / mean(base), 2)} [${range(
        base.map((b) => g.rate / b),
        2,
      )}]`,
    );
  }
  const goal = 150;
  const b = r.bulk;
  log(
    `  peak RSS during the ${fmt(n)}-resource Bulk import: ${fmt(b.peakRssMiB)} MiB = ${fmt(mb(b.peakRssMiB))} MB (VmHWM; goal ≤ ${goal} MB: ${mb(b.peakRssMiB) <= goal ? 'met' : '**not met**'}); RSS at ¼ ½ ¾ of the records ${b.quarterRssMiB.map((x) => fmt(x)).join(' / ')} MiB, at the end ${fmt(b.endRssMiB)} MiB`,
  );
  log(
    `  paging: peak RSS ${fmt(r.paging.peakRssMiB)} MiB (¼ ½ ¾ ${r.paging.quarterRssMiB.map((x) => fmt(x)).join(' / ')}); an idle gateway with no source ${fmt(r.idleRssMiB)} MiB = ${fmt(mb(r.idleRssMiB))} MB`,
  );
}

// `npx node test/bench/fhir-bench.ts`: this section alone
if (process.argv[1] === fileURLToPath(import.meta.url))
  await fhirSection(new URL('../../', import.meta.url).pathname, (l) => process.stdout.write(`${l}\n`));
