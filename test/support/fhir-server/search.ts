/**
 * Type-level search (FHIR R4 §3.1.1 Search, RESTful API §3.1.0.1 `GET [base]/[type]?...`): the
 * matches, in the server's one order (meta.lastUpdated, then id), as a `searchset` Bundle with
 * `self` and `next` links (§3.1.1.6.3 Paging).
 *
 * Paging is keyset: a next link carries the (lastUpdated, id) of the page's last entry and the
 * next page starts after it. So it keeps working while the data changes: a resource that did
 * not change during the walk comes exactly once; one updated mid-walk moves to the end and comes
 * (again) there; none is skipped. The three vendor link shapes differ only in how they carry it:
 * `?_getpages=<token>` on the base (HAPI-style, opaque), `-pageContext=<token>&-pageDirection=NEXT`
 * (Cerner) and `cursor=<token>` (athenahealth).
 */
import { randomUUID } from 'node:crypto';
import { decodeToken, encodeToken, FhirHttpError } from './http-util.ts';
import { type Filter, parseFilter } from './search-params.ts';
import { compareKeys, type FhirStore } from './store.ts';
import { syntheticLastUpdated } from './synthetic.ts';
import type { FhirResource, SyntheticSource } from './types.ts';
import type { VendorProfile } from './vendors.ts';

/** A position in the server's order: after (lastUpdated ms, id). */
export type PageKey = [number, string];

export interface SearchRequest {
  store: FhirStore;
  profile: VendorProfile;
  /** Absolute base URL, no trailing slash. */
  baseUrl: string;
  type: string;
  /** The query's search and result parameters, paging parameters removed, in order. */
  params: [string, string][];
  /** Start after this key (the next link's position). */
  after?: PageKey;
  /** The absolute URL of this request, for the `self` link. */
  selfUrl: string;
  /** `Prefer: handling=strict|lenient` (R4 §3.1.1.2.2); unknown parameters are refused under strict. */
  handling: 'strict' | 'lenient';
}

export interface Bundle {
  resourceType: 'Bundle';
  id: string;
  /** When the server assembled the Bundle, by its clock (R4 Bundle.meta.lastUpdated). */
  meta: { lastUpdated: string };
  type: 'searchset';
  total?: number;
  link: { relation: string; url: string }[];
  entry: { fullUrl: string; resource: FhirResource; search: { mode: 'match' } }[];
}

/** What `parseSearch` makes of the parameters: the filters, the page size and the parameters kept for links. */
export interface ParsedSearch {
  filters: Filter[];
  count: number;
  used: [string, string][];
}

/** Result parameters that are accepted and otherwise ignored (the server answers JSON only). */
const IGNORED_RESULT_PARAMS = new Set(['_format', '_total', '_pretty']);

/** Parses a search's parameters against the profile (400 for a bad value or an unsupported parameter under strict handling). */
export function parseSearch(
  profile: VendorProfile,
  type: string,
  params: [string, string][],
  handling: 'strict' | 'lenient',
): ParsedSearch {
  const filters: Filter[] = [];
  const used: [string, string][] = [];
  let count = profile.defaultCount;
  for (const [name, value] of params) {
    if (name === '_count') {
      if (!/^\d+$/.test(value)) throw new FhirHttpError(400, 'invalid', '_count must be a whole number');
      count = Math.min(Number(value), profile.maxCount);
      used.push([name, String(count)]);
    } else if (name === '_sort') {
      if (value !== '_lastUpdated') throw new FhirHttpError(400, 'not-supported', '_sort: only _lastUpdated is supported');
      used.push([name, value]);
    } else if (IGNORED_RESULT_PARAMS.has(name)) {
      used.push([name, value]);
    } else {
      const f = parseFilter(profile, type, name, value);
      if (f) {
        filters.push(f);
        used.push([name, value]);
      } else if (handling === 'strict') {
        throw new FhirHttpError(400, 'not-supported', `search parameter ${name} is not supported on ${type}`);
      }
    }
  }
  const required = profile.requireOneOf[type];
  if (required && !filters.some((f) => required.includes(f.name))) {
    throw new FhirHttpError(400, 'invalid', `${type} search needs one of: ${required.join(', ')}`);
  }
  return { filters, count, used };
}

/** Runs one page of a search. */
export function runSearch(q: SearchRequest): Bundle {
  const { filters, count, used } = parseSearch(q.profile, q.type, q.params, q.handling);
  const floor = filters.reduce<{ ms: number; strict: boolean } | undefined>((best, f) => {
    const fl = f.lastUpdatedFloor;
    return !fl ? best : !best || fl.ms > best.ms || (fl.ms === best.ms && fl.strict) ? fl : best;
  }, undefined);
  const matches = (c: Candidate) => filters.every((f) => f.test(c.resource, c.ms));

  const page: Candidate[] = [];
  let more = false;
  if (count > 0) {
    for (const c of ordered(q.store, q.type, q.after, floor)) {
      if (!matches(c)) continue;
      if (page.length === count) {
        more = true;
        break;
      }
      page.push(c);
    }
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    id: randomUUID(),
    meta: { lastUpdated: new Date(q.store.now()).toISOString() },
    type: 'searchset',
    link: [{ relation: 'self', url: q.selfUrl }],
    entry: page.map((c) => ({ fullUrl: `${q.baseUrl}/${q.type}/${c.id}`, resource: c.resource, search: { mode: 'match' } })),
  };
  const total = totalOf(q.store, q.type, filters, floor, matches);
  if (total !== undefined) bundle.total = total;
  if (more) {
    const last = page[page.length - 1];
    bundle.link.push({ relation: 'next', url: nextUrl(q, used, [last.ms, last.id]) });
  }
  return bundle;
}

