/**
 * The HL7 v2 source adapter: an MLLP listener on `node:net` (node-hl7-server 2.5.0 re-ran its
 * handler for every earlier message of a persistent connection; see README "Dependencies").
 *
 * Per frame: bytes → text (MSH-18 charset) → parse → `ctx.intake` (which resolves only after the
 * outbox commit or the dead-letter write) → ACK. Frames of one connection are processed
 * concurrently (so a pipelining sender shares group commits) but answered strictly in order.
 * What senders may hold (unfinished frames' bytes and age, connections) is bounded by
 * mllp-sender-guard.ts, so a hostile or slow sender cannot lock out the PMS.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AdapterHealth, IntakeContext, IntakeResult, SourceAdapter } from '../contracts.ts';
import { answersFor, type AckAnswer } from './ack-policy.ts';
import { createSequenceTracker } from './sequence-tracker.ts';
import { CodecError } from '../contracts.ts';
import {
  buildAck,
  createAckIdSource,
  headerFromSegment,
  salvageHeader,
  type AckCode,
  type AckError,
  type InboundHeaderFields,
} from './ack-builder.ts';
import { decodeHl7Bytes, encodeHl7Text } from './hl7-charset.ts';
import { parseHl7, type Hl7Message } from './hl7-message.ts';
import { HL7_FORMAT } from './hl7-codec.ts';
import { createMllpFramer, frameMllp, FS, VT } from './mllp-framer.ts';
import { splitHl7Messages } from './hl7-batch.ts';
import { createSenderGuard, type GuardedConnection } from './mllp-sender-guard.ts';

/** The payload of one or more MLLP frames, as text (for nesting ACKs in a batch). */
function unframe(b: Buffer): string {
  let out = '';
  for (const part of b.toString('utf8').split(String.fromCharCode(FS) + '\r')) out += part.replace(String.fromCharCode(VT), '');
  return out;
}

export interface MllpListenerOptions {
  id?: string;
  host: string;
  port: number;
  maxFrameBytes: number;
  idleTimeoutMs: number;
  maxConnections: number;
  /** Bytes all connections together may hold in unfinished frames (at least maxFrameBytes is used); default 64 MiB. */
  maxPartialBytesTotal?: number;
  /** A frame begun and not ended this long closes its connection (at most idleTimeoutMs is used); default 60 s. */
  partialFrameTimeoutMs?: number;
  now?: () => number;
  /** Frames in progress per connection before the socket is paused (bounded memory). */
  maxPendingPerConnection?: number;
  /** `as-requested` follows MSH-15/16 (enhanced mode); `original` always answers AA/AE/AR. */
  acknowledgements?: 'as-requested' | 'original';
  /** How a message type the gateway does not map is answered (it is counted as ignored either way). */
  unmappedAck?: 'AA' | 'AE';
}

export interface MllpListener extends SourceAdapter {
  /** The bound port (useful with port 0 in tests). */
  address(): { host: string; port: number } | undefined;
}

