/**
 * Synthetic resources generated from a seed and an index, so a test can serve 100,000 patients
 * (a first load, a large `$export`) without holding them: each one is built when it is written out
 * and dropped right after. The data is made up (word lists below), never taken from anyone.
 */
import type { FhirResource, SyntheticSource } from './types.ts';

const FAMILY = ['Ashgrove', 'Birchley', 'Copperfield', 'Dunmore', 'Elmstead', 'Fernhill', 'Glenrock', 'Hollins'];
const GIVEN = ['Ari', 'Bea', 'Cal', 'Dee', 'Eli', 'Fay', 'Gus', 'Ivy', 'Jon', 'Kit'];
const GENDER = ['female', 'male', 'other', 'unknown'] as const;

export interface SyntheticPatientOptions {
  /** Varies the ids and the generated values; default 1. */
  seed?: number;
  /** meta.lastUpdated of patient 0 (ms); default 2024-01-01T00:00:00Z. */
  startMs?: number;
  /** Milliseconds between consecutive patients' meta.lastUpdated; default 1. */
  stepMs?: number;
  /** Group ids whose `$export` includes these patients. */
  groups?: string[];
}

/**
 * `n` synthetic Patients, `syn-<seed>-<index, 7 digits>`, with lastUpdated rising with the index
 * (the order the server pages and exports in). Deterministic: the same options give the same JSON.
 */
export function syntheticPatients(n: number, o: SyntheticPatientOptions = {}): SyntheticSource {
  const seed = o.seed ?? 1;
  const startMs = o.startMs ?? Date.UTC(2024, 0, 1);
  const stepMs = o.stepMs ?? 1;
  return {
    type: 'Patient',
    count: n,
    groups: o.groups,
    at: (i: number): FhirResource => {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`synthetic patient ${i} of ${n}`);
      const rnd = mulberry32((seed * 0x9e3779b1) ^ (i + 1));
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
      const born = Date.UTC(1940, 0, 1) + Math.floor(rnd() * 80 * 365.25) * 86_400_000;
      return {
        resourceType: 'Patient',
        id: `syn-${seed}-${String(i).padStart(7, '0')}`,
        meta: { versionId: '1', lastUpdated: new Date(startMs + i * stepMs).toISOString() },
        identifier: [{ system: 'urn:ewml:synthetic:mrn', value: `S${seed}-${i}` }],
        name: [{ family: pick(FAMILY), given: [pick(GIVEN)] }],
        gender: pick(GENDER),
        birthDate: new Date(born).toISOString().slice(0, 10),
      };
    },
  };
}

/** The lastUpdated of a synthetic resource, in ms. */
export function syntheticLastUpdated(s: SyntheticSource, i: number): number {
  return Date.parse(String(s.at(i).meta?.lastUpdated));
}

/** The first index whose lastUpdated is after (`strict`) or at `ms`: a binary search over the source's order. */
export function syntheticLowerBound(s: SyntheticSource, ms: number, strict: boolean): number {
  let lo = 0;
  let hi = s.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const t = syntheticLastUpdated(s, mid);
    if (strict ? t <= ms : t < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A small fast PRNG (mulberry32): deterministic values from a 32-bit seed. */
function mulberry32(a: number): () => number {
  let s = a >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
