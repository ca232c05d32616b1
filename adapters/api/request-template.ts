/**
 * An entity's request as data made into a URL: `{variable}`s filled (URL-encoded, so a value never
 * changes a path's shape), the query, the modified-since parameter in the vendor's format, and the
 * page's own parameters. Also the two readers every page needs: a JSON path into a body, and the
 * origin check on links the server hands back.
 */
import type { SinceFormat } from '../../config/api-schema.ts';
import { ApiError } from '../http/http-error.ts';
import type { ModifiedSince } from './api-types.ts';

/** Replaces `{name}` with its value, URL-encoded; a name without a value is left as it is (config rules refuse it). */
export function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (m, k: string) => (k in vars ? encodeURIComponent(vars[k]) : m));
}

/** `a.b.0.c` into a JSON value; '' is the value itself. */
export function jsonPath(v: unknown, path: string): unknown {
  if (path === '') return v;
  let o = v;
  for (const k of path.split('.')) {
    if (o === null || typeof o !== 'object') return undefined;
    o = (o as Record<string, unknown>)[k];
  }
  return o;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** An instant's wall-clock parts in an IANA zone. */
function wallClock(ms: number, timeZone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return { y: n('year'), mo: n('month'), d: n('day'), h: n('hour'), mi: n('minute'), s: n('second') };
}

/** The instant `ms` as the vendor's modified-since parameter wants it. */
export function formatSince(ms: number, format: SinceFormat, timeZone: string): string {
  if (format === 'iso') return new Date(ms).toISOString();
  if (format === 'epoch') return String(Math.floor(ms / 1000));
  const w = wallClock(ms, timeZone);
  const date = `${w.y}-${pad(w.mo)}-${pad(w.d)}`;
  const time = `${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}`;
  switch (format) {
    case 'datetime':
      return `${date}T${time}`;
    case 'date':
      return date;
    case 'MM/DD/YYYY':
      return `${pad(w.mo)}/${pad(w.d)}/${w.y}`;
    case 'MM/DD/YYYY HH:mm:ss':
      return `${pad(w.mo)}/${pad(w.d)}/${w.y} ${time}`;
    default:
      return format satisfies never;
  }
}

export interface UrlParts {
  baseUrl: string;
  path: string;
  query: Record<string, string>;
  variables: Record<string, string>;
  /** The modified-since parameter and the instant it carries, when this run sends one. */
  since?: { spec: ModifiedSince; at: number; timeZone: string };
  /** The page's own parameters (offset, page, cursor, size). */
  page: Record<string, string>;
}

export function buildUrl(p: UrlParts): string {
  const u = new URL(`${p.baseUrl}${fill(p.path, p.variables)}`);
  for (const [k, v] of Object.entries(p.query)) u.searchParams.set(k, fill(v, p.variables));
  if (p.since) u.searchParams.set(p.since.spec.param, formatSince(p.since.at, p.since.spec.format, p.since.timeZone));
  for (const [k, v] of Object.entries(p.page)) u.searchParams.set(k, v);
  return u.toString();
}

/**
 * A link the server gave (a `next`, relative or absolute) that the gateway will follow with its
 * token: it must be on the API's own origin, or a hostile or confused server could have the token
 * sent elsewhere.
 */
export function followable(link: string, baseUrl: string): string {
  let u: URL;
  try {
    u = new URL(link, `${baseUrl}/`);
  } catch {
    throw new ApiError('GW_API_REFUSED', 'the server gave a next link that is not a URL');
  }
  if (u.origin !== new URL(baseUrl).origin)
    throw new ApiError('GW_API_REFUSED', `the server's next link points to another origin (${u.origin}); the token is not sent there`, {
      detail: { origin: u.origin },
    });
  return u.toString();
}

/** The `rel="next"` target of a Link header (RFC 8288), if any. */
export function linkHeaderNext(value: string | null): string | undefined {
  if (!value) return undefined;
  for (const part of value.split(',')) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel="?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2])) return m[1];
  }
  return undefined;
}
