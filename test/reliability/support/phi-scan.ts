/**
 * The PHI sweep's search: the synthetic PHI the load driver seeds (SYNTHETIC_PHI and the marker
 * prefix), in every form a source writes it (ISO, HL7 and US dates; the name in any case, and in
 * UTF-16 for binary files), found in text or in the bytes of every file under a folder.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MARKER_PREFIX } from './checker.ts';
import { SYNTHETIC_PHI } from './load-driver.ts';

export type PhiField = 'name' | 'mrn' | 'birthDate' | 'rx';

interface Needle { field: PhiField; text: string }

const P = SYNTHETIC_PHI;
const NEEDLES: Needle[] = [
  { field: 'name', text: P.family.toLowerCase() }, { field: 'name', text: P.given.toLowerCase() },
  { field: 'mrn', text: MARKER_PREFIX.toLowerCase() },
  { field: 'birthDate', text: P.birthDate.iso }, { field: 'birthDate', text: P.birthDate.hl7 }, { field: 'birthDate', text: P.birthDate.us },
  { field: 'rx', text: P.sphere.right }, { field: 'rx', text: P.sphere.left },
];

export interface PhiHit { where: string; field: PhiField; needle: string; count: number }

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
    try { names = readdirSync(d); } catch { return; }
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
