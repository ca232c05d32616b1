/**
 * Outbound HL7 over MLLP: a small pool of keep-alive connections to a PMS listener. Each message
 * waits for its own ACK: an answer whose MSA-2 is not this message's MSH-10 (a late ACK for a
 * message that timed out) is never taken for this one. A timeout is ambiguous — the PMS may have
 * the message — so the connection is closed (its state is unknown) and the caller decides by its
 * retry policy; the PMS's own duplicate checks (MSH-10) make a resend safe.
 *
 * This is the transport for the outbound queue (cloud commands → SIU, ORM/OMG, DFT to the PMS).
 */
import { connect, type Socket } from 'node:net';
import { GatewayError } from '../../gateway/errors.ts';
import { createMllpFramer, frameMllp } from './mllp-framer.ts';
import { readAck } from './mllp-client.ts';

export interface MllpSenderOptions {
  host: string;
  port: number;
  /** Connections at most (one message in flight on each). */
  poolSize?: number;
  ackTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Close a connection idle this long. */
  idleMs?: number;
}

export interface SendResult {
  /** MSA-1: AA/AE/AR (original mode) or CA/CE/CR (enhanced). */
  code: string;
  controlId: string;
  /** The ERR segment, when the PMS sent one. */
  error?: string;
}

interface Conn {
  socket: Socket;
  busy: boolean;
  waiter?: { controlId: string; resolve: (r: SendResult) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout };
  idleTimer?: NodeJS.Timeout;
  staleAcks: number;
}

/** MSH-10 of an outbound message (its own field separator). */
export function controlIdOf(message: string): string {
  const line = message.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)[0] ?? '';
  return line.split(line.charAt(3) || '|')[9] ?? '';
}

export interface MllpSender {
  send(message: string): Promise<SendResult>;
  close(): Promise<void>;
  stats(): { open: number; busy: number; queued: number; staleAcks: number };
}

export function createMllpSender(o: MllpSenderOptions): MllpSender {
  const poolSize = o.poolSize ?? 2;
  const ackTimeoutMs = o.ackTimeoutMs ?? 30_000;
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  const idleMs = o.idleMs ?? 60_000;
  const conns = new Set<Conn>();
  const queue: Array<() => void> = [];
  let staleAcks = 0;
  let opening = 0;
  let closed = false;

  function drop(c: Conn, err: unknown): void {
    conns.delete(c);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    const w = c.waiter;
    c.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    c.socket.destroy();
    queue.shift()?.();
  }

  function open(): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: o.host, port: o.port, noDelay: true });
      const t = setTimeout(() => {
        socket.destroy();
        reject(new GatewayError('GW_SINK_UNREACHABLE', `no connection to ${o.host}:${o.port} within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const c: Conn = { socket, busy: false, staleAcks: 0 };
      const framer = createMllpFramer(1024 * 1024, {
        frame(payload) {
          const ack = readAck(payload.toString('utf8'));
          const w = c.waiter;
          if (!w || ack.controlId !== w.controlId) {
            c.staleAcks++;
            staleAcks++;
            return;
          } // a late ACK for another message
          c.waiter = undefined;
          clearTimeout(w.timer);
          w.resolve({ code: ack.code, controlId: ack.controlId, ...(ack.err ? { error: ack.err } : {}) });
        },
        oversize() {
          drop(c, new GatewayError('GW_SINK_REJECTED', 'the PMS answered with an oversized frame'));
        },
      });
      socket.once('connect', () => {
        clearTimeout(t);
        socket.setKeepAlive(true, 30_000);
        c.busy = true; // opened for the caller that asked: nobody else may take it first
        conns.add(c);
        resolve(c);
      });
      socket.on('data', (d: Buffer) => framer.push(d));
      socket.on('error', (e) => {
        clearTimeout(t);
        const err = new GatewayError(
          'GW_SINK_UNREACHABLE',
          `MLLP connection to ${o.host}:${o.port} failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
          { cause: e },
        );
        if (conns.has(c)) drop(c, err);
        else reject(err);
      });
      socket.on('close', () => {
        if (conns.has(c)) drop(c, new GatewayError('GW_SINK_UNREACHABLE', 'the PMS closed the connection', { retry: 'ambiguous' }));
      });
    });
  }

  async function acquire(): Promise<Conn> {
    for (;;) {
      if (closed) throw new GatewayError('GW_SINK_UNREACHABLE', 'sender closed');
      for (const c of conns)
        if (!c.busy) {
          c.busy = true;
          if (c.idleTimer) clearTimeout(c.idleTimer);
          return c;
        }
      if (conns.size + opening < poolSize) {
        opening++;
        try {
          const c = await open();
          c.busy = true;
          return c;
        } finally {
          opening--;
        }
      }
      await new Promise<void>((r) => queue.push(r));
    }
  }

  function release(c: Conn): void {
    c.busy = false;
    if (conns.has(c)) {
      c.idleTimer = setTimeout(() => {
        if (!c.busy) drop(c, new GatewayError('GW_SINK_UNREACHABLE', 'idle'));
      }, idleMs);
      c.idleTimer.unref?.();
    }
    queue.shift()?.();
  }

  return {
    async send(message) {
      const controlId = controlIdOf(message);
      if (!controlId) throw new GatewayError('GW_PARSE_FAILED', 'outbound message has no MSH-10');
      const c = await acquire();
      try {
        return await new Promise<SendResult>((resolve, reject) => {
          const timer = setTimeout(() => {
            // the PMS may or may not have it: close this connection, its state is unknown
            drop(c, new GatewayError('GW_SINK_TIMEOUT', `no ACK for ${controlId} within ${ackTimeoutMs} ms`));
          }, ackTimeoutMs);
          c.waiter = { controlId, resolve, reject, timer };
          c.socket.write(frameMllp(message));
        });
      } finally {
        release(c);
      }
    },
    async close() {
      closed = true;
      for (const c of [...conns]) drop(c, new GatewayError('GW_SINK_UNREACHABLE', 'sender closed'));
      for (const r of queue.splice(0)) r();
    },
    stats: () => ({ open: conns.size, busy: [...conns].filter((c) => c.busy).length, queued: queue.length, staleAcks }),
  };
}
