/**
 * Deletes of resources kept by search: a search never returns what is gone, so after each search
 * run the type's history (`GET [base]/[type]/_history?_since=…`, FHIR R4 §3.1.0.4, where the
 * server lists `history-type`) is read for `DELETE` entries, each a `delete` record.
 *
 * - History is newest first: an id's first entry is its latest state, so a resource deleted and
 *   created again yields no delete (the search run has its new version).
 * - Its own cursor (`<id>/<Type>/_history`): the lower bound moves to the instant this pass began
 *   (by the server's clock) only once every page's deletes are committed; the first pass starts at
 *   the instant given (before which nothing was read, so nothing can have been deleted since).
 * - A deletion read twice (the overlap) hashes the same and writes nothing.
 */
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import type { RawRow } from '../contracts.ts';
import { ApiError } from '../http/http-error.ts';
import { deletedRow } from './fhir-rows.ts';
import { sameOrigin, type SyncContext } from './sync-context.ts';

type R = Record<string, unknown>;

export const historyCursorKey = (sourceId: string, resource: string) => `${sourceId}/${resource}/_history`;

/** Reads the deletions since the last pass; returns how many were committed, or undefined when stopped. */
export async function historyRun(
  s: SyncContext,
  resource: FhirResourceName,
  o: { overlapMs: number; firstSince: string },
): Promise<number | undefined> {
  const key = historyCursorKey(s.sourceId, resource);
  const stream = `${s.sourceId}/${resource}`;
  const text = s.cursor(key);
  if (!text) return (await s.commit(stream, [], { key, value: JSON.stringify({ since: o.firstSince }) })) ? 0 : undefined;
  const since = (JSON.parse(text) as { since: string }).since;
  const q = new URLSearchParams({ _since: new Date(Date.parse(since) - o.overlapMs).toISOString() });
  let url = `${s.baseUrl}/${resource}/_history?${q.toString()}`;
  let start: string | undefined;
  const seen = new Set<string>();
  let deleted = 0;
  let rows: RawRow[] = [];
  for (let pages = 0; ; pages++) {
    if (s.signal.aborted) return undefined;
    const res = await s.http.request({ url, headers: { accept: 'application/fhir+json' }, signal: s.signal });
    const bundle = (await res.json()) as R | undefined;
    if (bundle?.resourceType !== 'Bundle')
      throw new ApiError('GW_API_REFUSED', `${resource} history did not answer with a Bundle`, {
        detail: { resourceType: String(bundle?.resourceType ?? 'none') },
      });
    if (start === undefined) {
      const d = Date.parse(res.headers.get('date') ?? '');
      const m = Date.parse(String((bundle.meta as R | undefined)?.lastUpdated ?? ''));
      start = new Date(Number.isFinite(m) ? m : Number.isFinite(d) ? d : s.clock.now()).toISOString();
    }
    for (const e of Array.isArray(bundle.entry) ? (bundle.entry as R[]) : []) {
      const req = e.request as R | undefined;
      const m = typeof req?.url === 'string' ? /^(?:.*\/)?([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/.*)?$/.exec(req.url) : null;
      const id = m?.[2] ?? (e.resource as R | undefined)?.id;
      if (typeof id !== 'string' || seen.has(id)) continue;
      seen.add(id);
      if (req?.method !== 'DELETE') continue;
      const at = String((e.response as R | undefined)?.lastModified ?? '');
      rows.push(deletedRow(resource, id, /^\d{4}-\d{2}-\d{2}T/.test(at) ? at : start, stream));
    }
    const nextLink = (Array.isArray(bundle.link) ? (bundle.link as R[]) : []).find((l) => l.relation === 'next')?.url;
    if (typeof nextLink !== 'string' || nextLink === '') break;
    // the bound never moves on a partial pass: a history too long to read is an error, read again next cycle
    if (pages >= 100_000) throw new ApiError('GW_API_REFUSED', `${resource} history has more than 100,000 pages since the last pass`);
    url = sameOrigin(nextLink, s.baseUrl, 'history next link');
    // deletions found so far are committed with the old bound: a crash repeats this pass, never skips it
    if (rows.length >= s.pageSize) {
      if (!(await s.commit(stream, rows, { key, value: text }))) return undefined;
      deleted += rows.length;
      rows = [];
    }
  }
  if (!(await s.commit(stream, rows, { key, value: JSON.stringify({ since: start }) }))) return undefined;
  deleted += rows.length;
  if (deleted) s.logger.info({ resource, deleted }, 'deleted resources found in the server history');
  return deleted;
}
