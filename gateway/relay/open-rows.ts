/**
 * Opening a claimed batch before any sink sees it. AES-GCM authenticates each sealed blob: a row
 * whose tag fails (bytes flipped on the disk, or sealed under another key) is damaged, and is never
 * forwarded — not even to a sink that stores sealed blobs as they are (the file sink), where it
 * would be counted delivered, deleted, and be a copy nobody can open. The relay quarantines such
 * rows and delivers the rest. A bundle is one blob under one tag, so a bad tag is the whole bundle.
 *
 * The check is the decryption itself (GCM verifies the tag only by decrypting): for a sink that
 * takes the records' text the opened text is kept; for one that takes sealed rows it is dropped.
 */
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { BUNDLE_SEPARATOR, type ClaimedRow } from '../outbox/outbox.ts';

export interface UnreadableRow {
  row: ClaimedRow;
  /** What was wrong, for the dead letter: never any of the row's content. */
  reason: string;
}

export interface OpenedRows {
  /** The rows that opened, in claim order. */
  good: ClaimedRow[];
  /** The records' JSON texts of `good`, in order (a bundle's one per record); empty unless asked for. */
  json: string[];
  unreadable: UnreadableRow[];
}

export const UNREADABLE_TAG_REASON =
  'sealed bytes failed to open (authentication failed: damaged on the disk, or sealed under another key); kept as they were, not sent';

const SEPARATOR_BYTE = BUNDLE_SEPARATOR.charCodeAt(0);

/** Records a bundle's opened bytes hold: one more than its separators (JSON text never holds a raw newline). */
function countRecords(plain: Buffer): number {
  let n = 1;
  for (let i = plain.indexOf(SEPARATOR_BYTE); i >= 0; i = plain.indexOf(SEPARATOR_BYTE, i + 1)) n++;
  return n;
}

export function openClaimedRows(rows: readonly ClaimedRow[], sealer: RecordSealer, keepText: boolean): OpenedRows {
  const good: ClaimedRow[] = [];
  const json: string[] = [];
  const unreadable: UnreadableRow[] = [];
  for (const r of rows) {
    let plain: Buffer;
    try {
      plain = sealer.open(r.id, r.sealed);
    } catch {
      unreadable.push({ row: r, reason: UNREADABLE_TAG_REASON });
      continue;
    }
    if (r.recordIds) {
      if (keepText) {
        const parts = plain.toString('utf8').split(BUNDLE_SEPARATOR);
        if (parts.length !== r.recordIds.length) {
          unreadable.push({ row: r, reason: mismatch(parts.length, r.recordIds.length) });
          continue;
        }
        for (const p of parts) json.push(p);
      } else {
        const n = countRecords(plain);
        if (n !== r.recordIds.length) {
          unreadable.push({ row: r, reason: mismatch(n, r.recordIds.length) });
          continue;
        }
      }
    } else if (keepText) json.push(plain.toString('utf8'));
    good.push(r);
  }
  return { good, json, unreadable };
}

function mismatch(holds: number, names: number): string {
  return `bundle opens to ${holds} records but its row names ${names}; kept as it was, not sent`;
}
