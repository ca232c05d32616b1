/**
 * File source figures: a 500,000-row CSV export imported by a gateway process (parse, map,
 * validate, seal, commit with the ledger; the file sink relaying meanwhile) — rows/s, the process's
 * peak RSS over the import and over the whole job (until the relay has drained the outbox), and
 * what it gives back after — beside parsing the same file with the same CSV reader and doing nothing
 * else (the parsing floor).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCsv } from '../../adapters/file/file-formats.ts';
import { freePort } from '../support/net.ts';
import { spawnGateway, stopChild, type GcTally } from './child.ts';

export interface CsvBenchResult {
  rows: number;
  bytes: number;
  parseRate: number;
  importRate: number;
  /** Peak RSS while the file was imported (until it was moved to processed/). */
  peakRssMiB: number;
  /** Peak RSS over the whole job: the import and the relay's drain of what it queued. */
  jobPeakRssMiB: number;
  /** From the file's arrival until the outbox was empty again. */
  jobMs: number;
  /** RSS 5 s after the drain: what the process gives back after the peak. */
  afterRssMiB: number;
  idleRssMiB: number;
  /** Heap bytes allocated per row over the import, the gateway's every isolate (from --trace-gc), and the collections counted. */
  allocatedBytesPerRow: number;
  collections: number;
}

async function writeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write('patient_id,last_name,first_name,birth_date,sex,address,city,state,zip,phone,email\n');
  for (let i = 1; i <= rows; i++) {
    const line = `P${i},Synth${i % 997},"Test, ${i % 89}",${String((i % 12) + 1).padStart(2, '0')}/${String((i % 28) + 1).padStart(2, '0')}/19${50 + (i % 50)},${i % 2 ? 'F' : 'M'},${i % 900} Synthetic St,Testville,TX,7${String(i % 10000).padStart(4, '0')},555-01${String(i % 100).padStart(2, '0')},p${i}@example.test\n`;
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
}

const rssOf = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { hwm: Number(/VmHWM:\s+(\d+)/.exec(s)![1]) / 1024, rss: Number(/VmRSS:\s+(\d+)/.exec(s)![1]) / 1024 };
};

export async function csvBench(o: { rows: number; root: string }): Promise<CsvBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-bench-csv-'));
  const file = join(dir, 'patients_bench.csv');
  await writeCsv(file, o.rows);
  const bytes = statSync(file).size;

  let t0 = performance.now();
  let n = 0;
  for await (const _ of readCsv(file, { delimiter: ',', quote: '"', header: true, encoding: 'utf-8' })) n++;
  const parseRate = (n / (performance.now() - t0)) * 1000;

  const exportDir = join(dir, 'export');
  mkdirSync(exportDir);
  const adminPort = await freePort();
  const cfg = join(dir, 'gw.yaml');
  writeFileSync(
    cfg,
    `gateway:\n  dataDir: ${dir}/data\nlog:\n  level: warn\nhl7:\n  enabled: false\nadmin:\n  port: ${adminPort}\nfiles:\n  - id: bench\n    dir: ${exportDir}\n    profile: optical-csv\n    stableMs: 0\n    pageSize: 1000\n`,
  );
  const gc: GcTally = { freedMb: 0, lastAfterMb: new Map(), collections: 0 };
  const child = await spawnGateway(join(o.root, 'bin/eyewear-gateway.js'), cfg, adminPort, { gc });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssOf(child.pid!).rss;
    const freedBefore = gc.freedMb;
    const heapBefore = new Map(gc.lastAfterMb);
    const collectionsBefore = gc.collections;
    t0 = performance.now();
    renameSync(file, join(exportDir, 'patients_bench.csv'));
    const done = join(exportDir, 'processed', 'patients_bench.csv');
    const deadline = Date.now() + 600_000;
    while (!existsSync(done)) {
      if (Date.now() > deadline) throw new Error('import did not finish in 10 minutes');
      await new Promise((r) => setTimeout(r, 25));
    }
    const importMs = performance.now() - t0;
    const peak = rssOf(child.pid!).hwm;
    // allocated over the import = what was freed + how much each heap grew (an isolate new since: all of it)
    let growthMb = 0;
    for (const [isolate, after] of gc.lastAfterMb) growthMb += after - (heapBefore.get(isolate) ?? 0);
    const collections = gc.collections - collectionsBefore;
    const allocatedBytesPerRow = ((gc.freedMb - freedBefore + growthMb) * 1024 * 1024) / n;
    // the job goes on until the relay has delivered what the import queued (bounded like the import)
    const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
    for (;;) {
      const st = (await (
        await fetch(`http://127.0.0.1:${adminPort}/status`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        outbox: { pending: number; inFlight: number; waitingRetry: number };
      };
      if (st.outbox.pending + st.outbox.inFlight + st.outbox.waitingRetry === 0) break;
      if (Date.now() > deadline) throw new Error('the relay did not drain the outbox in 10 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    const jobMs = performance.now() - t0;
    const jobPeak = rssOf(child.pid!).hwm;
    await new Promise((r) => setTimeout(r, 5000));
    const after = rssOf(child.pid!).rss;
    return {
      rows: n,
      bytes,
      parseRate,
      importRate: (n / importMs) * 1000,
      peakRssMiB: peak,
      jobPeakRssMiB: jobPeak,
      jobMs,
      afterRssMiB: after,
      idleRssMiB: idle,
      allocatedBytesPerRow,
      collections,
    };
  } finally {
    await stopChild(child);
  }
}
