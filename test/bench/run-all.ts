/**
 * `npm run bench`: figures and ratios against baselines measured in the same run, on this machine.
 *   1. MLLP ingest with ACK-after-commit (the gateway: parse, map, validate, seal, group commit,
 *      ACK) beside @medplum/hl7's Hl7Server (buildAck, no storage) and a bare MLLP echo server.
 *   2. HL7 parse throughput beside @medplum/core, and parse+map+validate.
 *   3. Relay throughput to mosquitto beside raw mqtt.js publishing the same payloads.
 *   4. Database source (PostgreSQL, Practice Studio): first-load rows/s beside a bare keyset walk,
 *      and the cost of an empty poll beside the same number of SELECT 1 round trips.
 *   5. Footprint and file source: idle RSS of a gateway built up part by part (what each part
 *      costs, test/bench/footprint-bench.ts), then a 500,000-row CSV imported by a gateway process
 *      (rows/s, peak RSS over the import and the relay's drain, RSS after) beside parsing the same
 *      file with the same reader.
 *   6. Mapping allocation: heap bytes and rows/s per CSV row through the compiled record mappings
 *      beside the old mapping code, ABBA in one process (test/bench/alloc-bench.ts).
 *   7. CDS Hooks: patient-view answer latency (JWT, read-model lookup, cards) over TLS beside the
 *      same server's discovery, on a read model of 100,000 patients (test/bench/cds-hooks-bench.ts).
 *   8. FHIR source: resources/s paging and by Bulk export through a gateway process, peak RSS of a
 *      100,000-resource Bulk import, beside the same NDJSON only parsed (test/bench/fhir-bench.ts).
 *   9. Health monitor: its recorded fault scenarios scored, CPU per poll (test/bench/health-bench.ts), and a host
 *      sample's cost beside systeminformation's (test/bench/host-sample-bench.ts).
 *  10. Sync scheduler: a simulated practice's 14 days polled on a fixed 60 s schedule and by the
 *      agent, same simulation: polls per day, p95 change-to-commit delay, its CPU and memory
 *      (test/bench/sync-bench.ts).
 * Bounded: every load runs for a fixed time on 127.0.0.1 only.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/net.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { forkServer, spawnGateway, stopChild } from './child.ts';
import { runLoad, type LoadResult } from './mllp-load.ts';
import { relayBench } from './relay-bench.ts';
import { parseBench } from './parse-bench.ts';
import { dbBench } from './db-bench.ts';
import { csvBench } from './csv-bench.ts';
import { allocBench, allocLines } from './alloc-bench.ts';
import { footprintBench, footprintLines, footprintSubject } from './footprint-bench.ts';
import { cdsHooksBench } from './cds-hooks-bench.ts';

const root = new URL('../../', import.meta.url).pathname;
const DURATION = Number(process.env.BENCH_SECONDS ?? 4) * 1000;
/** `BENCH_SECTIONS=1,3` runs only those sections (default: all ten). */
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? '1,2,3,4,5,6,7,8,9,10').split(',').map((s) => Number(s.trim())));
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const log = (s: string) => process.stdout.write(s + '\n');

