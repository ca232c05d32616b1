/**
 * Reads the rows of a damaged SQLite file straight from its table b-tree leaf pages, without
 * SQLite: when a file is truncated or an interior page is lost, SQLite cannot descend to the
 * leaves below it, although those leaves are still in the file. Salvage (outbox-salvage.ts) runs
 * this after its rowid walk and keeps only rows that pass its own checks (the row's shape, and its
 * sealed bytes opening under the seal key with the row's id): what this returns is a candidate,
 * never trusted as it is.
 *
 * The format (https://www.sqlite.org/fileformat.html): the page size is the header's 2 bytes at
 * offset 16 (1 meaning 65536), 4096 when the header is gone; a table b-tree leaf page starts with
 * 0x0D (page 1 after the 100-byte file header), then the cell count (offset 3) and the cell
 * pointer array (offset 8). A cell is the payload length (varint), the rowid (varint), the
 * payload's local part, and — when the payload does not fit — the first overflow page's number;
 * each overflow page holds the next one's number (4 bytes) and then usable-4 bytes of payload.
 * The payload is a record: a header (its size, then one serial type per column) and the values.
 *
 * The file is read page by page at offsets (fs.readSync), never whole. Pages on the freelist
 * (when the header still names it) are not read as leaves. A cell that does not decode — out of
 * the page, a bad varint, a broken overflow chain, a record whose header and values do not add up
 * — is skipped and counted; nothing here throws on the file's contents.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export type LeafValue = null | number | bigint | string | Uint8Array;

export interface LeafRow {
  /** The page the cell was on (1-based). */
  page: number;
  rowid: number;
  /** The record's values in column order (an INTEGER PRIMARY KEY column is stored as NULL). */
  values: LeafValue[];
}