/** The total (R4 Bundle.total): exact, but left out when counting would mean generating every synthetic resource. */
function totalOf(
  store: FhirStore,
  type: string,
  filters: Filter[],
  floor: { ms: number; strict: boolean } | undefined,
  matches: (c: Candidate) => boolean,
): number | undefined {
  if (filters.length === 0) return store.count(type);
  if (store.synthetic(type).length > 0) return undefined;
  let n = 0;
  for (const c of ordered(store, type, undefined, floor)) if (matches(c)) n++;
  return n;
}

function nextUrl(q: SearchRequest, used: [string, string][], key: PageKey): string {
  const query = new URLSearchParams(used);
  switch (q.profile.paging) {
    case 'getpages':
      return `${q.baseUrl}?${new URLSearchParams({ _getpages: encodeToken({ t: q.type, p: used, a: key }) })}`;
    case 'page-context':
      query.append('-pageContext', encodeToken({ a: key }));
      query.append('-pageDirection', 'NEXT');
      return `${q.baseUrl}/${q.type}?${query}`;
    case 'cursor':
      query.append('cursor', encodeToken({ a: key }));
      return `${q.baseUrl}/${q.type}?${query}`;
    default:
      return q.profile.paging satisfies never;
  }
}

/** A `_getpages` token read back: the type, the search's parameters and the position. */
export function decodeGetpages(token: string): { type: string; params: [string, string][]; after: PageKey } {
  const v = decodeToken(token, (x): x is { t: string; p: [string, string][]; a: PageKey } => {
    const o = x as { t?: unknown; p?: unknown; a?: unknown };
    return typeof o?.t === 'string' && Array.isArray(o.p) && isKey(o.a);
  });
  return { type: v.t, params: v.p, after: v.a };
}

/** A `-pageContext` or `cursor` token read back. */
export function decodePosition(token: string): PageKey {
  return decodeToken(token, (x): x is { a: PageKey } => isKey((x as { a?: unknown })?.a)).a;
}

function isKey(a: unknown): a is PageKey {
  return Array.isArray(a) && a.length === 2 && typeof a[0] === 'number' && typeof a[1] === 'string';
}

interface Candidate {
  ms: number;
  id: string;
  resource: FhirResource;
}

/**
 * Every live resource of a type (stored and synthetic) in (lastUpdated, id) order, starting after
 * `after` and at the lastUpdated floor; each source is entered by binary search, then merged.
 */
export function* ordered(
  store: FhirStore,
  type: string,
  after: PageKey | undefined,
  floor: { ms: number; strict: boolean } | undefined,
): Generator<Candidate> {
  const before = (ms: number, id: string) =>
    (after !== undefined && compareKeys(ms, id, after[0], after[1]) <= 0) ||
    (floor !== undefined && (floor.strict ? ms <= floor.ms : ms < floor.ms));
  const live = store.live(type);
  const cursors: { next(): Candidate | undefined }[] = [];
  let i = lowerBound(live.length, (k) => before(live[k].lastUpdatedMs, live[k].id));
  cursors.push({
    next: () => {
      const v = live[i++];
      return v?.resource ? { ms: v.lastUpdatedMs, id: v.id, resource: v.resource } : undefined;
    },
  });
  for (const s of store.synthetic(type)) cursors.push(syntheticCursor(s, before));
  const heads = cursors.map((c) => c.next());
  while (true) {
    let best = -1;
    for (let k = 0; k < heads.length; k++) {
      const h = heads[k];
      if (h && (best < 0 || compareKeys(h.ms, h.id, heads[best]!.ms, heads[best]!.id) < 0)) best = k;
    }
    if (best < 0) return;
    yield heads[best]!;
    heads[best] = cursors[best].next();
  }
}

function syntheticCursor(s: SyntheticSource, before: (ms: number, id: string) => boolean): { next(): Candidate | undefined } {
  let i = lowerBound(s.count, (k) => before(syntheticLastUpdated(s, k), String(s.at(k).id)));
  return {
    next: () => {
      if (i >= s.count) return undefined;
      const resource = s.at(i++);
      return { ms: Date.parse(String(resource.meta?.lastUpdated)), id: String(resource.id), resource };
    },
  };
}

/** The first index in [0, n) where `isBefore` turns false (it must be true then false along the order). */
function lowerBound(n: number, isBefore: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (isBefore(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Up to `limit` matches of a search in the server's order (conditional create's "does it exist" question, R4 §3.1.0.8). */
export function findMatches(
  store: FhirStore,
  profile: VendorProfile,
  type: string,
  params: [string, string][],
  limit: number,
): FhirResource[] {
  const { filters } = parseSearch({ ...profile, requireOneOf: {} }, type, params, 'strict');
  const out: FhirResource[] = [];
  for (const c of ordered(store, type, undefined, undefined)) {
    if (out.length >= limit) break;
    if (filters.every((f) => f.test(c.resource, c.ms))) out.push(c.resource);
  }
  return out;
}
