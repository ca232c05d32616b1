/**
 * `npx node test/bench/fhir-clients.ts`: the FHIR client libraries the gateway could have used,
 * measured against the test FHIR server (test/support/fhir-server/) beside the gateway's own thin
 * client on Node's fetch (issue 15 item 1; README's dependency table and BENCHMARKS.md's "Measured
 * design choices" carry the result):
 *   (a) paging a search of 10,000 Patients at _count=100 to its end: time, peak heap, peak RSS;
 *       three rounds, the clients in ABBA order within them;
 *   (b) a 429 with Retry-After: 3 and a 503 with Retry-After: 1: retried? after how long?
 *   (c) one Bulk NDJSON file of 100,000 lines: streamed, or read whole (peak RSS shows it);
 *   (d) SMART Backend Services: client_credentials with a signed JWT assertion;
 * and each library's installed footprint (its package and every dependency, walked from the
 * folder it is installed in).
 *
 * Only @medplum/core is a dependency of the repo. fhir-kit-client and fhirclient are looked for in
 * the repo and then in `FHIR_CLIENTS_DIR` (a scratch folder: `npm install fhir-kit-client
 * fhirclient` there); a library found in neither is skipped with a message. Each job runs in a
 * process of its own (test/bench/fhir-client-probes.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exportJWK } from 'jose';
import {
  createTestClientKeys,
  type FaultOptions,
  type FhirServer,
  fetchAccessToken,
  startFhirServer,
  syntheticPatients,
} from '../support/fhir-server/index.ts';
import { CLIENTS, type ClientName, type Job, type ProbeResult } from './fhir-client-probes.ts';

const root = new URL('../../', import.meta.url).pathname;
const probeScript = join(root, 'test/bench/fhir-client-probes.ts');
const PAGING_RESOURCES = 10_000;
const NDJSON_LINES = 100_000;
const ROUNDS = 3;
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const log = (s: string) => process.stdout.write(`${s}\n`);

const PACKAGE: Record<Exclude<ClientName, 'own-fetch'>, string> = {
  'fhir-kit-client': 'fhir-kit-client',
  fhirclient: 'fhirclient',
  '@medplum/core': '@medplum/core',
};

interface Found {
  /** The node_modules folder it is installed in. */
  modules: string;
  version: string;
  /** The file URL of its entry for Node (ESM import, else main). */
  entry: string;
}

type Exports = string | { [condition: string]: Exports } | undefined;
/** The entry Node would load for `import`: the first of the node, import, default and require conditions. */
function entryOf(e: Exports): string | undefined {
  if (typeof e === 'string' || e === undefined) return e;
  if ('.' in e) return entryOf(e['.']);
  for (const c of ['node', 'import', 'default', 'require']) if (e[c] !== undefined) return entryOf(e[c]);
  return undefined;
}

function findPackage(name: string): Found | undefined {
  for (const dir of [root, process.env.FHIR_CLIENTS_DIR].filter((d): d is string => Boolean(d))) {
    const modules = join(dir, 'node_modules');
    const pj = join(modules, name, 'package.json');
    if (!existsSync(pj)) continue;
    const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { version: string; main?: string; exports?: Exports };
    const rel = entryOf(pkg.exports) ?? pkg.main ?? 'index.js';
    return { modules, version: pkg.version, entry: pathToFileURL(join(modules, name, rel)).href };
  }
  return undefined;
}

function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue; // nested copies are counted as packages of their own
    const p = join(dir, e.name);
    n += e.isDirectory() ? bytesUnder(p) : e.isFile() ? statSync(p).size : 0;
  }
  return n;
}

/** The package and what npm installs with it (dependencies, optional ones, required peers) as laid out: nested copy first, then the top level. */
function footprint(modules: string, name: string): { packages: number; bytes: number } {
  const seen = new Set<string>();
  const visit = (dir: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    // npm 7 and later install peer dependencies that are not marked optional
    const peers = Object.keys(pkg.peerDependencies ?? {}).filter((p) => !pkg.peerDependenciesMeta?.[p]?.optional);
    for (const dep of [...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }), ...peers]) {
      const nested = join(dir, 'node_modules', dep);
      const top = join(modules, dep);
      const at = existsSync(join(nested, 'package.json')) ? nested : existsSync(join(top, 'package.json')) ? top : undefined;
      if (at) visit(at);
    }
  };
  visit(join(modules, name));
  let bytes = 0;
  for (const d of seen) bytes += bytesUnder(d);
  return { packages: seen.size, bytes };
}

