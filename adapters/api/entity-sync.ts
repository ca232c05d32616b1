/**
 * One entity kept in step: a run reads from the entity's position to the last page and commits
 * every page's rows together with the cursor after it (ARCHITECTURE rule 1), so a restart goes on
 * from the page after the last one committed. A stored position the server no longer honours
 * (a stale cursor or link: 400, 404, 410) starts the run again from its beginning; re-read rows are
 * unchanged and write nothing.
 *
 * Incremental: the run's lower bound is the instant the previous run began by the server's clock
 * (its first answer's `Date`, never more than an hour ahead of ours), less the overlap, sent in the
 * modified-since parameter; it is fixed when the run begins and kept in the cursor, so a resumed
 * run pages through the same list. Anything changed while a run was reading is read again by the
 * next one: the cursor never passes a change it has not committed.
 *
 * The cursor's first run is the first load: it pages in the background like any other run, with
 * its progress (rows read, the vendor's total when it gives one) in the cursor and in `/status`.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../gateway/clock.ts';
import type { RawRow } from '../contracts.ts';
import type { HttpClient } from '../http/http-client.ts';
import { ApiError } from '../http/http-error.ts';
import type { ApiEntity, ResolvedApiSource } from './api-types.ts';
import { pageRows, streamOf } from './api-rows.ts';
import { firstPosition, nextPosition, pageParams, totalOf, type Position } from './paging.ts';
import { buildUrl, fill, jsonPath } from './request-template.ts';

/** The committed position of an entity (JSON in the outbox's cursor table). */
export interface EntityCursor {
  /** `initial` until the first run has read to its end. */
  phase: 'initial' | 'incremental';
  /** Lower bound (instant) of the next run; absent before the first run finished. */
  since?: string;
  /** When the last run finished, by the gateway's clock (for `intervalMinutes`). */
  lastRunAt?: string;
  /** The changed-data subscription was made. */
  subscribed?: boolean;
  /** A run under way. */
  run?: {
    /** When it began, by the server's clock. */
    start: string;
    /** The modified-since instant it sends (fixed for the run). */
    lower?: string;
    pos: Position;
    pages: number;
    rows: number;
    total?: number;
  };
}

export interface SyncContext {
  source: ResolvedApiSource;
  http: HttpClient;
  /** Headers every request carries (an API key). */
  headers: Record<string, string>;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  /** The practice's IANA zone (modified-since in practice time). */
  timezone: string;
  cursor(key: string): string | undefined;
  /**
   * Commits rows of a stream with a cursor; false when the source is stopping. `firstLoad`: the
   * rows are the entity's first run (their records go in the backfill lane unless urgent).
   */
  commit(stream: string, rows: RawRow[], cursor: { key: string; value: string }, firstLoad?: boolean): Promise<boolean>;
  /** Progress for `/status` (PHI-free). */
  note(key: string, value: string | number): void;
}

export const entityCursorKey = (sourceId: string, entity: string) => `${sourceId}/${entity}`;

export function readEntityCursor(s: Pick<SyncContext, 'cursor'>, sourceId: string, entity: string): EntityCursor {
  const t = s.cursor(entityCursorKey(sourceId, entity));
  return t ? (JSON.parse(t) as EntityCursor) : { phase: 'initial' };
}

/** Whether an entity is due (its `intervalMinutes` since its last finished run; a run under way always is). */
export function entityDue(c: EntityCursor, e: ApiEntity, now: number): boolean {
  if (c.run || !c.lastRunAt || e.intervalMinutes <= 0) return true;
  return now - Date.parse(c.lastRunAt) >= e.intervalMinutes * 60_000;
}

/** When the server answered, by its clock (to the second); ours when it did not say or runs an hour ahead. */
function serverTime(headers: Headers, now: number): number {
  const t = Date.parse(headers.get('date') ?? '');
  return Number.isFinite(t) ? Math.min(t, now + 3_600_000) : now;
}

/** The URL of the page at `pos` of a run bounded below by `lower`. */
export function pageUrl(s: Pick<SyncContext, 'source' | 'timezone'>, e: ApiEntity, pos: Position, lower: string | undefined): string {
  if (pos.url) return pos.url;
  const at = lower !== undefined ? Date.parse(lower) : undefined;
  return buildUrl({
    baseUrl: s.source.baseUrl,
    path: e.path,
    query: e.query,
    variables: s.source.variables,
    since:
      e.modifiedSince && at !== undefined
        ? { spec: e.modifiedSince, at, timeZone: e.modifiedSince.timezone === 'practice' ? s.timezone : 'UTC' }
        : undefined,
    page: pageParams(e.paging, pos, e.pageSize),
  });
}

