/**
 * The test server's resource store: current versions, every past version (for `_history` and
 * `vread`) and deletions, all in memory, plus synthetic sources generated on the fly.
 *
 * The server owns `meta.versionId` and `meta.lastUpdated` (FHIR R4 RESTful API §3.1.0.1.4
 * "Resource Metadata and Versioning": the server maintains them on every create and update);
 * versions count up from 1 per resource and go on counting after a delete, as a FHIR history does.
 * Time comes from one settable clock, so a test can place a change at an exact instant
 * (`setNow`) and move on (`advance`); the token checks use the same clock.
 */
import type { FhirResource, SyntheticSource } from './types.ts';

/** One version of a resource; `resource` is null for a deletion (a tombstone). */
export interface StoredVersion {
  type: string;
  id: string;
  versionId: number;
  lastUpdatedMs: number;
  resource: FhirResource | null;
}

export interface FhirStore {
  /** The server clock (ms since the epoch): the pinned time, or the injected clock. */
  now(): number;
  /** Pins the clock to `ms` (every later write and check uses it until the next call); undefined unpins. */
  setNow(ms: number | undefined): void;
  /** Moves the pinned clock forward (pins it at the current time first if it was not pinned). */
  advance(ms: number): void;
  /** Stores a new version: keeps `id` when given (else assigns one), sets meta.versionId (previous + 1) and meta.lastUpdated (now). */
  put(resource: FhirResource): FhirResource;
  /** Deletes the current version (a tombstone version); false when there was nothing live. */
  delete(type: string, id: string): boolean;
  /** The current live version, or undefined. */
  get(type: string, id: string): FhirResource | undefined;
  /** The current version record, a tombstone included (read answers 410 Gone for one). */
  current(type: string, id: string): StoredVersion | undefined;
  /** One past or current version. */
  version(type: string, id: string, versionId: number): StoredVersion | undefined;
  /** Live resources of a type, synthetic sources included. */
  count(type: string): number;
  /** Types that have or had a resource, or a synthetic source. */
  types(): string[];
  /** Live stored resources of a type ordered by (lastUpdated, id); the array is never changed afterwards, so it is a snapshot. */
  live(type: string): readonly StoredVersion[];
  /** Every version of a type, oldest first (tombstones included). */
  history(type: string): readonly StoredVersion[];
  /** Resources of a type whose current version is a deletion made after `sinceMs` (all of them when undefined). */
  deletedSince(type: string, sinceMs: number | undefined): StoredVersion[];
  /** Adds a synthetic source, served by search and by `$export` like stored resources. */
  addSynthetic(source: SyntheticSource): void;
  /** The synthetic sources of a type. */
  synthetic(type: string): readonly SyntheticSource[];
  /** An id the store has not used for this type. */
  newId(type: string): string;
}

/** The FHIR id rule (R4 datatypes §2.24.0.1 `id`): 1–64 of A–Z, a–z, 0–9, '-' and '.'. */
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function createFhirStore(o: { clock?: () => number } = {}): FhirStore {
  const clock = o.clock ?? Date.now;
  let pinned: number | undefined;
  const byType = new Map<string, Map<string, StoredVersion>>();
  const versions = new Map<string, StoredVersion[]>();
  const sorted = new Map<string, StoredVersion[]>();
  const synth = new Map<string, SyntheticSource[]>();
  let seq = 0;

  const now = () => pinned ?? clock();
  const table = (type: string) => {
    let t = byType.get(type);
    if (!t) byType.set(type, (t = new Map()));
    return t;
  };
  const record = (v: StoredVersion) => {
    table(v.type).set(v.id, v);
    const h = versions.get(v.type) ?? [];
    h.push(v);
    versions.set(v.type, h);
    sorted.delete(v.type);
  };

  const store: FhirStore = {
    now,
    setNow: (ms) => {
      pinned = ms;
    },
    advance: (ms) => {
      pinned = now() + ms;
    },
    newId: (type) => {
      const t = table(type);
      let id: string;
      do id = `srv-${++seq}`;
      while (t.has(id));
      return id;
    },
    put: (input) => {
      const type = input.resourceType;
      const id = input.id ?? store.newId(type);
      if (!FHIR_ID.test(id)) throw new Error(`not a FHIR id: ${JSON.stringify(id)}`);
      const previous = table(type).get(id);
      const versionId = (previous?.versionId ?? 0) + 1;
      const lastUpdatedMs = now();
      const resource = structuredClone(input);
      resource.id = id;
      resource.meta = { ...resource.meta, versionId: String(versionId), lastUpdated: new Date(lastUpdatedMs).toISOString() };
      record({ type, id, versionId, lastUpdatedMs, resource });
      return structuredClone(resource);
    },
    delete: (type, id) => {
      const previous = table(type).get(id);
      if (!previous?.resource) return false;
      record({ type, id, versionId: previous.versionId + 1, lastUpdatedMs: now(), resource: null });
      return true;
    },
    get: (type, id) => {
      const r = byType.get(type)?.get(id)?.resource;
      return r ? structuredClone(r) : undefined;
    },
    current: (type, id) => byType.get(type)?.get(id),
    version: (type, id, versionId) => versions.get(type)?.find((v) => v.id === id && v.versionId === versionId),
    count: (type) => store.live(type).length + (synth.get(type) ?? []).reduce((n, s) => n + s.count, 0),
    types: () => [...new Set([...byType.keys(), ...synth.keys()])].sort(),
    live: (type) => {
      let s = sorted.get(type);
      if (!s) {
        s = [...(byType.get(type)?.values() ?? [])].filter((v) => v.resource !== null).sort(compareVersions);
        sorted.set(type, s);
      }
      return s;
    },
    history: (type) => versions.get(type) ?? [],
    deletedSince: (type, sinceMs) =>
      [...(byType.get(type)?.values() ?? [])]
        .filter((v) => v.resource === null && (sinceMs === undefined || v.lastUpdatedMs > sinceMs))
        .sort(compareVersions),
    addSynthetic: (source) => {
      synth.set(source.type, [...(synth.get(source.type) ?? []), source]);
    },
    synthetic: (type) => synth.get(type) ?? [],
  };
  return store;
}

/** The server's one result order: meta.lastUpdated, then id (so equal instants still page stably). */
export function compareVersions(a: { lastUpdatedMs: number; id: string }, b: { lastUpdatedMs: number; id: string }): number {
  return compareKeys(a.lastUpdatedMs, a.id, b.lastUpdatedMs, b.id);
}

export function compareKeys(aMs: number, aId: string, bMs: number, bId: string): number {
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}