/** Rounds of section 1: each round measures every server once, so ratios compare runs minutes apart at most (this VM's speed drifts ±30% within an hour). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

type Server = (port: number) => Promise<{ stop(): Promise<void> }>;

async function measureOnce(name: string, start: Server, connections: number): Promise<LoadResult> {
  const port = await freePort();
  const server = await start(port);
  try {
    let n = 0;
    return await runLoad({
      port,
      connections,
      durationMs: DURATION,
      warmupMs: 800,
      message: (c, i) => adtA04({ id: `B${process.pid}${name[0]}${connections}c${c}n${i}x${n++}`, mrn: `M${i % 1000}` }),
    });
  } finally {
    await server.stop();
  }
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const range = (xs: number[], d = 0) => `${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)}`;

/** One small row per transaction at synchronous FULL, as one connection's messages get: the fsync floor. */
function diskFloor(): { perSecond: number; micros: number } {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-disk-'));
  const db = new DatabaseSync(join(dir, 'floor.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE t (seq INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const blob = Buffer.alloc(2000);
  const n = 2000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    db.exec('BEGIN');
    ins.run(blob);
    db.exec('COMMIT');
  }
  const ms = performance.now() - t0;
  db.close();
  return { perSecond: (n / ms) * 1000, micros: (ms * 1000) / n };
}

async function main(): Promise<void> {
  log(`eyewear-gateway benchmarks — Node ${process.version}, ${DURATION / 1000}s per run, load generator on the same machine`);
  if (SECTIONS.has(1)) await mllpSection();
  if (SECTIONS.has(2)) parseSection();
  if (SECTIONS.has(3)) await relaySection();
  if (SECTIONS.has(4)) await dbSection();
  if (SECTIONS.has(5)) await csvSection();
  if (SECTIONS.has(6)) allocSection();
  if (SECTIONS.has(7)) {
    log("\n7. CDS Hooks patient-view answer latency over TLS (JWT check, read-model lookup, cards) beside the same server's discovery");
    await cdsHooksBench(log);
  }
  if (SECTIONS.has(8)) await (await import('./fhir-bench.ts')).fhirSection(root, log); // 8. FHIR source (test/bench/fhir-bench.ts)
  if (SECTIONS.has(9)) {
    // 9. the health monitor's fault scenarios (its own program: it ends with its score's exit code)
    log('\n9. Health monitor: recorded fault scenarios on real gateways, scored, and its CPU per poll (test/bench/health-bench.ts)');
    const r = spawnSync(process.execPath, [join(root, 'test/bench/health-bench.ts')], { stdio: 'inherit', timeout: 600_000 });
    if (r.status !== 0) log(`   health bench ended with ${r.error ? r.error.message : `exit ${String(r.status ?? r.signal)}`}`);
    // what its host sample costs beside systeminformation's (test/bench/host-sample-bench.ts)
    spawnSync(process.execPath, [join(root, 'test/bench/host-sample-bench.ts')], { stdio: 'inherit', timeout: 120_000 });
  }
  if (SECTIONS.has(10)) {
    // 10. the sync scheduler on a simulated practice (its own program: it ends with 1 when the goal is not met)
    log('\n10. Sync scheduler: a simulated practice, 14 days, fixed 60 s polls beside the agent (test/bench/sync-bench.ts)');
    const r = spawnSync(process.execPath, ['--expose-gc', join(root, 'test/bench/sync-bench.ts')], { stdio: 'inherit', timeout: 900_000 });
    if (r.status !== 0) log(`   sync bench ended with ${r.error ? r.error.message : `exit ${String(r.status ?? r.signal)}`}`);
  }
}

async function mllpSection(): Promise<void> {
  log(`\n1. MLLP ingest (each connection sends one ~0.7 KB ADT^A04 and waits for its ACK); ${ROUNDS} round(s), each server once per round`);
  const servers: Array<{ name: string; start: Server }> = [
    {
      name: 'bare MLLP echo (no work)',
      start: async (port) => {
        const c = await forkServer(join(root, 'test/bench/servers/echo-server.ts'), [String(port)], port);
        return { stop: () => stopChild(c) };
      },
    },
    {
      name: '@medplum/hl7 Hl7Server',
      start: async (port) => {
        const c = await forkServer(join(root, 'test/bench/servers/medplum-server.ts'), [String(port)], port);
        return { stop: () => stopChild(c) };
      },
    },
    {
      name: 'gateway (map+seal+commit)',
      start: async (port) => {
        const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-gw-'));
        const cfg = join(dir, 'gw.yaml');
        writeFileSync(
          cfg,
          `gateway:\n  dataDir: ${dir}/data\n  timezone: UTC\nlog:\n  level: warn\nhl7:\n  port: ${port}\nadmin:\n  enabled: false\n`,
        );
        const c = await spawnGateway(join(root, 'bin/eyewear-gateway.js'), cfg, port);
        return { stop: () => stopChild(c) };
      },
    },
  ];
  // results[server][connections] = one LoadResult per round
  const results = servers.map(() => ({ 1: [] as LoadResult[], 8: [] as LoadResult[] }));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [k, srv] of servers.entries()) {
      for (const connections of [1, 8] as const) {
        const r = await measureOnce(srv.name, srv.start, connections);
        results[k][connections].push(r);
        log(
          `  round ${round}  ${srv.name.padEnd(28)} ${String(connections).padStart(2)} conn: ${fmt(r.rate).padStart(7)} msg/s  ACK p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms${r.errors ? `  (${r.errors} non-AA/errors)` : ''}`,
        );
      }
    }
  }
  log('  medians over the rounds (range in brackets):');
  for (const [k, srv] of servers.entries()) {
    for (const connections of [1, 8] as const) {
      const rs = results[k][connections];
      log(
        `  ${srv.name.padEnd(28)} ${String(connections).padStart(2)} conn: ${fmt(median(rs.map((r) => r.rate))).padStart(7)} msg/s [${range(rs.map((r) => r.rate))}]  ACK p99 ${fmt(median(rs.map((r) => r.p99)), 2)} ms [${range(
          rs.map((r) => r.p99),
          2,
        )}]`,
      );
    }
  }
  const [echo, peer, gw] = results;
  for (const n of [1, 8] as const) {
    // each ratio from runs of the same round, then the median of those
    const toPeer = gw[n].map((r, i) => r.rate / peer[n][i].rate);
    const toEcho = gw[n].map((r, i) => r.rate / echo[n][i].rate);
    log(
      `  ratio ${n} conn: gateway/peer ${fmt(median(toPeer), 2)} [${range(toPeer, 2)}], gateway/echo ${fmt(median(toEcho), 2)} [${range(toEcho, 2)}]`,
    );
  }
  const floor = diskFloor();
  log(`  disk floor: ${fmt(floor.perSecond)} SQLite commits/s at synchronous FULL (${fmt(floor.micros)} µs each)`);
  // one connection waits for its own commit: the echo's round trip plus one commit bounds it, with no other work at all
  const echoRoundTripUs = 1e6 / median(echo[1].map((r) => r.rate));
  log(
    `  ceiling for one connection here: echo round trip ${fmt(echoRoundTripUs)} µs + one commit ${fmt(floor.micros)} µs = ${fmt(1e6 / (echoRoundTripUs + floor.micros))} msg/s with no parsing, mapping or sealing at all; gateway at ${fmt(median(gw[1].map((r) => r.rate)) / (1e6 / (echoRoundTripUs + floor.micros)), 2)} of it`,
  );
}

