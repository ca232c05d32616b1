/**
 * The contents of a Bulk Data export (Bulk Data IG v2 §"File Request"): per resource type an
 * ordered list of segments (a snapshot of stored resources, or a range of a synthetic source)
 * that is cut into NDJSON files of at most N resources and streamed line by line when a file is
 * downloaded, so 100,000 synthetic resources never sit in memory at once.
 */
import type { ServerResponse } from 'node:http';
import type { StoredVersion } from './store.ts';
import type { FhirResource, SyntheticSource } from './types.ts';

export type Segment =
  | { kind: 'stored'; items: readonly StoredVersion[] }
  | { kind: 'synthetic'; source: SyntheticSource; from: number; to: number }
  | { kind: 'lines'; lines: readonly unknown[] };

export function segmentLength(s: Segment): number {
  return s.kind === 'stored' ? s.items.length : s.kind === 'synthetic' ? s.to - s.from : s.lines.length;
}

/** The resources at positions [from, to) across the segments, in order, built one at a time. */
export function* itemsBetween(segments: readonly Segment[], from: number, to: number): Generator<unknown> {
  let offset = 0;
  for (const s of segments) {
    const len = segmentLength(s);
    const start = Math.max(from, offset);
    const end = Math.min(to, offset + len);
    for (let i = start; i < end; i++) {
      const k = i - offset;
      if (s.kind === 'stored') yield s.items[k].resource as FhirResource;
      else if (s.kind === 'synthetic') yield s.source.at(s.from + k);
      else yield s.lines[k];
    }
    offset += len;
    if (offset >= to) return;
  }
}

/** One NDJSON file of an export: a slice of one type's segments. */
export interface ExportFile {
  name: string;
  type: string;
  segments: readonly Segment[];
  from: number;
  to: number;
}

/** Cuts one type's segments into files of at most `max` resources (none for an empty type). */
export function cutIntoFiles(prefix: string, type: string, segments: readonly Segment[], max: number): ExportFile[] {
  const total = segments.reduce((n, s) => n + segmentLength(s), 0);
  const files: ExportFile[] = [];
  for (let from = 0, k = 0; from < total; from += max, k++) {
    files.push({ name: `${prefix}-${k}.ndjson`, type, segments, from, to: Math.min(total, from + max) });
  }
  return files;
}

/** Streams a file as NDJSON (`application/fhir+ndjson`), waiting for the socket to drain between 64 KiB writes. */
export async function streamFile(res: ServerResponse, file: ExportFile): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/fhir+ndjson' });
  let buf = '';
  for (const item of itemsBetween(file.segments, file.from, file.to)) {
    buf += `${JSON.stringify(item)}\n`;
    if (buf.length < 64 * 1024) continue;
    const ok = res.write(buf);
    buf = '';
    if (!ok) await drainOrClose(res);
    if (res.destroyed) return;
  }
  res.end(buf);
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
