/**
 * One resource type kept in step by searching (FHIR R4 RESTful search, §3.1.1): a run reads from
 * the stream's position to the last page, following each Bundle's `next` link (opaque URLs, and
 * athenahealth's `cursor=` links alike), and commits every page's resources together with the
 * cursor after it. The cursor holds the `next` link while a run is under way, so a restart goes on
 * from the page after the last one committed; a link the server no longer honours starts the run
 * again from its beginning (re-read resources are unchanged and write nothing).
 *
 * The lower bound of the next run is the instant this run began by the server's clock (its `Date`
 * header), less the overlap: anything changed while the run was reading is read again, so the
 * cursor never passes a change it has not committed.
 */
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import type { RawRow } from '../contracts.ts';
import { ApiError, outcomeCodes } from '../http/http-error.ts';
import { resourceRow, unreadableRow } from './fhir-rows.ts';
import { sameOrigin, type SyncContext } from './sync-context.ts';
import type { SyncStrategy } from './vendor-profiles.ts';

type R = Record<string, unknown>;

/** The committed position of a searched resource. */
export interface SearchCursor {
  strategy: string;
  /** Lower bound (instant) of the next run; absent before the first run finished. */
  since?: string;
  /** A run under way: when it began (server time) and the next page. */
  run?: { start: string; next: string; pages: number };
}

export interface SearchOptions {
  overlapMs: number;
  dateWindowDays: number;
}

export const searchCursorKey = (sourceId: string, resource: string) => `${sourceId}/${resource}`;

/** The first page's URL of a run. */
export function firstPageUrl(
  s: SyncContext,
  resource: FhirResourceName,
  strategy: Exclude<SyncStrategy, { kind: 'bulk' }>,
  since: string | undefined,
  o: SearchOptions,
  now: number,
): string {
  const q = new URLSearchParams({ _count: String(s.pageSize) });
  switch (strategy.kind) {
    case 'lastUpdated':
      if (since) q.set('_lastUpdated', `ge${new Date(Date.parse(since) - o.overlapMs).toISOString()}`);
      break;
    case 'date':
      q.set(strategy.param, `ge${new Date(now - o.dateWindowDays * 86_400_000).toISOString().slice(0, 10)}`);
      break;
    case 'snapshot':
      break;
    default:
      strategy satisfies never;
  }
  return `${s.baseUrl}/${resource}?${q.toString()}`;
}

/**
 * When the server ran the search, by its own clock (the one `_lastUpdated` compares with): the
 * searchset Bundle's `meta.lastUpdated` (R4: when the Bundle was assembled), else the `Date` header
 * (to the second), else the gateway's clock. A time more than an hour ahead of ours is not trusted.
 */
function serverTime(bundle: R, headers: Headers, fallback: number): string {
  const meta = Date.parse(String((bundle.meta as R | undefined)?.lastUpdated ?? ''));
  const date = Date.parse(headers.get('date') ?? '');
  const t = Number.isFinite(meta) ? meta : Number.isFinite(date) ? date : fallback;
  return new Date(Math.min(t, fallback + 3_600_000)).toISOString();
}

/** Reads one resource type from its committed position to the end. Returns the resources committed, or undefined when stopped. */
export async function searchRun(
  s: SyncContext,
  resource: FhirResourceName,
  strategy: Exclude<SyncStrategy, { kind: 'bulk' }>,
  label: string,
  o: SearchOptions,
): Promise<number | undefined> {
  const key = searchCursorKey(s.sourceId, resource);
  const stream = key;
  const text = s.cursor(key);
  let c: SearchCursor = text ? (JSON.parse(text) as SearchCursor) : { strategy: label };
  // a strategy that changed (the server's capabilities did) starts afresh: the old one's bound
  // says nothing of what the new one would have read (a date window never saw older resources)
  if (c.strategy !== label) c = { strategy: label };
  let url = c.run?.next ?? firstPageUrl(s, resource, strategy, c.since, o, s.clock.now());
  let start = c.run?.start;
  let pages = c.run?.pages ?? 0;
  let resumed = c.run !== undefined;
  let read = 0;
  for (;;) {
    if (s.signal.aborted) return undefined;
    const res = await s.http.request({
      url,
      headers: { accept: 'application/fhir+json' },
      signal: s.signal,
      accept: resumed ? [400, 404, 410] : [],
    });
    if (res.status >= 400) {
      // the server no longer knows this page's link (it expired with its search): the run starts again
      await res.stream().cancel();
      s.logger.info({ resource, status: res.status }, 'a stored next link was refused; the run starts again from its beginning');
      resumed = false;
      url = firstPageUrl(s, resource, strategy, c.since, o, s.clock.now());
      start = undefined;
      pages = 0;
      continue;
    }
    resumed = false;
    const bundle = (await res.json()) as R | undefined;
    if (bundle?.resourceType !== 'Bundle')
      throw new ApiError('GW_API_REFUSED', `${resource} search did not answer with a Bundle`, {
        detail: { resourceType: String(bundle?.resourceType ?? 'none') },
      });
    start ??= serverTime(bundle, res.headers, s.clock.now());
    const rows: RawRow[] = [];
    const entries = Array.isArray(bundle.entry) ? (bundle.entry as R[]) : [];
    for (const [i, e] of entries.entries()) {
      const mode = (e.search as R | undefined)?.mode;
      const r = e.resource as R | undefined;
      if (mode === 'outcome' || r?.resourceType === 'OperationOutcome') {
        s.outcome(outcomeCodes(r));
        continue;
      }
      if (mode === 'include' || r?.resourceType !== resource) continue;
      // a match without an id cannot be tracked: it is a dead letter, never dropped in silence (rule 3)
      rows.push(
        resourceRow(r, undefined) ?? unreadableRow(`${resource}/entry/${pages}/${i}`, 'a search match without an id', JSON.stringify(r)),
      );
    }
    const nextLink = (Array.isArray(bundle.link) ? (bundle.link as R[]) : []).find((l) => l.relation === 'next')?.url;
    const next = typeof nextLink === 'string' && nextLink !== '' ? sameOrigin(nextLink, s.baseUrl, 'next link') : undefined;
    pages++;
    const after: SearchCursor = next ? { strategy: label, since: c.since, run: { start, next, pages } } : { strategy: label, since: start };
    // a run with no lower bound is the resource's first load
    if (!(await s.commit(stream, rows, { key, value: JSON.stringify(after) }, c.since === undefined))) return undefined;
    read += rows.length;
    s.note(`${resource}.pages`, pages);
    if (!next) {
      s.note(`${resource}.lastRunAt`, start);
      return read;
    }
    url = next;
  }
}
