/**
 * The local file sink (the embedded default, before enrolment): appends each outbox row as one
 * NDJSON line `{id, type, sealedAt, sealed}` — a bundle's line also has `ids`, its records in order
 * — to `<dataDir>/<dir>/records-YYYY-MM-DD.ndjson`, sealed with the gateway's own key
 * (`eyewear-gateway unseal FILE` reads it back, one record per line), and fsyncs before it
 * reports the batch acknowledged. The blobs are the outbox's own (AES-256-GCM, the row id as
 * AAD): nothing is decrypted or re-encrypted on the way.
 */
import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.ts';
import { GatewayError } from '../errors.ts';
import type { DeliveryResult, RecordBatch, Sink } from './sink.ts';

export interface FileSinkOptions { dir: string; clock: Clock }

export function fileSinkPath(dir: string, ms: number): string {
  return join(dir, `records-${new Date(ms).toISOString().slice(0, 10)}.ndjson`);
}

export function createFileSink(opts: FileSinkOptions): Sink {
  let written = 0;
  let started = false;
  // the day's file stays open between batches (one open per day, not per batch); the promise is
  // kept so that batches delivered at once share one open instead of leaking a handle each
  let current: { path: string; fh: Promise<FileHandle> } | undefined;
  function handleFor(path: string): Promise<FileHandle> {
    if (current?.path === path) return current.fh;
    const old = current;
    current = { path, fh: open(path, 'a', 0o600) };
    void old?.fh.then((h) => h.close()).catch(() => undefined);
    return current.fh;
  }
  function drop(): void {
    const old = current;
    current = undefined;
    void old?.fh.then((h) => h.close()).catch(() => undefined);
  }
  return {
    kind: 'file',
    takesSealed: true,
    async start() { mkdirSync(opts.dir, { recursive: true, mode: 0o700 }); started = true; },
    async stop() { started = false; const old = current; current = undefined; await old?.fh.then((h) => h.close()).catch(() => undefined); },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      const now = opts.clock.now();
      const sealedAt = new Date(now).toISOString();
      if (!batch.sealed) throw new GatewayError('GW_SINK_REJECTED', 'file sink needs the sealed rows of the batch');
      const lines = batch.sealed.map((r) => JSON.stringify({ id: r.id, type: r.type, ...(r.recordIds ? { ids: r.recordIds } : {}), sealedAt, sealed: Buffer.from(r.sealed.buffer, r.sealed.byteOffset, r.sealed.byteLength).toString('base64') })).join('\n') + '\n';
      try {
        const fh = await handleFor(fileSinkPath(opts.dir, now));
        await fh.write(lines);
        await fh.sync();
      } catch (e) {
        drop();
        throw new GatewayError('GW_SINK_UNREACHABLE', 'file sink could not write', { cause: e });
      }
      written += batch.ids.length;
      return { rejected: [] };
    },
    health: () => ({ connected: started, detail: { written } }),
  };
}
