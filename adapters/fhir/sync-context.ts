/**
 * What a sync run (search paging, bulk export) is handed by the FHIR source: the server, the HTTP
 * client, and one way to commit — a page of rows with the cursor after it, in one outbox
 * transaction (ARCHITECTURE rule 1), waiting while the outbox is full.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../gateway/clock.ts';
import type { RawRow } from '../contracts.ts';
import { ApiError } from '../http/http-error.ts';
import type { HttpClient } from '../http/http-client.ts';

export interface SyncContext {
  sourceId: string;
  /** Without a trailing slash. */
  baseUrl: string;
  http: HttpClient;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  pageSize: number;
  /** Read a committed cursor. */
  cursor(key: string): string | undefined;
  /**
   * Commits rows of one stream with a cursor; resolves false when the source is stopping (nothing
   * more should be read). Rows carry their own stream when it differs from `stream`. `firstLoad`:
   * the rows are the resource's first run (their records go in the backfill lane unless urgent).
   */
  commit(stream: string, rows: RawRow[], cursor: { key: string; value: string }, firstLoad?: boolean): Promise<boolean>;
  /** Progress and problems for `/status` (PHI-free). */
  note(key: string, value: string | number): void;
  /** OperationOutcome issue codes a server returned inside a Bundle or an error file. */
  outcome(codes: string[]): void;
}

/**
 * A server-supplied URL the gateway will follow with its bearer token (a Bundle's `next`, a bulk
 * status or file URL): it must be on the FHIR server's own origin, or a hostile or confused server
 * could send the token elsewhere.
 */
export function sameOrigin(url: string, baseUrl: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url, `${baseUrl}/`);
  } catch {
    throw new ApiError('GW_API_REFUSED', `the server gave a ${what} that is not a URL`);
  }
  if (u.origin !== new URL(baseUrl).origin)
    throw new ApiError('GW_API_REFUSED', `the server's ${what} points to another origin (${u.origin}); the token is not sent there`, {
      detail: { origin: u.origin },
    });
  return u.toString();
}
