/** The local file sink against the Sink contract: real files in a temporary folder. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { open } from 'node:fs/promises';
import { createFileSink, type SinkFileHandle } from '../../gateway/sinks/file-sink.ts';
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
    return {
      batchId: deterministicId('batch', ...ids),
      ids,
      json: [],
      sealed: ids.map((id) => ({ id, type: 'patient', sealed: new Uint8Array(Buffer.from(`sealed ${id}`)) })),
    } satisfies RecordBatch;
  },
  async make() {
    const root = mkdtempSync(join(tmpdir(), 'ewml-file-sink-contract-'));
    const dir = join(root, 'outbound');
    // a write can be held (a slow disk): it waits for `gate` before going to the real file
    let gate: Promise<void> | undefined;
    let release = () => undefined as void;
    const openFile = async (path: string): Promise<SinkFileHandle> => {
      const fh = await open(path, 'a+', 0o600);
      return {
        write: async (buf, off, len) => {
          if (gate) await gate;
          return fh.write(buf, off, len);
        },
        sync: () => fh.sync(),
        truncate: (n) => fh.truncate(n),
        stat: () => fh.stat(),
        read: (buf, off, len, pos) => fh.read(buf, off, len, pos),
        close: () => fh.close(),
      };
    };
    const sink = createFileSink({ dir, clock: createManualClock(Date.UTC(2026, 11, 2, 8)), openFile });
    return {
      sink,
      stall() {
        gate = new Promise<void>((r) => {
          release = () => {
            gate = undefined;
            r();
          };
        });
        return { release: () => release() };
      },
      async received() {
        if (!existsSync(dir)) return new Set<string>();
        const ids = readdirSync(dir)
          .filter((f) => f.endsWith('.ndjson'))
          .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
          .flatMap((l) => {
            const r = JSON.parse(l) as { id: string; ids?: string[] };
            return r.ids ?? [r.id];
          });
        return new Set(ids);
      },
      async cleanup() {
        release();
        await sink.stop();
        rmSync(root, { recursive: true, force: true });
      },
    };
  },
});
