import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { GatewayError } from '../../../gateway/errors.ts';
import { createFileSink, fileSinkPath, type SinkFileHandle } from '../../../gateway/sinks/file-sink.ts';
import type { RecordBatch } from '../../../gateway/sinks/sink.ts';

const sealer = createRecordSealer(Buffer.alloc(32, 3));
const clock = createManualClock(Date.UTC(2026, 11, 2, 8, 0, 0));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ewml-file-sink-'));
  dirs.push(d);
  return d;
}

/** A batch of `n` records whose lines together take well over 8,192 bytes. */
function batch(prefix: string, n: number, pad = 1500): RecordBatch {
  const sealed = Array.from({ length: n }, (_, i) => {
    const id = `${prefix}${i}`;
    return { id, type: 'patient', sealed: sealer.seal(id, JSON.stringify({ id, pad: 'x'.repeat(pad) })) };
  });
  return { batchId: `b-${prefix}`, ids: sealed.map((r) => r.id), json: [], sealed };
}

/** Every line of the file: it must parse and unseal; returns the record ids in file order. */
function linesOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => {
      const row = JSON.parse(l) as { id: string; sealed: string };
      const rec = JSON.parse(sealer.open(row.id, Buffer.from(row.sealed, 'base64')).toString('utf8')) as { id: string };
      expect(rec.id).toBe(row.id);
      return row.id;
    });
}

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
const eio = () => Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' });

type WriteStep = number | 'ENOSPC' | 'pass';
/**
 * A real file handle with faults: each write takes the next step (a number: write at most that
 * many bytes, for real, and report them; `ENOSPC`: fail), then passes through; each fsync takes
 * the next of `syncs` (then passes); truncate fails as many times as told first.
 */
function faultyOpen(plan: {
  writes?: WriteStep[];
  syncs?: Array<'ok' | 'EIO'>;
  truncateFails?: number;
  firstWriteWaitsFor?: Promise<void>;
}) {
  const seen = { writes: [] as number[], opens: 0, truncates: [] as number[], syncs: 0 };
  let held = plan.firstWriteWaitsFor;
  const writes = [...(plan.writes ?? [])];
  const syncs = [...(plan.syncs ?? [])];
  let truncateFails = plan.truncateFails ?? 0;
  const openFile = async (path: string): Promise<SinkFileHandle> => {
    seen.opens++;
    const fh = await open(path, 'a+', 0o600);
    return {
      async write(buffer, offset, length) {
        if (held) {
          const h = held;
          held = undefined;
          await h;
        }
        const step = writes.shift() ?? 'pass';
        if (step === 'ENOSPC') throw enospc();
        const n = step === 'pass' ? length : Math.min(step, length);
        const r = n === 0 ? { bytesWritten: 0 } : await fh.write(buffer, offset, n);
        seen.writes.push(r.bytesWritten);
        return r;
      },
      async sync() {
        seen.syncs++;
        if (syncs.shift() === 'EIO') throw eio();
        await fh.sync();
      },
      async truncate(len) {
        if (truncateFails > 0) {
          truncateFails--;
          throw eio();
        }
        seen.truncates.push(len);
        await fh.truncate(len);
      },
      stat: () => fh.stat(),
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      close: () => fh.close(),
    };
  };
  return { openFile, seen };
}

async function expectWriteFailed(p: Promise<unknown>): Promise<GatewayError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(GatewayError);
  expect(e).toMatchObject({ code: 'GW_SINK_WRITE_FAILED', retry: 'transient' });
  return e as GatewayError;
}