/** The rows' array of a body; throws when the body has none where the entity says. */
export function rowsOf(e: ApiEntity, body: unknown): unknown[] {
  const rows = jsonPath(body, e.rows);
  if (rows === undefined || rows === null) return [];
  if (!Array.isArray(rows))
    throw new ApiError('GW_API_REFUSED', `${e.name}: the answer has no array at ${e.rows === '' ? 'its top level' : e.rows}`, {
      detail: { entity: e.name },
    });
  return rows;
}

/** POSTs the entity's subscription once (remembered in its cursor). Returns false when stopping. */
async function subscribe(s: SyncContext, e: ApiEntity, c: EntityCursor): Promise<boolean> {
  if (!e.subscribe || c.subscribed) return true;
  const res = await s.http.request({
    method: 'POST',
    url: `${s.source.baseUrl}${fill(e.subscribe, s.source.variables)}`,
    headers: { accept: 'application/json', ...s.headers },
    signal: s.signal,
  });
  await res.stream().cancel();
  s.logger.info({ entity: e.name }, 'changed-data subscription made');
  const key = entityCursorKey(s.source.id, e.name);
  const after: EntityCursor = { ...readEntityCursor(s, s.source.id, e.name), subscribed: true };
  return s.commit(streamOf(s.source.id, e.name), [], { key, value: JSON.stringify(after) });
}

/** Reads one entity from its committed position to the end. Returns the rows committed, or undefined when stopped. */
export async function entityRun(s: SyncContext, e: ApiEntity): Promise<number | undefined> {
  const key = entityCursorKey(s.source.id, e.name);
  const stream = streamOf(s.source.id, e.name);
  let c = readEntityCursor(s, s.source.id, e.name);
  if (!(await subscribe(s, e, c))) return undefined;
  c = readEntityCursor(s, s.source.id, e.name);
  const overlapMs = s.source.overlapSeconds * 1000;
  const lowerOf = (cur: EntityCursor): string | undefined =>
    cur.since !== undefined ? new Date(Date.parse(cur.since) - overlapMs).toISOString() : e.modifiedSince?.initial;
  let run = c.run ?? { start: '', lower: lowerOf(c), pos: firstPosition(e.paging), pages: 0, rows: 0 };
  let resumed = c.run !== undefined;
  let read = 0;
  for (;;) {
    if (s.signal.aborted) return undefined;
    const url = pageUrl(s, e, run.pos, run.lower);
    const res = await s.http.request({
      method: e.method,
      url,
      headers: { accept: 'application/json', ...s.headers },
      signal: s.signal,
      accept: resumed ? [400, 404, 410] : [],
    });
    if (res.status >= 400) {
      await res.stream().cancel();
      s.logger.info({ entity: e.name, status: res.status }, 'a stored page position was refused; the run starts again from its beginning');
      resumed = false;
      run = { start: '', lower: lowerOf(c), pos: firstPosition(e.paging), pages: 0, rows: 0 };
      continue;
    }
    resumed = false;
    const body = await res.json();
    if (run.start === '') run.start = new Date(serverTime(res.headers, s.clock.now())).toISOString();
    const items = rowsOf(e, body);
    const rows = pageRows(s.source.id, e, items);
    const total = totalOf(e.paging, body) ?? run.total;
    const next = nextPosition(e.paging, run.pos, {
      body,
      headers: res.headers,
      rows: items.length,
      pageSize: e.pageSize,
      readBefore: run.rows,
      baseUrl: s.source.baseUrl,
    });
    const pages = run.pages + 1;
    const done = run.rows + items.length;
    const after: EntityCursor = next
      ? { ...c, run: { ...run, pos: next, pages, rows: done, ...(total !== undefined ? { total } : {}) } }
      : { phase: 'incremental', subscribed: c.subscribed, since: run.start, lastRunAt: new Date(s.clock.now()).toISOString() };
    if (!(await s.commit(stream, rows, { key, value: JSON.stringify(after) }, c.phase === 'initial'))) return undefined;
    read += items.length;
    s.note(`${e.name}.pages`, pages);
    s.note(`${e.name}.rowsRead`, done);
    if (total !== undefined) s.note(`${e.name}.rowsTotal`, total);
    if (!next) {
      if (c.phase === 'initial') s.logger.info({ entity: e.name, rows: done, pages }, 'first load finished');
      s.note(`${e.name}.lastRunAt`, run.start);
      return read;
    }
    c = after;
    run = after.run!;
  }
}
