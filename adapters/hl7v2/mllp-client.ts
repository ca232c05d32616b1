/**
 * A small MLLP client: sends messages over one connection and reads the answers in order.
 * Used by the CLI's `send` (a technician's connection check), the tests and the benchmarks.
 */
import { connect, type Socket } from 'node:net';
import { createMllpFramer, frameMllp } from './mllp-framer.ts';

export interface MllpClient {
  /** Sends one message and resolves with the next answer frame (as text). */
  send(message: string | Buffer, timeoutMs?: number): Promise<string>;
  /** Writes raw bytes (for framing tests); answers arrive through `nextAnswer`. */
  writeRaw(bytes: Buffer): void;
  nextAnswer(timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
  readonly socket: Socket;
}

export async function connectMllp(host: string, port: number, opts: { maxFrameBytes?: number } = {}): Promise<MllpClient> {
  const socket = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const answers: string[] = [];
  const waiting: Array<{ resolve: (s: string) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }> = [];
  let closedError: Error | undefined;
  const framer = createMllpFramer(opts.maxFrameBytes ?? 64 * 1024 * 1024, {
    frame(p) {
      const text = p.toString('utf8');
      const w = waiting.shift();
      if (w) {
        if (w.timer) clearTimeout(w.timer);
        w.resolve(text);
      } else answers.push(text);
    },
    oversize(_head, size) {
      const w = waiting.shift();
      const e = new Error(`answer of ${size} bytes exceeds the client's limit`);
      if (w) {
        if (w.timer) clearTimeout(w.timer);
        w.reject(e);
      } else answers.push(`(oversize answer: ${size} bytes)`);
    },
  });
  socket.on('data', (c: Buffer) => framer.push(c));
  const fail = (e: Error) => {
    closedError = e;
    for (const w of waiting.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(e);
    }
  };
  socket.on('error', (e) => fail(e));
  socket.on('close', () => fail(new Error('connection closed')));

  function nextAnswer(timeoutMs = 10_000): Promise<string> {
    const a = answers.shift();
    if (a !== undefined) return Promise.resolve(a);
    if (closedError) return Promise.reject(closedError);
    return new Promise((resolve, reject) => {
      const w: (typeof waiting)[number] = { resolve, reject };
      if (timeoutMs > 0)
        w.timer = setTimeout(() => {
          const i = waiting.indexOf(w);
          if (i >= 0) waiting.splice(i, 1);
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      waiting.push(w);
    });
  }

  return {
    socket,
    send(message, timeoutMs) {
      socket.write(frameMllp(message));
      return nextAnswer(timeoutMs);
    },
    writeRaw(bytes) {
      socket.write(bytes);
    },
    nextAnswer,
    close: () =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) {
          resolve();
          return;
        }
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }),
  };
}

/** MSA-1 and MSA-2 of an answer (and the ERR segment, if any), read loosely. */
export function readAck(text: string): { code: string; controlId: string; err?: string; msh: string[] } {
  const segs = text.split(/\r\n|\r|\n/).filter(Boolean);
  const msh = segs.find((s) => s.startsWith('MSH')) ?? '';
  const f = msh.charAt(3) || '|';
  const msa = (segs.find((s) => s.startsWith('MSA')) ?? '').split(f);
  const err = segs.find((s) => s.startsWith('ERR'));
  const mshFields = msh.split(f);
  mshFields.splice(1, 0, f);
  return { code: msa[1] ?? '', controlId: msa[2] ?? '', err, msh: mshFields };
}
