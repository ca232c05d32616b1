/**
 * The MLLP listener's limits on what senders may hold, so that no sender — hostile, broken or
 * slow — can lock out the PMS or grow the gateway's memory without bound:
 *
 * - **Bytes in unfinished frames, in total** (`hl7.maxPartialBytesTotal`; one connection's frame
 *   is capped by `hl7.maxFrameBytes` in the framer). When a read takes the total over the cap, a
 *   connection that has never completed a frame is closed before one that has; among those, the
 *   one whose frame began last (usually the one growing now, so what is closed holds little and
 *   memory stays near the cap instead of churning through the largest holders), then the one
 *   holding the most. A sender of complete frames is closed only when no stranger holds anything.
 * - **A frame begun and not ended** within `hl7.partialFrameTimeoutMs` closes its connection
 *   (measured from the frame's first byte, so trickling a byte now and then does not extend it).
 * - **Connections** (`hl7.maxConnections`): a connection arriving at the cap makes room by closing
 *   one with nothing in progress — first one that has never completed a frame (the longest quiet
 *   first), else one quiet for longer than the partial-frame timeout; with none, it is refused.
 *
 * Each close is logged with GW_SENDER_LIMIT and counted; nothing the gateway acknowledged is
 * affected (an unfinished frame was never acknowledged; the sender resends it).
 */
import type { Logger } from 'pino';

export type SenderLimitReason = 'partial-bytes' | 'partial-timeout' | 'make-room';

/** What the guard knows of one connection; the listener keeps it current. */
export interface GuardedConnection {
  /** Arrival order (higher is newer). */
  readonly seq: number;
  /** Bytes held in its unfinished frame (kept by the guard through `held`). */
  partialBytes: number;
  /** When its unfinished frame began; undefined outside a frame or while reading is paused by the listener. */
  partialSince: number | undefined;
  /** Complete frames it has sent. */
  frames: number;
  /** When bytes last arrived (or it connected). */
  lastActivity: number;
  /** Whether frames of it are being processed or answered (never closed to make room then). */
  busy(): boolean;
  /** Closes the socket at once; the guard has already forgotten it. */
  destroy(): void;
  readonly remotePort: number | undefined;
}

export interface SenderGuardOptions {
  maxConnections: number;
  maxPartialBytesTotal: number;
  partialFrameTimeoutMs: number;
  now: () => number;
  logger: () => Logger | undefined;
}

export interface SenderGuard {
  /** A new connection: true if it may stay (room made if need be), false if it is refused. */
  admit(c: GuardedConnection): boolean;
  /** The connection now holds `bytes` in its unfinished frame; enforces the total cap. */
  held(c: GuardedConnection, bytes: number): void;
  /** Closes connections whose unfinished frame is older than the timeout; returns how many. */
  sweep(): number;
  forget(c: GuardedConnection): void;
  readonly open: number;
  readonly partialBytes: number;
  readonly closed: Record<SenderLimitReason, number>;
}

export function createSenderGuard(o: SenderGuardOptions): SenderGuard {
  const conns = new Set<GuardedConnection>();
  let total = 0;
  const closed: Record<SenderLimitReason, number> = { 'partial-bytes': 0, 'partial-timeout': 0, 'make-room': 0 };

  function forget(c: GuardedConnection): void {
    if (!conns.delete(c)) return;
    total -= c.partialBytes;
    c.partialBytes = 0;
  }

  function close(c: GuardedConnection, reason: SenderLimitReason): void {
    const partialBytes = c.partialBytes;
    forget(c);
    closed[reason]++;
    o.logger()?.warn(
      {
        code: 'GW_SENDER_LIMIT',
        reason,
        remotePort: c.remotePort,
        partialBytes,
        frames: c.frames,
        partialBytesTotal: total,
        openConnections: conns.size,
      },
      reason === 'partial-bytes'
        ? 'MLLP connection closed: unfinished frames of all connections over hl7.maxPartialBytesTotal; this one held the most (the sender may resend)'
        : reason === 'partial-timeout'
          ? 'MLLP connection closed: a frame begun and not ended within hl7.partialFrameTimeoutMs (the sender may resend); check the sender if it repeats'
          : 'MLLP connection closed to make room at hl7.maxConnections: it had sent no complete frame or had been quiet longest',
    );
    c.destroy();
  }

  /** The connection to close for the byte cap: never-completed first, then the frame begun last, then the most bytes. */
  function byteVictim(): GuardedConnection | undefined {
    let best: GuardedConnection | undefined;
    for (const c of conns) {
      if (c.partialBytes === 0) continue;
      if (!best) {
        best = c;
        continue;
      }
      const a = c.frames === 0 ? 1 : 0;
      const b = best.frames === 0 ? 1 : 0;
      if (a !== b) {
        if (a > b) best = c;
        continue;
      }
      const ca = c.partialSince ?? -Infinity;
      const ba = best.partialSince ?? -Infinity;
      if (ca !== ba) {
        if (ca > ba) best = c;
        continue;
      }
      if (c.partialBytes !== best.partialBytes) {
        if (c.partialBytes > best.partialBytes) best = c;
        continue;
      }
      if (c.seq > best.seq) best = c;
    }
    return best;
  }

  /** The connection to close to make room: idle ones that never completed a frame, longest quiet first; then ones quiet past the timeout. */
  function roomVictim(): GuardedConnection | undefined {
    const t = o.now();
    let best: GuardedConnection | undefined;
    let bestRank = 0;
    for (const c of conns) {
      if (c.busy()) continue;
      const rank = c.frames === 0 ? 2 : c.partialBytes === 0 && t - c.lastActivity >= o.partialFrameTimeoutMs ? 1 : 0;
      if (rank === 0) continue;
      if (!best || rank > bestRank || (rank === bestRank && c.lastActivity < best.lastActivity)) {
        best = c;
        bestRank = rank;
      }
    }
    return best;
  }

  return {
    admit(c) {
      if (conns.size >= o.maxConnections) {
        const victim = roomVictim();
        if (!victim) return false;
        close(victim, 'make-room');
      }
      conns.add(c);
      return true;
    },
    held(c, bytes) {
      if (!conns.has(c)) return;
      total += bytes - c.partialBytes;
      c.partialBytes = bytes;
      while (total > o.maxPartialBytesTotal) {
        const victim = byteVictim();
        if (!victim) break;
        close(victim, 'partial-bytes');
      }
    },
    sweep() {
      const t = o.now();
      let n = 0;
      for (const c of [...conns]) {
        if (c.partialSince !== undefined && t - c.partialSince >= o.partialFrameTimeoutMs) {
          close(c, 'partial-timeout');
          n++;
        }
      }
      return n;
    },
    forget,
    get open() {
      return conns.size;
    },
    get partialBytes() {
      return total;
    },
    closed,
  };
}
