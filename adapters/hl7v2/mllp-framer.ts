/**
 * MLLP framing (HL7 v2 Transport Specification, MLLP release 2): a frame is
 * <VT 0x0B> payload <FS 0x1C><CR 0x0D>. The framer is a byte-level state machine:
 *
 *   outside ──0x0B──► inside ──0x1C──► sawFS ──0x0D──► (frame) outside
 *                       ▲                 └─other byte──► inside (the 0x1C was payload)
 *                       └──0x0B while inside: the partial frame is abandoned, a new one starts
 *
 * Bytes outside a frame are counted and dropped. A frame growing past `maxFrameBytes` stops being
 * buffered (memory stays bounded); its first bytes are kept so the answer can still echo MSH-10.
 *
 * An unfinished frame is held as a list of the reads it came in (never concatenated until its end),
 * so holding N bytes costs about N; reads smaller than SMALL_READ after the first are copied into
 * one staging buffer, so a sender trickling a byte at a time costs its bytes, not a Buffer per byte.
 * `pending` says how many bytes the unfinished frame holds, for the listener's caps on them.
 */

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

export interface FramerEvents {
  frame(payload: Buffer): void;
  oversize(head: Buffer, size: number): void;
}

export interface MllpFramer {
  push(chunk: Buffer): void;
  /** Bytes dropped outside frames, and frames abandoned by a new start block. */
  readonly stats: { strayBytes: number; abandoned: number };
  /** Whether a frame has begun (its start block seen) and not ended. */
  readonly inFrame: boolean;
  /** Bytes held for the frame not yet ended (its first bytes only once it is over the limit). */
  readonly pending: number;
}

const HEAD_BYTES = 4096;
/** Reads under this size, after a frame's first, are copied into a staging buffer of STAGE_BYTES. */
const SMALL_READ = 1024;
const STAGE_BYTES = 16 * 1024;

export function createMllpFramer(maxFrameBytes: number, on: FramerEvents): MllpFramer {
  let inside = false;
  let sawFS = false;
  let parts: Buffer[] = [];
  let size = 0;
  let oversize = false;
  let head: Buffer | undefined;
  /** Small reads of this frame, copied together (`staged` bytes used) until it is full. */
  let stage: Buffer | undefined;
  let staged = 0;
  const stats = { strayBytes: 0, abandoned: 0 };

  function reset(): void {
    parts = [];
    size = 0;
    oversize = false;
    head = undefined;
    sawFS = false;
    stage = undefined;
    staged = 0;
  }

  /** Moves the staged bytes into `parts`: the stage itself when full, else a copy of its used part (the stage is kept for reuse). */
  function unstage(): void {
    if (!stage || staged === 0) return;
    if (staged === stage.length) {
      parts.push(stage);
      stage = undefined;
    } else parts.push(Buffer.from(stage.subarray(0, staged)));
    staged = 0;
  }

  /** The first HEAD_BYTES of what is held, and of `b` after it. */
  function headOf(b: Buffer): Buffer {
    unstage();
    const pieces: Buffer[] = [];
    let n = 0;
    for (const p of [...parts, b]) {
      if (n >= HEAD_BYTES) break;
      pieces.push(p.subarray(0, HEAD_BYTES - n));
      n += Math.min(p.length, HEAD_BYTES - n);
    }
    return Buffer.concat(pieces, n);
  }

  function append(b: Buffer): void {
    if (b.length === 0) return;
    if (oversize) {
      size += b.length;
      return;
    }
    if (size + b.length > maxFrameBytes) {
      head = headOf(b);
      parts = [];
      oversize = true;
      size += b.length;
      return;
    }
    size += b.length;
    if (b.length >= SMALL_READ || size === b.length) {
      unstage();
      parts.push(b);
      return;
    }
    if (stage && staged + b.length > stage.length) unstage();
    stage ??= Buffer.allocUnsafe(STAGE_BYTES);
    b.copy(stage, staged);
    staged += b.length;
  }

  function finish(): void {
    inside = false;
    unstage();
    if (oversize) on.oversize(head ?? Buffer.alloc(0), size);
    else on.frame(parts.length === 1 ? parts[0] : Buffer.concat(parts, size));
    reset();
  }

  return {
    stats,
    get inFrame() {
      return inside;
    },
    get pending() {
      return inside ? (oversize ? (head?.length ?? 0) : size) : 0;
    },
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (!inside) {
          const start = chunk.indexOf(VT, i);
          if (start === -1) {
            stats.strayBytes += n - i;
            return;
          }
          stats.strayBytes += start - i;
          inside = true;
          reset();
          i = start + 1;
          continue;
        }
        if (sawFS) {
          sawFS = false;
          if (chunk[i] === CR) {
            i++;
            finish();
            continue;
          }
          append(Buffer.of(FS)); // the FS was payload after all
          continue;
        }
        // scan for the next FS or VT inside the frame
        let j = i;
        while (j < n && chunk[j] !== FS && chunk[j] !== VT) j++;
        append(chunk.subarray(i, j));
        if (j === n) return;
        if (chunk[j] === VT) {
          stats.abandoned++;
          reset();
          i = j + 1;
          continue;
        }
        // chunk[j] === FS
        if (j + 1 < n) {
          if (chunk[j + 1] === CR) {
            i = j + 2;
            finish();
            continue;
          }
          append(chunk.subarray(j, j + 1));
          i = j + 1;
          continue;
        }
        sawFS = true;
        return;
      }
    },
  };
}

/** Wraps a payload in an MLLP frame. */
export function frameMllp(payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = VT;
  body.copy(out, 1);
  out[body.length + 1] = FS;
  out[body.length + 2] = CR;
  return out;
}
