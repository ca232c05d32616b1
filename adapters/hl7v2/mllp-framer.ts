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
}

const HEAD_BYTES = 4096;

export function createMllpFramer(maxFrameBytes: number, on: FramerEvents): MllpFramer {
  let inside = false;
  let sawFS = false;
  let parts: Buffer[] = [];
  let size = 0;
  let oversize = false;
  let head: Buffer | undefined;
  const stats = { strayBytes: 0, abandoned: 0 };

  function reset(): void { parts = []; size = 0; oversize = false; head = undefined; sawFS = false; }

  function append(b: Buffer): void {
    if (b.length === 0) return;
    if (oversize) { size += b.length; return; }
    if (size + b.length > maxFrameBytes) {
      head = Buffer.concat([...parts, b]).subarray(0, HEAD_BYTES);
      parts = [];
      oversize = true;
      size += b.length;
      return;
    }
    parts.push(b);
    size += b.length;
  }

  function finish(): void {
    inside = false;
    if (oversize) on.oversize(head ?? Buffer.alloc(0), size);
    else on.frame(parts.length === 1 ? parts[0] : Buffer.concat(parts, size));
    reset();
  }

  return {
    stats,
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (!inside) {
          const start = chunk.indexOf(VT, i);
          if (start === -1) { stats.strayBytes += n - i; return; }
          stats.strayBytes += start - i;
          inside = true;
          reset();
          i = start + 1;
          continue;
        }
        if (sawFS) {
          sawFS = false;
          if (chunk[i] === CR) { i++; finish(); continue; }
          append(Buffer.of(FS)); // the FS was payload after all
          continue;
        }
        // scan for the next FS or VT inside the frame
        let j = i;
        while (j < n && chunk[j] !== FS && chunk[j] !== VT) j++;
        append(chunk.subarray(i, j));
        if (j === n) return;
        if (chunk[j] === VT) { stats.abandoned++; reset(); i = j + 1; continue; }
        // chunk[j] === FS
        if (j + 1 < n) {
          if (chunk[j + 1] === CR) { i = j + 2; finish(); continue; }
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
