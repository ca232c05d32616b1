/**
 * The four ways a vendor pages a list, as one position kept in the cursor (JSON) and two steps:
 * the parameters of the page at a position, and the position after a page (undefined: the list is
 * done).
 *
 * | kind | position | the list is done when |
 * |---|---|---|
 * | `offset` | the offset | a page is empty or short, or the offset reaches `totalField` |
 * | `page` | the page number | a page is empty or short, or the rows read reach `totalField` |
 * | `cursor` | the cursor at `field` in the last body | there is none |
 * | `next` | the link at `field` (or the Link header) | there is none |
 * | `none` | — | after the one page |
 *
 * Offset and page paging read a moving list: a row deleted before the position shifts the rest
 * back, and one row would be passed over. `overlapRows` starts each offset page that many rows
 * early (re-read rows are unchanged and write nothing); cursors and links do not move.
 */
import { ApiError } from '../http/http-error.ts';
import type { Paging } from './api-types.ts';
import { followable, jsonPath, linkHeaderNext } from './request-template.ts';

export interface Position {
  offset?: number;
  page?: number;
  cursor?: string;
  /** A next link (absolute, on the API's origin): the whole URL of the page. */
  url?: string;
}

export const firstPosition = (p: Paging): Position =>
  p.kind === 'offset' ? { offset: 0 } : p.kind === 'page' ? { page: p.start ?? 1 } : {};

/** The page's own query parameters at `pos` (none when `pos.url` is the whole URL). */
export function pageParams(p: Paging, pos: Position, pageSize: number): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.sizeParam) out[p.sizeParam] = String(pageSize);
  switch (p.kind) {
    case 'offset':
      if (p.param) out[p.param] = String(pos.offset ?? 0);
      break;
    case 'page':
      if (p.param) out[p.param] = String(pos.page ?? p.start ?? 1);
      break;
    case 'cursor':
      if (p.param && pos.cursor !== undefined) out[p.param] = pos.cursor;
      break;
    case 'next':
    case 'none':
      break;
    default:
      p.kind satisfies never;
  }
  return out;
}

export interface PageSeen {
  body: unknown;
  headers: Headers;
  rows: number;
  pageSize: number;
  /** Rows read in this run before this page (page paging's total check). */
  readBefore: number;
  baseUrl: string;
}

/** The total a body states at `totalField`, if it states one. */
export function totalOf(p: Paging, body: unknown): number | undefined {
  if (!p.totalField) return undefined;
  const t = Number(jsonPath(body, p.totalField));
  return Number.isFinite(t) && t >= 0 ? t : undefined;
}

/** The position after a page, or undefined when the list is done. */
export function nextPosition(p: Paging, pos: Position, seen: PageSeen): Position | undefined {
  const total = totalOf(p, seen.body);
  const short = seen.rows === 0 || seen.rows < seen.pageSize;
  switch (p.kind) {
    case 'none':
      return undefined;
    case 'offset': {
      if (short) return undefined;
      const end = (pos.offset ?? 0) + seen.rows;
      if (total !== undefined && end >= total) return undefined;
      return { offset: end - Math.min(p.overlapRows ?? 0, seen.rows - 1) };
    }
    case 'page': {
      if (short) return undefined;
      if (total !== undefined && seen.readBefore + seen.rows >= total) return undefined;
      return { page: (pos.page ?? p.start ?? 1) + 1 };
    }
    case 'cursor': {
      const c = jsonPath(seen.body, p.field ?? '');
      if (c === undefined || c === null || c === '') return undefined;
      const cursor = String(c);
      if (cursor === pos.cursor) throw new ApiError('GW_API_REFUSED', 'the server gave the same cursor again: paging would not end');
      return { cursor };
    }
    case 'next': {
      const link = p.field === 'link-header' ? linkHeaderNext(seen.headers.get('link')) : jsonPath(seen.body, p.field ?? '');
      if (typeof link !== 'string' || link === '') return undefined;
      const url = followable(link, seen.baseUrl);
      if (url === pos.url) throw new ApiError('GW_API_REFUSED', 'the server gave the same next link again: paging would not end');
      return { url };
    }
    default:
      return p.kind satisfies never;
  }
}