const GRANTS = ['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer'];

/** Which OAuth grant types a package's own JavaScript names at all (a library cannot request a grant it never names). */
function grantsNamed(dir: string): string[] {
  const found = new Set<string>();
  const scan = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) scan(p);
      else if (/\.(c|m)?js$/.test(e.name)) {
        const text = readFileSync(p, 'utf8');
        for (const g of GRANTS) if (text.includes(g)) found.add(g);
      }
    }
  };
  scan(dir);
  return [...found];
}

function probe(client: ClientName, job: Job, env: Record<string, string>): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [probeScript, client, job],
      { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${client} ${job}: ${err.message}\n${stderr.slice(-2000)}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ProbeResult);
      },
    );
  });
}

/** What the server saw for the call that met the fault: the statuses, and the wait before each retry. */
function faultStory(server: FhirServer): string {
  const api = server.requests.filter((r) => r.path.startsWith(new URL(server.baseUrl).pathname));
  const k = api.findIndex((r) => r.status === 429 || r.status === 503);
  if (k < 0) return 'no fault was met';
  const parts = [`${api[k].status}`];
  for (let i = k + 1; i < api.length; i++) parts.push(`${fmt((api[i].at - api[i - 1].at) / 1000, 1)} s → ${api[i].status}`);
  return parts.length === 1 ? `${api[k].status}, not retried` : parts.join(', ');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[], d = 0) => `${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)}`;

