/** The local file sink against the Sink contract: real files in a temporary folder. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { createFileSink } from '../../gateway/sinks/file-sink.ts';
import type { RecordBatch } from '../../gateway/sinks/sink.ts';
import { sinkContract } from './sink-contract.ts';

let made = 0;

sinkContract({
  name: 'file sink',
  kind: 'file',
  beforeStart: 'opens',
  // a write in progress is local I/O: stop waits for it, and what it reports delivered is in the file
  atStop: 'completes',
  restartable: true,
  batch(n) {
    const ids = Array.from({ length: n }, (_, i) => deterministicId('sink-contract', 'file', String(++made), String(i)));
    return { batchId: deterministicId('batch', ...ids), ids, json: [], sealed: ids.map((id) => ({ id, type: 'patient', sealed: new Uint8Array(Buffer.from(`sealed ${id}`)) })) } satisfies RecordBatch;
  },
  async make() {
    const root = mkdtempSync(join(tmpdir(), 'ewml-file-sink-contract-'));
    const dir = join(root, 'outbound');
    const sink = createFileSink({ dir, clock: createManualClock(Date.UTC(2026, 11, 2, 8)) });
    return {
      sink,
      async received() {
        if (!existsSync(dir)) return new Set<string>();
        const ids = readdirSync(dir).filter((f) => f.endsWith('.ndjson')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
          .flatMap((l) => { const r = JSON.parse(l) as { id: string; ids?: string[] }; return r.ids ?? [r.id]; });
        return new Set(ids);
      },
      async cleanup() { await sink.stop(); rmSync(root, { recursive: true, force: true }); },
    };
  },
});