export interface LeafScanStats {
  pageSize: number;
  /** False when the header was gone and 4096 was assumed. */
  pageSizeFromHeader: boolean;
  /** Whole pages in the file. */
  pages: number;
  /** Pages read as table b-tree leaves (first byte 0x0D, not on the freelist). */
  leafPages: number;
  /** Cells decoded into rows. */
  rows: number;
  /** Cells that did not decode (skipped). */
  skippedCells: number;
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const LEAF_TABLE = 0x0d;
/** Bounds on what the file may claim: no loop or allocation is larger than the file allows. */
const MAX_FREELIST_TRUNKS = 1 << 20;
/** A larger payload is skipped (counted), so a damaged length cannot make the scan allocate the file. */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;

class Bad extends Error {}
const bad = (): never => {
  throw new Bad();
};

/** A SQLite varint at `at` in `b` (at most 9 bytes, big-endian, 7 bits a byte but the ninth's 8). */
function varint(b: Uint8Array, at: number, end: number): { v: bigint; n: number } {
  let v = 0n;
  for (let i = 0; i < 9; i++) {
    if (at + i >= end) bad();
    const c = b[at + i];
    if (i === 8) return { v: (v << 8n) | BigInt(c), n: 9 };
    v = (v << 7n) | BigInt(c & 0x7f);
    if (c < 0x80) return { v, n: i + 1 };
  }
  return bad();
}

/** A 64-bit two's-complement value (a rowid) as a number, when it is one exactly. */
function signed64(v: bigint): bigint {
  return v >= 1n << 63n ? v - (1n << 64n) : v;
}

function decodeInt(b: Uint8Array, at: number, len: number): number | bigint {
  let v = 0n;
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(b[at + i]);
  const bits = BigInt(len * 8);
  if (v >= 1n << (bits - 1n)) v -= 1n << bits;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const INT_BYTES = [0, 1, 2, 3, 4, 6, 8];

/** A record (header of serial types, then values) covering all of `p`, or Bad. */
export function decodeRecord(p: Uint8Array, textEncoding: 'utf8' | 'utf16le' | 'utf16be' = 'utf8'): LeafValue[] {
  const h = varint(p, 0, p.length);
  const hs = Number(h.v);
  if (h.v > BigInt(p.length) || hs < h.n) bad();
  const types: number[] = [];
  for (let at = h.n; at < hs; ) {
    const t = varint(p, at, hs);
    if (t.v > BigInt(p.length) * 2n + 13n) bad();
    types.push(Number(t.v));
    at += t.n;
  }
  const out: LeafValue[] = [];
  let at = hs;
  for (const t of types) {
    let len: number;
    if (t <= 6) len = INT_BYTES[t];
    else if (t === 7) len = 8;
    else if (t === 8 || t === 9) len = 0;
    else if (t === 10 || t === 11) return bad();
    else len = Math.floor((t - 12) / 2);
    if (at + len > p.length) bad();
    if (t === 0) out.push(null);
    else if (t <= 6) out.push(decodeInt(p, at, len));
    else if (t === 7) out.push(Buffer.from(p.buffer, p.byteOffset + at, 8).readDoubleBE(0));
    else if (t === 8) out.push(0);
    else if (t === 9) out.push(1);
    else if (t % 2 === 0) out.push(Uint8Array.prototype.slice.call(p, at, at + len));
    else {
      const s = Buffer.from(p.buffer, p.byteOffset + at, len);
      out.push(textEncoding === 'utf16be' ? Buffer.from(s).swap16().toString('utf16le') : s.toString(textEncoding));
    }
    at += len;
  }
  // a record's values fill its payload exactly: anything else is not a record
  if (at !== p.length) bad();
  return out;
}

interface Geometry {
  pageSize: number;
  usable: number;
  fromHeader: boolean;
  textEncoding: 'utf8' | 'utf16le' | 'utf16be';
  freelistTrunk: number;
}

function geometry(head: Buffer): Geometry {
  const hasHeader = head.length >= 100 && head.subarray(0, 16).equals(SQLITE_MAGIC);
  if (!hasHeader) return { pageSize: 4096, usable: 4096, fromHeader: false, textEncoding: 'utf8', freelistTrunk: 0 };
  const raw = head.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const valid = pageSize >= 512 && pageSize <= 65536 && (pageSize & (pageSize - 1)) === 0;
  if (!valid) return { pageSize: 4096, usable: 4096, fromHeader: false, textEncoding: 'utf8', freelistTrunk: 0 };
  const reserved = head[20];
  const usable = pageSize - reserved >= 480 ? pageSize - reserved : pageSize;
  const enc = head.readUInt32BE(56);
  return {
    pageSize,
    usable,
    fromHeader: true,
    textEncoding: enc === 2 ? 'utf16le' : enc === 3 ? 'utf16be' : 'utf8',
    freelistTrunk: head.readUInt32BE(32),
  };
}

/**
 * Calls `onRow` for every cell of every table b-tree leaf page that decodes, in page order.
 * `onRow` may throw (the caller's own errors pass through); the file's contents never make this throw.
 */
export function scanTableLeaves(file: string, onRow: (row: LeafRow) => void, o: { maxPayload?: number } = {}): LeafScanStats {
  const maxPayload = o.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(100);
    const headLen = readSync(fd, head, 0, 100, 0);
    const g = geometry(head.subarray(0, headLen));
    const { pageSize, usable } = g;
    const pages = Math.floor(size / pageSize);
    const stats: LeafScanStats = { pageSize, pageSizeFromHeader: g.fromHeader, pages, leafPages: 0, rows: 0, skippedCells: 0 };
    const read = (n: number, into: Buffer): boolean => {
      if (n < 1 || n > pages) return false;
      return readSync(fd, into, 0, pageSize, (n - 1) * pageSize) === pageSize;
    };
    const free = freelist(g, pages, read);
    const page = Buffer.alloc(pageSize);
    const ovf = Buffer.alloc(pageSize);
    // the local-payload rule for table leaves (fileformat.html §1.6)
    const X = usable - 35;
    const M = Math.floor(((usable - 12) * 32) / 255) - 23;
    for (let n = 1; n <= pages; n++) {
      if (free.has(n) || !read(n, page)) continue;
      const h = n === 1 ? 100 : 0;
      if (page[h] !== LEAF_TABLE) continue;
      stats.leafPages++;
      const cellsDeclared = page.readUInt16BE(h + 3);
      const fit = Math.floor((usable - h - 8) / 2);
      const cells = Math.min(cellsDeclared, fit);
      stats.skippedCells += cellsDeclared - cells;
      for (let i = 0; i < cells; i++) {
        let row: LeafRow;
        try {
          const c = page.readUInt16BE(h + 8 + 2 * i);
          if (c < h + 8 + 2 * cells || c >= usable) bad();
          const pl = varint(page, c, usable);
          const rid = varint(page, c + pl.n, usable);
          const P = pl.v;
          // a payload cannot be larger than the pages the file has
          if (P > BigInt(pages) * BigInt(usable) || P > BigInt(maxPayload)) bad();
          const payloadLen = Number(P);
          const K = M + ((payloadLen - M) % (usable - 4));
          const local = payloadLen <= X ? payloadLen : K <= X ? K : M;
          const start = c + pl.n + rid.n;
          if (start + local + (local < payloadLen ? 4 : 0) > usable) bad();
          const payload = Buffer.alloc(payloadLen);
          page.copy(payload, 0, start, start + local);
          if (local < payloadLen) {
            let next = page.readUInt32BE(start + local);
            let got = local;
            const seen = new Set<number>();
            while (got < payloadLen) {
              if (next === 0 || seen.has(next) || free.has(next) || !read(next, ovf)) bad();
              seen.add(next);
              const take = Math.min(usable - 4, payloadLen - got);
              ovf.copy(payload, got, 4, 4 + take);
              got += take;
              next = ovf.readUInt32BE(0);
            }
          }
          const rowid = signed64(rid.v);
          if (rowid < BigInt(Number.MIN_SAFE_INTEGER) || rowid > BigInt(Number.MAX_SAFE_INTEGER)) bad();
          row = { page: n, rowid: Number(rowid), values: decodeRecord(payload, g.textEncoding) };
        } catch (e) {
          if (!(e instanceof Bad) && !(e instanceof RangeError)) throw e;
          stats.skippedCells++;
          continue;
        }
        stats.rows++;
        onRow(row);
      }
    }
    return stats;
  } finally {
    closeSync(fd);
  }
}

/** The freelist's pages (trunks and leaves), as far as the header and the trunks can still be read. */
function freelist(g: Geometry, pages: number, read: (n: number, into: Buffer) => boolean): Set<number> {
  const free = new Set<number>();
  const b = Buffer.alloc(g.pageSize);
  let trunk = g.freelistTrunk;
  for (let t = 0; t < MAX_FREELIST_TRUNKS && trunk > 0 && !free.has(trunk) && read(trunk, b); t++) {
    free.add(trunk);
    const count = Math.min(b.readUInt32BE(4), Math.floor((g.usable - 8) / 4));
    for (let i = 0; i < count; i++) {
      const leaf = b.readUInt32BE(8 + 4 * i);
      if (leaf >= 1 && leaf <= pages) free.add(leaf);
    }
    trunk = b.readUInt32BE(0);
  }
  return free;
}