async function main(): Promise<void> {
  log(`FHIR client libraries against the test FHIR server — Node ${process.version}`);
  const clients: { name: ClientName; entry: string; label: string }[] = [
    { name: 'own-fetch', entry: '', label: 'own client (Node fetch)' },
  ];
  for (const name of CLIENTS) {
    if (name === 'own-fetch') continue;
    const f = findPackage(PACKAGE[name]);
    if (!f) {
      log(
        `  ${name}: not installed in the repo nor in FHIR_CLIENTS_DIR — skipped (npm install ${PACKAGE[name]} in a scratch folder, then FHIR_CLIENTS_DIR=that folder)`,
      );
      continue;
    }
    const fp = footprint(f.modules, PACKAGE[name]);
    const grants = grantsNamed(join(f.modules, PACKAGE[name]));
    log(
      `  ${name} ${f.version}: installed ${fp.packages} package(s), ${fmt(fp.bytes / 1048576, 1)} MiB (${f.modules}); OAuth grant types its code names: ${grants.join(', ') || 'none'}`,
    );
    clients.push({ name, entry: f.entry, label: `${name} ${f.version}` });
  }

  const keys = await createTestClientKeys('ewml-client-probe', 'ES384');
  const jwk = JSON.stringify({ ...(await exportJWK(keys.privateKey)), kid: keys.kid });
  const start = (synthetic: number, extra: { faults?: FaultOptions; maxResourcesPerFile?: number } = {}) =>
    startFhirServer({
      vendor: 'generic',
      synthetic: [syntheticPatients(synthetic)],
      clients: [{ clientId: keys.clientId, jwks: keys.jwks }],
      faults: extra.faults,
      bulk: { pollsBeforeReady: 0, retryAfterSeconds: 1, maxResourcesPerFile: extra.maxResourcesPerFile ?? 10_000 },
    });
  const envFor = async (s: FhirServer, c: { entry: string }) => ({
    FHIR_BASE: s.baseUrl,
    FHIR_TOKEN: await fetchAccessToken(keys, s.tokenUrl, 'system/Patient.rs'),
    FHIR_TOKEN_URL: s.tokenUrl,
    FHIR_CLIENT_ID: keys.clientId,
    FHIR_CLIENT_JWK: jwk,
    FHIR_CLIENT_MODULE: c.entry,
  });
  const results = new Map<string, ProbeResult[]>();
  const keep = (r: ProbeResult) => results.set(`${r.client} ${r.job}`, [...(results.get(`${r.client} ${r.job}`) ?? []), r]);

  // (a) paging, ABBA over the rounds
  const paging = await start(PAGING_RESOURCES);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? clients : [...clients].reverse();
      for (const c of order) keep(await probe(c.name, 'paging', await envFor(paging, c)));
    }
    // (d) auth against the same server
    for (const c of clients) keep(await probe(c.name, 'auth', await envFor(paging, c)));
  } finally {
    await paging.stop();
  }

  // (c) one NDJSON file of 100,000 lines
  const bulk = await start(NDJSON_LINES, { maxResourcesPerFile: NDJSON_LINES });
  try {
    const token = await fetchAccessToken(keys, bulk.tokenUrl, 'system/Patient.rs');
    const auth = { authorization: `Bearer ${token}` };
    const kick = await fetch(`${bulk.baseUrl}/$export?_type=Patient`, { headers: { ...auth, prefer: 'respond-async' } });
    await kick.body?.cancel();
    const manifest = (await (await fetch(kick.headers.get('content-location')!, { headers: auth })).json()) as {
      output: { url: string }[];
    };
    if (manifest.output.length !== 1) throw new Error(`expected one NDJSON file, got ${manifest.output.length}`);
    for (const c of clients) keep(await probe(c.name, 'ndjson', { ...(await envFor(bulk, c)), FHIR_FILE: manifest.output[0].url }));
  } finally {
    await bulk.stop();
  }

  // (b) a fresh server per client and fault: its second API request answers 429 (Retry-After: 3) or 503 (Retry-After: 1)
  const stories = new Map<string, string>();
  for (const c of clients) {
    const cases: [string, FaultOptions][] = [
      ['429', { throttle: { every: 2, retryAfterSeconds: 3 } }],
      ['503', { failures: { at: [2], status: 503 } }],
    ];
    for (const [label, faults] of cases) {
      const s = await start(100, { faults });
      try {
        const r = await probe(c.name, 'faults', await envFor(s, c));
        stories.set(`${c.name} ${label}`, `${faultStory(s)}; the call: ${r.calls?.[1] ?? r.error}`);
      } finally {
        await s.stop();
      }
    }
  }

  log(`\n(a) paging ${fmt(PAGING_RESOURCES)} Patients at _count=100 to the end, ${ROUNDS} rounds (ABBA): median [range]`);
  for (const c of clients) {
    const rs = results.get(`${c.name} paging`) ?? [];
    const ok = rs.filter((r) => r.ok && r.resources === PAGING_RESOURCES);
    if (ok.length === 0) {
      log(`  ${c.label.padEnd(26)} failed: ${rs[0]?.error ?? 'no result'} (${rs[0]?.how})`);
      continue;
    }
    const ms = ok.map((r) => r.ms!);
    log(
      `  ${c.label.padEnd(26)} ${fmt(median(ms))} ms [${range(ms)}], ${fmt((PAGING_RESOURCES / median(ms)) * 1000)} resources/s; peak heap ${fmt(median(ok.map((r) => r.peakHeapMiB)), 1)} MiB; peak RSS ${fmt(median(ok.map((r) => r.peakRssMiB)))} MiB (idle ${fmt(median(ok.map((r) => r.idleRssMiB)))}) — ${ok[0].how}`,
    );
  }
  log('\n(b) faults: the server answers the second call 429 with Retry-After: 3, or 503 with Retry-After: 1');
  for (const c of clients) {
    log(`  ${c.label.padEnd(26)} 429: ${stories.get(`${c.name} 429`)}`);
    log(`  ${''.padEnd(26)} 503: ${stories.get(`${c.name} 503`)}`);
  }
  log(`\n(c) one Bulk NDJSON file of ${fmt(NDJSON_LINES)} lines, each line parsed`);
  for (const c of clients) {
    const r = results.get(`${c.name} ndjson`)![0];
    log(
      `  ${c.label.padEnd(26)} ${r.streamed ? 'streamed' : 'read whole'}; ${r.resources === undefined ? 'no resources' : `${fmt(r.resources)} lines`} in ${fmt(r.ms ?? 0)} ms; peak heap ${fmt(r.peakHeapMiB, 1)} MiB; peak RSS ${fmt(r.peakRssMiB)} MiB (idle ${fmt(r.idleRssMiB)}) — ${r.how}${r.error ? ` [${r.error}]` : ''}`,
    );
  }
  log('\n(d) SMART Backend Services (client_credentials, JWT assertion ES384), then one search');
  for (const c of clients) {
    const r = results.get(`${c.name} auth`)![0];
    log(`  ${c.label.padEnd(26)} ${r.ok ? 'yes' : 'no'} — ${r.how}${r.error ? ` [${r.error}]` : ''}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`fhir-clients failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