function parseSection(): void {
  log('\n2. HL7 parsing on one core (ours beside @medplum/core Hl7Message.parse)');
  for (const r of parseBench())
    log(
      `  ${r.name.padEnd(40)} ours ${fmt(r.ours).padStart(8)} msg/s${Number.isNaN(r.peer) ? '' : `   @medplum/core ${fmt(r.peer).padStart(8)} msg/s   ratio ${fmt(r.ours / r.peer, 2)}`}`,
    );
}

async function relaySection(): Promise<void> {
  log("\n3. Relay to mosquitto (QoS 1, JWE per batch, delete on the cloud's ack)");
  const r = await relayBench({ records: Number(process.env.BENCH_RELAY_RECORDS ?? 60_000), batchSize: 200, maxInFlight: 4 });
  log(`  raw mqtt.js publish, all batches at once (PUBACKs only)       ${fmt(r.rawRate).padStart(8)} records/s`);
  log(`  raw mqtt.js publish, ${r.maxInFlight} batches in flight (PUBACKs only)     ${fmt(r.rawWindowRate).padStart(8)} records/s`);
  log(
    `  raw mqtt.js publish, ${r.maxInFlight} batches in flight, each waiting for the reference cloud's ack ${fmt(r.rawCloudRate).padStart(8)} records/s`,
  );
  log(
    `  gateway relay, ${r.maxInFlight} batches in flight (outbox → cloud ack → delete), a row per record ${fmt(r.relayRate).padStart(8)} records/s, ${fmt(r.relayCpuShare * 100)}% of a core`,
  );
  log(
    `  gateway relay, the same, rows as intake writes them (a bundle per message)  ${fmt(r.bundledRate).padStart(8)} records/s, ${fmt(r.bundledCpuShare * 100)}% of a core`,
  );
  log(
    `  ratio relay/raw ${fmt(r.ratio, 2)}; relay/raw with the same window ${fmt(r.windowRatio, 2)}; relay/raw waiting for the same cloud acks ${fmt(r.relayRate / r.rawCloudRate, 2)} (bundles ${fmt(r.bundledRate / r.rawCloudRate, 2)}) (${r.records} records, batches of ${r.batchSize} records)`,
  );
  log("  (the reference cloud runs in its own process; the gateway figures are its process's CPU while relaying)");
}

