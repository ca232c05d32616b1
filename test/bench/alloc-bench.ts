/**
 * Allocation per CSV row in the mapping step (issue 14): 100,000 synthetic patient rows, the
 * csv-bench's shape, mapped through the real path (`optical-csv` profile, `mapFileRow` →
 * `recordsFromRow` → compiled `buildData`) beside the old mapping code (a frozen copy:
 * test/adapters/canonical/legacy-field-mapping.ts), ABBA-interleaved in one process, ratios printed.
 * No reader, no outbox: only the mapping (rows are built before; each row's hash is computed before,
 * as file-import.ts does when it reads the row).
 *
 * How bytes are measured: Node 24's `v8.getHeapStatistics()` has no `total_allocated_bytes`, so a
 * `v8.GCProfiler` runs over each pass: allocated = heap used at the end − heap used at the start +
 * what every GC of the pass freed (Σ used before − used after). Heap (V8) bytes only: the
 * off-heap part (Buffers) is not counted; the mapping makes none.
 *
 *   npx node test/bench/alloc-bench.ts            (ALLOC_ROWS=100000, ALLOC_ROUNDS=2 → ABBA ABBA)
 */
import { fileURLToPath } from 'node:url';
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { rowHash } from '../../adapters/canonical/row-hash.ts';
import type { MapResult, RawRow } from '../../adapters/contracts.ts';
import { mapFileRow } from '../../adapters/file/file-import.ts';
import { FILE_PROFILES } from '../../adapters/file/file-profiles.ts';
import type { FileKind } from '../../adapters/file/file-profiles.ts';
import { legacyRecordsFromRow } from '../adapters/canonical/legacy-field-mapping.ts';

export interface AllocPass {
  impl: 'new' | 'old';
  rows: number;
  bytesPerRow: number;
  rowsPerSecond: number;
}

export interface AllocBenchResult {
  rows: number;
  passes: AllocPass[];
  newBytesPerRow: number;
  oldBytesPerRow: number;
  newRate: number;
  oldRate: number;
}

/** The csv-bench's rows (test/bench/csv-bench.ts writeCsv), as the CSV reader yields them: all text. */
export function syntheticPatientRows(n: number): RawRow[] {
  const rows: RawRow[] = [];
  for (let i = 1; i <= n; i++) {
    const data: Record<string, unknown> = {
      patient_id: `P${i}`,
      last_name: `Synth${i % 997}`,
      first_name: `Test, ${i % 89}`,
      birth_date: `${String((i % 12) + 1).padStart(2, '0')}/${String((i % 28) + 1).padStart(2, '0')}/19${50 + (i % 50)}`,
      sex: i % 2 ? 'F' : 'M',
      address: `${i % 900} Synthetic St`,
      city: 'Testville',
      state: 'TX',
      zip: `7${String(i % 10000).padStart(4, '0')}`,
      phone: `555-01${String(i % 100).padStart(2, '0')}`,
      email: `p${i}@example.test`,
    };
    rows.push({ pk: `patients#${i}`, data, hash: rowHash(data) });
  }
  return rows;
}

const gc: () => void = (() => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

type MapFn = (row: RawRow) => MapResult;

function measure(impl: 'new' | 'old', map: MapFn, rows: RawRow[]): AllocPass {
  gc();
  gc();
  let records = 0;
  const profiler = new GCProfiler();
  profiler.start();
  const used0 = getHeapStatistics().used_heap_size;
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i++) records += map(rows[i]).records.length;
  const ms = performance.now() - t0;
  const used1 = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let freed = 0;
  for (const s of statistics) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  if (records !== rows.length)
    throw new Error(`${impl}: ${records} records from ${rows.length} rows (expected one patient per row): the mapping changed`);
  return { impl, rows: rows.length, bytesPerRow: (used1 - used0 + freed) / rows.length, rowsPerSecond: (rows.length / ms) * 1000 };
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

export function allocBench(o: { rows?: number; rounds?: number } = {}): AllocBenchResult {
  const n = o.rows ?? 100_000;
  const rounds = Math.max(1, o.rounds ?? 2);
  const kind = FILE_PROFILES['optical-csv'].kinds.find((k) => k.name === 'patients') as FileKind;
  const opts = { adapterId: 'bench', system: 'OPTICAL-PMS', timezone: 'UTC', now: () => Date.UTC(2026, 11, 2) };
  const rows = syntheticPatientRows(n);
  const next: MapFn = (row) => mapFileRow(opts, kind, row);
  // the same options mapFileRow builds, handed to the old code
  const old: MapFn = (row) => {
    const key = String(row.data[kind.key as string] ?? '');
    return legacyRecordsFromRow(row.data, kind.records, {
      idParts: ['file', opts.adapterId, kind.name],
      rowHash: row.hash as string,
      system: opts.system,
      adapter: 'file',
      sourceId: `${kind.name}/${key || row.pk}`,
      partition: `${opts.adapterId}:${kind.name}:${key || row.pk}`,
      where: kind.name,
      timezone: opts.timezone,
      now: opts.now,
    });
  };
  const same = JSON.stringify(rows.slice(0, 1000).map(next)) === JSON.stringify(rows.slice(0, 1000).map(old));
  if (!same)
    throw new Error('the compiled mapping and the old one give different records: run test/adapters/canonical/compiled-mapping.test.ts');
  // warm both up (JIT) on a tenth of the rows, then A B B A per round
  measure('new', next, rows.slice(0, Math.ceil(n / 10)));
  measure('old', old, rows.slice(0, Math.ceil(n / 10)));
  const passes: AllocPass[] = [];
  for (let r = 0; r < rounds; r++)
    for (const impl of ['new', 'old', 'old', 'new'] as const) passes.push(measure(impl, impl === 'new' ? next : old, rows));
  const of = (impl: 'new' | 'old', f: (p: AllocPass) => number) => median(passes.filter((p) => p.impl === impl).map(f));
  return {
    rows: n,
    passes,
    newBytesPerRow: of('new', (p) => p.bytesPerRow),
    oldBytesPerRow: of('old', (p) => p.bytesPerRow),
    newRate: of('new', (p) => p.rowsPerSecond),
    oldRate: of('old', (p) => p.rowsPerSecond),
  };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export function allocLines(r: AllocBenchResult): string[] {
  return [
    `  passes (ABBA): ${r.passes.map((p) => `${p.impl} ${fmt(p.bytesPerRow)} B/row ${fmt(p.rowsPerSecond)} rows/s`).join('; ')}`,
    `  compiled mapping ${fmt(r.newBytesPerRow).padStart(7)} B/row ${fmt(r.newRate).padStart(9)} rows/s (median)`,
    `  old mapping      ${fmt(r.oldBytesPerRow).padStart(7)} B/row ${fmt(r.oldRate).padStart(9)} rows/s (median)`,
    `  ratio new/old: bytes ${fmt(r.newBytesPerRow / r.oldBytesPerRow, 3)}, rate ${fmt(r.newRate / r.oldRate, 3)}`,
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = allocBench({ rows: Number(process.env.ALLOC_ROWS ?? 100_000), rounds: Number(process.env.ALLOC_ROUNDS ?? 2) });
  process.stdout.write(
    `Mapping allocation, ${fmt(r.rows)} optical-csv patient rows per pass (heap bytes via v8.GCProfiler)\n${allocLines(r).join('\n')}\n`,
  );
}