describe('file sink', () => {
  it('finishes a short write (8,192 bytes taken, no error) by writing the rest: the whole batch is on the disk', async () => {
    const dir = tempDir();
    const f = faultyOpen({ writes: [8192] });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const b = batch('a', 12);
    await sink.deliver(b);
    const file = fileSinkPath(dir, clock.now());
    expect(linesOf(file)).toEqual(b.ids);
    const size = statSync(file).size;
    expect(size).toBeGreaterThan(8192);
    expect(f.seen.writes).toEqual([8192, size - 8192]);
    await sink.stop();
  });

  it('fails a batch whose write stops short (a short write, then ENOSPC): nothing reported delivered, the file as it was before, and the retry writes it once', async () => {
    const dir = tempDir();
    const f = faultyOpen({ writes: ['pass', 8192, 'ENOSPC'] });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const a = batch('a', 3);
    const b = batch('b', 12);
    await sink.deliver(a);
    const file = fileSinkPath(dir, clock.now());
    const before = readFileSync(file);
    const e = await expectWriteFailed(sink.deliver(b));
    expect(e.message).toContain('nothing was reported delivered');
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(f.seen.truncates).toEqual([before.length]);
    expect(sink.health().detail).toMatchObject({ written: 3, writeFailures: 1, lastError: 'ENOSPC' });
    // space is back: the same batch again is written once, whole
    await sink.deliver(b);
    expect(linesOf(file)).toEqual([...a.ids, ...b.ids]);
    expect(sink.health().detail).toEqual({ written: 15, writeFailures: 1 });
    await sink.stop();
  });

  it('treats a write that takes no bytes and reports no error as a failure (it does not spin)', async () => {
    const dir = tempDir();
    const f = faultyOpen({ writes: [4096, 0] });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const e = await expectWriteFailed(sink.deliver(batch('a', 6)));
    expect(sink.health().detail).toMatchObject({ writeFailures: 1, lastError: 'short-write' });
    expect(e.cause).toMatchObject({ code: 'GW_SINK_WRITE_FAILED' });
    expect(statSync(fileSinkPath(dir, clock.now())).size).toBe(0);
    await sink.stop();
  });

  it('fails a batch whose fsync fails and cuts its bytes off again', async () => {
    const dir = tempDir();
    const f = faultyOpen({ syncs: ['ok', 'EIO'] });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const a = batch('a', 2);
    await sink.deliver(a);
    const file = fileSinkPath(dir, clock.now());
    const size = statSync(file).size;
    await expectWriteFailed(sink.deliver(batch('b', 4)));
    expect(statSync(file).size).toBe(size);
    expect(f.seen.truncates).toEqual([size]);
    expect(sink.health().detail).toMatchObject({ written: 2, writeFailures: 1, lastError: 'EIO' });
    await sink.deliver(batch('c', 1));
    expect(linesOf(file)).toEqual([...a.ids, 'c0']);
    await sink.stop();
  });

  it('when the cut back fails too, makes it on the next open, before the next batch is written', async () => {
    const dir = tempDir();
    const f = faultyOpen({ writes: ['pass', 8192, 'ENOSPC'], truncateFails: 1 });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const a = batch('a', 2);
    await sink.deliver(a);
    const file = fileSinkPath(dir, clock.now());
    const size = statSync(file).size;
    await expectWriteFailed(sink.deliver(batch('b', 12)));
    // the half batch is still there (the cut failed) ...
    expect(statSync(file).size).toBe(size + 8192);
    const c = batch('c', 2);
    await sink.deliver(c);
    // ... until the next batch, which reopened the file and cut it first
    expect(f.seen.opens).toBe(2);
    expect(f.seen.truncates).toEqual([size]);
    expect(linesOf(file)).toEqual([...a.ids, ...c.ids]);
    await sink.stop();
  });

  it("cuts a half line off the end of a day's file found at open (a crash between write and fsync) before appending", async () => {
    const dir = tempDir();
    const first = createFileSink({ dir, clock });
    await first.start();
    const a = batch('a', 2);
    await first.deliver(a);
    await first.stop();
    const file = fileSinkPath(dir, clock.now());
    const whole = statSync(file).size;
    writeFileSync(file, '{"id":"torn","type":"patient","sealedAt":"2026-12-02T08:00:00.000Z","sealed":"AQID', { flag: 'a' });
    const sink = createFileSink({ dir, clock });
    await sink.start();
    const b = batch('b', 2);
    await sink.deliver(b);
    expect(linesOf(file)).toEqual([...a.ids, ...b.ids]);
    expect(statSync(file).size).toBeGreaterThan(whole);
    await sink.stop();
  });

  it('writes batches delivered at once one after the other: a failing one does not cut the bytes of another', async () => {
    const dir = tempDir();
    const f = faultyOpen({ writes: [8192, 'ENOSPC'] });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const b1 = batch('p', 12);
    const b2 = batch('q', 3);
    const [r1, r2] = await Promise.allSettled([sink.deliver(b1), sink.deliver(b2)]);
    expect(r1.status).toBe('rejected');
    expect(r2.status).toBe('fulfilled');
    expect(linesOf(fileSinkPath(dir, clock.now()))).toEqual(b2.ids);
    expect(readdirSync(dir)).toEqual(['records-2026-12-02.ndjson']);
    await sink.stop();
  });

  it('writes the batches that arrived during a write together, in one write and one fsync; a group that fails fails all its batches and leaves none of their bytes', async () => {
    const dir = tempDir();
    let release!: () => void;
    const f = faultyOpen({
      firstWriteWaitsFor: new Promise<void>((r) => {
        release = r;
      }),
      writes: ['pass', 8192, 'ENOSPC'],
    });
    const sink = createFileSink({ dir, clock, openFile: f.openFile });
    await sink.start();
    const file = fileSinkPath(dir, clock.now());
    const [a, b, c] = [batch('a', 2), batch('b', 3), batch('c', 4)];
    const pa = sink.deliver(a);
    // a's group is being written (its write held): b and c wait, and go in the next write together
    const pb = sink.deliver(b);
    const pc = sink.deliver(c);
    release();
    await pa;
    const [rb, rc] = await Promise.allSettled([pb, pc]);
    expect([rb.status, rc.status]).toEqual(['rejected', 'rejected']);
    expect((rb as PromiseRejectedResult).reason).toBe((rc as PromiseRejectedResult).reason);
    expect(linesOf(file)).toEqual(a.ids);
    // one write for a, one (cut short, then refused) for b and c together; fsyncs: a's, and the cut's
    expect(f.seen.writes).toEqual([statSync(file).size, 8192]);
    expect(f.seen.syncs).toBe(2);
    await Promise.all([sink.deliver(b), sink.deliver(c)]);
    expect(linesOf(file)).toEqual([...a.ids, ...b.ids, ...c.ids]);
    expect(sink.health().detail).toEqual({ written: 9, writeFailures: 1 });
    await sink.stop();
  });
});