async function dbSection(): Promise<void> {
  log('\n4. Database source: Practice Studio on PostgreSQL (a server the bench starts on 127.0.0.1)');
  const d = await dbBench({ rows: Number(process.env.BENCH_DB_ROWS ?? 200_000) });
  log(`  bare keyset walk of ps.charges, pages of 1000 (pg, rows dropped)   ${fmt(d.rawRate).padStart(9)} rows/s`);
  log(
    `  gateway first load of ${fmt(d.rows)} rows (map, validate, seal, commit with cursor; file sink relaying meanwhile) ${fmt(d.loadRate).padStart(7)} rows/s, ${fmt(d.loadCpuShare * 100)}% of a core`,
  );
  log(`  ratio first load/bare walk ${fmt(d.loadRate / d.rawRate, 3)}; a million rows take ~${fmt(1_000_000 / d.loadRate / 60, 1)} min`);
  log(
    `  empty poll of all ${d.streams} streams: ${fmt(d.emptyPollMs, 2)} ms wall, ${fmt(d.emptyPollCpuMs, 2)} ms CPU; ${d.streams} × SELECT 1: ${fmt(d.selectOneMs, 2)} ms (ratio ${fmt(d.emptyPollMs / d.selectOneMs, 1)}); at the default 5 s interval: ${fmt((d.emptyPollCpuMs / 5000) * 100, 2)}% of a core`,
  );
}

async function csvSection(): Promise<void> {
  const exe = join(root, 'dist/eyewear-gateway');
  log(`\n5. Footprint: idle RSS, each part added to the one above (gateways run as ${footprintSubject({ root, exe })})`);
  for (const line of footprintLines(await footprintBench({ root, exe }))) log(line);
  log('  File source: a CSV export of patients (optical-csv profile), gateway (from source, with its heap flags) in its own process');
  const c = await csvBench({ rows: Number(process.env.BENCH_CSV_ROWS ?? 500_000), root });
  log(`  parse only (our streaming CSV reader, rows dropped)      ${fmt(c.parseRate).padStart(9)} rows/s`);
  log(
    `  gateway import of ${fmt(c.rows)} rows, ${fmt(c.bytes / 1048576, 1)} MiB (map, validate, seal, commit with the ledger; file sink relaying) ${fmt(c.importRate).padStart(7)} rows/s`,
  );
  log(
    `  ratio import/parse ${fmt(c.importRate / c.parseRate, 3)}; peak RSS ${fmt(c.peakRssMiB)} MiB (idle ${fmt(c.idleRssMiB)} MiB) — the file is streamed, never held whole`,
  );
  log(
    `  the whole job (import, then the relay's drain: ${fmt(c.jobMs / 1000, 1)} s): peak RSS ${fmt(c.jobPeakRssMiB)} MiB (goal ≤ 150); 5 s after it ${fmt(c.afterRssMiB)} MiB`,
  );
  log(
    `  heap allocated per row over the import, every isolate of the gateway (--trace-gc: freed + heap growth) ${fmt(c.allocatedBytesPerRow)} B/row in ${fmt(c.collections)} collections (goal ≤ 3,000 B/row)`,
  );
}

function allocSection(): void {
  log(
    '\n6. Mapping allocation: optical-csv patient rows through the compiled mappings beside the old mapping code (heap bytes via v8.GCProfiler)',
  );
  for (const line of allocLines(allocBench({ rows: Number(process.env.ALLOC_ROWS ?? 100_000), rounds: 2 }))) log(line);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
