/**
 * The PHI sweep's search: the synthetic PHI the load driver seeds (SYNTHETIC_PHI and the marker
 * prefix), in every form a source writes it (ISO, HL7 and US dates; the name in any case, and in
 * UTF-16 for binary files), found in text or in the bytes of every file under a folder.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { MARKER_PREFIX } from './checker.ts';
import { SYNTHETIC_PHI } from './load-driver.ts';

export type PhiField = 'name' | 'mrn' | 'birthDate' | 'rx';

interface Needle {
  field: PhiField;
  text: string;
}

const P = SYNTHETIC_PHI;
const NEEDLES: Needle[] = [
  { field: 'name', text: P.family.toLowerCase() },
  { field: 'name', text: P.given.toLowerCase() },
  { field: 'mrn', text: MARKER_PREFIX.toLowerCase() },
  { field: 'birthDate', text: P.birthDate.iso },
  { field: 'birthDate', text: P.birthDate.hl7 },
  { field: 'birthDate', text: P.birthDate.us },
  { field: 'rx', text: P.sphere.right },
  { field: 'rx', text: P.sphere.left },
];

export interface PhiHit {
  where: string;
  field: PhiField;
  needle: string;
  count: number;
}

function count(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Every seeded PHI value found in `text` (case-insensitive), with how often. */
export function findPhi(text: string, where: string): PhiHit[] {
  const hay = text.toLowerCase();
  return NEEDLES.map((n) => ({ where, field: n.field, needle: n.text, count: count(hay, n.text) })).filter((h) => h.count > 0);
}

/** As `findPhi`, over a file's bytes: read as Latin-1 (byte for byte) and as UTF-16LE, so an ASCII value is found in either encoding. */
export function findPhiInFile(path: string): PhiHit[] {
  const bytes = readFileSync(path);
  const hits = findPhi(bytes.toString('latin1'), path);
  for (const h of findPhi(bytes.toString('utf16le'), `${path} (UTF-16)`)) hits.push(h);
  for (const h of findPhi(bytes.subarray(1).toString('utf16le'), `${path} (UTF-16, odd offset)`)) hits.push(h);
  return hits;
}

/** Every regular file under `dir` (symlinks not followed). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The hits in every file under `dir` that `take` accepts. */
export function scanTree(dir: string, take: (path: string) => boolean = () => true): { files: string[]; hits: PhiHit[] } {
  const files = filesUnder(dir).filter(take);
  return { files, hits: files.flatMap(findPhiInFile) };
}

/** Hits summed per field (for a report line). */
export function perField(hits: PhiHit[]): Record<PhiField, number> {
  const out: Record<PhiField, number> = { name: 0, mrn: 0, birthDate: 0, rx: 0 };
  for (const h of hits) out[h.field] += h.count;
  return out;
}

/** The files of a data folder that are the SQLite outbox (its MRN partition keys are expected there until issue 13 point 7). */
export const OUTBOX_FILES: ReadonlySet<string> = new Set(['outbox.db', 'outbox.db-wal', 'outbox.db-shm']);

export interface RigSweep {
  logHits: PhiHit[];
  tmpHits: PhiHit[];
  dataHits: PhiHit[];
  dataFiles: string[];
  outboxHits: PhiHit[];
  outboxFiles: string[];
}

/** Sweeps what a rig's gateway left: its output, its temporary files, its data folder (the outbox files apart). */
export function sweepRig(r: { output: string[]; tmpDir: string; dataDir: string }): RigSweep {
  const data = scanTree(r.dataDir, (p) => !OUTBOX_FILES.has(basename(p)));
  const outbox = scanTree(r.dataDir, (p) => OUTBOX_FILES.has(basename(p)));
  const rel = (f: string) => f.slice(r.dataDir.length + 1);
  return {
    logHits: findPhi(r.output.join(''), 'child stdout/stderr'),
    tmpHits: scanTree(r.tmpDir).hits,
    dataHits: data.hits,
    dataFiles: data.files.map(rel),
    outboxHits: outbox.hits,
    outboxFiles: outbox.files.map(rel),
  };
}

/** A sweep's figures for `report()`. */
export function sweepFigures(s: RigSweep): Record<string, string | number> {
  const o = perField(s.outboxHits);
  return {
    logHits: s.logHits.length,
    tmpHits: s.tmpHits.length,
    dataHits: s.dataHits.length,
    dataFiles: s.dataFiles.join(',') || 'none',
    outboxFiles: s.outboxFiles.join(',') || 'none',
    outboxName: o.name,
    outboxMrn: o.mrn,
    outboxBirthDate: o.birthDate,
    outboxRx: o.rx,
  };
}

/** Hits as readable lines, for an assertion's diff. */
export const showHits = (hits: PhiHit[]): string[] => hits.map((h) => `${h.where}: ${h.field} "${h.needle}" ×${h.count}`);