export function createMllpListener(opts: MllpListenerOptions): MllpListener {
  const id = opts.id ?? 'hl7v2';
  const now = opts.now ?? Date.now;
  const maxPending = opts.maxPendingPerConnection ?? 512;
  const maxPendingBytes = Math.max(opts.maxFrameBytes, 16 * 1024 * 1024);
  const ackIds = createAckIdSource('GW', now());
  const sequences = createSequenceTracker();
  const sockets = new Set<Socket>();
  const inflight = new Set<Promise<unknown>>();
  let server: Server | undefined;
  let ctx: IntakeContext | undefined;
  let bound: { host: string; port: number } | undefined;
  const counts = { connections: 0, frames: 0, oversize: 0, strayBytes: 0, refused: 0 };
  const partialFrameTimeoutMs = Math.min(opts.partialFrameTimeoutMs ?? 60_000, opts.idleTimeoutMs);
  const guard = createSenderGuard({
    maxConnections: opts.maxConnections,
    maxPartialBytesTotal: Math.max(opts.maxPartialBytesTotal ?? 64 * 1024 * 1024, opts.maxFrameBytes),
    partialFrameTimeoutMs,
    now,
    logger: () => ctx?.logger,
  });
  let sweeper: NodeJS.Timeout | undefined;
  let connectionSeq = 0;

  function answer(
    header: InboundHeaderFields,
    code: AckCode,
    error: AckError | undefined,
    charset: string | undefined,
    expectedSequence?: string,
  ): Buffer {
    return frameMllp(
      encodeHl7Text(buildAck({ inbound: header, code, controlId: ackIds.next(), nowMs: now(), error, expectedSequence }), charset),
    );
  }

  /** Parses and checks the sequence number synchronously, in arrival order; the rest is async. */
  function handleFrame(payload: Buffer, c: IntakeContext): Promise<Buffer> {
    try {
      const text = decodeHl7Bytes(payload);
      if (/^[\s\uFEFF]*(FHS|BHS)/.test(text)) return handleBatch(text, c);
      return checkAndIntake(text, c);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * A batch in one frame (FHS/BHS … BTS/FTS, chapter 2.10.3): each message goes through intake on
   * its own, and the answer is one batch of ACKs (BHS, the ACK messages, BTS with their count).
   */
  async function handleBatch(text: string, c: IntakeContext): Promise<Buffer> {
    const messages = splitHl7Messages(text);
    const acks = await Promise.all(messages.map((m) => checkAndIntake(m, c)));
    const inner = acks.map((b) => unframe(b)).join('');
    const bhs = (text.split(/\r\n|\r|\n/).find((l) => /^\s*\uFEFF?BHS/.test(l)) ?? '').trim();
    const sep = bhs.charAt(3) || '|';
    const f = bhs ? bhs.split(sep) : [];
    const head = ['BHS', f[1] || '^~\\&', f[4] ?? '', f[5] ?? '', f[2] ?? '', f[3] ?? ''].join('|');
    const count = (inner.match(/(^|\r)MSH\|/g) ?? []).length;
    return frameMllp(Buffer.from(`${head}\r${inner}BTS|${count}\r`, 'utf8'));
  }

  function checkAndIntake(text: string, c: IntakeContext): Promise<Buffer> {
    let parsed: Hl7Message | undefined;
    try {
      parsed = parseHl7(text);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
    }
    const header = parsed ? headerFromSegment(parsed.segments[0], parsed.delimiters) : salvageHeader(text);
    const h = parsed?.header;
    const seq = h ? sequences.check(`${h.sendingApplication}|${h.sendingFacility}`, h.sequenceNumber) : { kind: 'none' as const };
    const mode = opts.acknowledgements ?? 'as-requested';
    const reply = (answers: AckAnswer[], expected?: string) =>
      Buffer.concat(answers.map((a) => answer(header, a.code, a.error, h?.charset, expected)));
    if (seq.kind === 'query')
      return Promise.resolve(reply([{ code: answersFor({ status: 'duplicate' }, h, mode)[0]?.code ?? 'AA' }], seq.expected));
    if (seq.kind === 'gap') {
      const refused: IntakeResult = {
        status: 'rejected',
        code: 'GW_SEQUENCE_GAP',
        retry: 'transient',
        reason: `sequence number ${h?.sequenceNumber} out of order; expected ${seq.expected}`,
        hl7ErrorCode: '207',
        location: { segment: 'MSH', sequence: 1, field: 13 },
      };
      return Promise.resolve(reply(answersFor(refused, h, mode).slice(0, 1), seq.expected));
    }
    return (async () => {
      let result: IntakeResult;
      try {
        result = await c.intake({ adapter: id, format: HL7_FORMAT, text, parsed });
      } catch (e) {
        c.logger.error({ err: e, controlId: h?.controlId }, 'intake failed unexpectedly');
        result = { status: 'rejected', code: 'GW_OUTBOX_IO', retry: 'transient', reason: 'internal error' };
      }
      if (seq.kind === 'accept' && result.status === 'rejected' && result.retry !== 'permanent') seq.rollback();
      return reply(
        answersFor(result, h, mode, opts.unmappedAck ?? 'AA'),
        seq.kind === 'accept' ? sequences.expected(`${h?.sendingApplication}|${h?.sendingFacility}`) : undefined,
      );
    })();
  }

  function onConnection(socket: Socket, c: IntakeContext): void {
    let tail: Promise<void> = Promise.resolve();
    let pending = 0;
    let pendingBytes = 0;
    let closing = false;
    const conn: GuardedConnection = {
      seq: ++connectionSeq,
      partialBytes: 0,
      partialSince: undefined,
      frames: 0,
      lastActivity: now(),
      remotePort: socket.remotePort,
      busy: () => pending > 0,
      destroy: () => {
        closing = true;
        socket.destroy();
      },
    };
    if (!guard.admit(conn)) {
      counts.refused++;
      c.logger.warn(
        { code: 'GW_SENDER_LIMIT', max: opts.maxConnections },
        'MLLP connection refused: at hl7.maxConnections and every connection is busy or has sent complete frames lately',
      );
      socket.destroy();
      return;
    }
    sockets.add(socket);
    counts.connections++;
    socket.setNoDelay(true);
    socket.setTimeout(opts.idleTimeoutMs, () => {
      c.logger.info({ remotePort: socket.remotePort }, 'closing idle MLLP connection');
      socket.destroy();
    });
    const write = (buf: Buffer) => {
      if (buf.length && !socket.destroyed) socket.write(buf);
    };
    // bounded memory: stop reading while too many frames or bytes of this connection are in progress
    const over = () => pending >= maxPending || pendingBytes >= maxPendingBytes;
    const enqueue = (work: Promise<Buffer>, size: number, then?: () => void) => {
      // handled in the chain below; this keeps a failure that comes before its turn from being
      // reported as an unhandled rejection (which would end the process)
      work.catch(() => undefined);
      pending++;
      pendingBytes += size;
      if (over()) socket.pause();
      const done = tail
        .then(() => work)
        .then(
          (ack) => {
            write(ack);
            then?.();
          },
          (err: unknown) => {
            c.logger.error({ err }, 'MLLP frame handling failed');
            socket.destroy();
          },
        )
        .finally(() => {
          pending--;
          pendingBytes -= size;
          if (!over() && !closing && socket.isPaused()) {
            socket.resume();
            // the frame waited on us while reading was paused: its time starts again now
            if (framer.inFrame) conn.partialSince = now();
          }
        });
      tail = done;
      inflight.add(done);
      void done.finally(() => inflight.delete(done));
    };
    const framer = createMllpFramer(opts.maxFrameBytes, {
      frame(payload) {
        counts.frames++;
        conn.frames++;
        enqueue(handleFrame(payload, c), payload.length);
      },
      oversize(head, size) {
        counts.oversize++;
        closing = true;
        c.logger.warn({ code: 'GW_FRAME_TOO_LARGE', size, max: opts.maxFrameBytes }, 'MLLP frame over the limit; answering AR and closing');
        const header = salvageHeader(head.toString('latin1'));
        const ack = answer(
          header,
          'AR',
          { code: '207', text: `GW_FRAME_TOO_LARGE: frame of ${size} bytes exceeds ${opts.maxFrameBytes}` },
          undefined,
        );
        enqueue(Promise.resolve(ack), 0, () => socket.end());
      },
    });
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      conn.lastActivity = now();
      const framesBefore = conn.frames;
      const abandonedBefore = framer.stats.abandoned;
      const wasInFrame = framer.inFrame;
      framer.push(chunk);
      if (closing) return;
      // the unfinished frame's age counts from its first byte: trickling bytes does not extend it
      if (!framer.inFrame || socket.isPaused()) conn.partialSince = undefined;
      else if (!wasInFrame || conn.frames !== framesBefore || framer.stats.abandoned !== abandonedBefore || conn.partialSince === undefined)
        conn.partialSince = now();
      guard.held(conn, framer.pending);
    });
    socket.on('error', (err) => c.logger.debug({ err: { code: (err as NodeJS.ErrnoException).code } }, 'MLLP socket error'));
    socket.on('close', () => {
      counts.strayBytes += framer.stats.strayBytes;
      guard.forget(conn);
      sockets.delete(socket);
    });
  }

  let starting: Promise<void> | undefined;

  async function listen(c: IntakeContext): Promise<void> {
    ctx = c;
    // connections over hl7.maxConnections are taken and then closed (room made or refused) by the guard
    const s = createServer({ noDelay: true }, (sock) => onConnection(sock, c));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(opts.port, opts.host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (err) => c.logger.error({ err }, 'MLLP server error'));
    const a = s.address();
    bound = a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
    server = s;
    sweeper = setInterval(() => guard.sweep(), Math.min(1000, Math.max(25, Math.floor(partialFrameTimeoutMs / 4))));
    sweeper.unref();
    c.logger.info({ host: bound?.host, port: bound?.port }, 'MLLP listener started');
  }

  return {
    id,
    address: () => bound,
    /** A second start while listening, or while the first is still binding, binds nothing more. */
    start(c) {
      if (server) return Promise.resolve();
      starting ??= listen(c).finally(() => {
        starting = undefined;
      });
      return starting;
    },
    async stop() {
      // a stop during the bind waits for it, so the socket it opens is closed too
      if (starting) await starting.catch(() => undefined);
      const s = server;
      if (!s) return;
      server = undefined;
      if (sweeper) {
        clearInterval(sweeper);
        sweeper = undefined;
      }
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      await Promise.allSettled([...inflight]);
      for (const sock of sockets) sock.destroy();
      await closed;
      ctx?.logger.info('MLLP listener stopped');
    },
    health(): AdapterHealth {
      return {
        status: server ? 'up' : 'down',
        detail: {
          openConnections: sockets.size,
          connections: counts.connections,
          frames: counts.frames,
          oversize: counts.oversize,
          refused: counts.refused,
          port: bound?.port ?? opts.port,
          partialBytes: guard.partialBytes,
          closedForPartialBytes: guard.closed['partial-bytes'],
          closedForPartialTimeout: guard.closed['partial-timeout'],
          closedToMakeRoom: guard.closed['make-room'],
        },
      };
    },
  };
}
