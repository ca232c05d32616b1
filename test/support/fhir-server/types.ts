/**
 * Shapes shared by the FHIR R4 test server's parts. Resources are plain JSON objects (the server
 * validates nothing beyond `resourceType` and `id`), so any resource the corpus holds can be served.
 */
import type { JSONWebKeySet } from 'jose';

/** A FHIR resource as JSON: `resourceType` always, `id` and `meta` once the store holds it. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The vendor whose behaviour a server instance imitates (see vendors.ts). */
export type VendorName = 'epic' | 'cerner' | 'athenahealth' | 'meditech' | 'generic';

/** One answered request, without bodies or header values (no PHI, no tokens). */
export interface RequestLog {
  method: string;
  /** The path without the query string, e.g. `/r4/<tenant>/Patient`. */
  path: string;
  /** The query parameters; repeated names give an array. */
  query: Record<string, string | string[]>;
  /** The status sent; for a dropped connection, the status that was being sent. */
  status: number;
  /** Whether the request carried an `Authorization: Bearer` header (valid or not). */
  hadToken: boolean;
  /** True when the server destroyed the socket mid-response (`dropConnectionAt`). */
  dropped?: boolean;
  /** The server clock when the request arrived (ms since the epoch). */
  at: number;
}

/** A registered SMART Backend Services client (its public keys, given or hosted). */
export interface SmartClient {
  clientId: string;
  /** The client's public JWKS, registered with the server. */
  jwks?: JSONWebKeySet;
  /** A URL the server fetches the JWKS from at each token request (Epic's hosted-JWKS registration). */
  jwksUrl?: string;
  /** Scopes this client may be granted; absent: any scope it asks for. */
  scopes?: string[];
}

/**
 * A resource set generated on the fly from an index, so a large export is served without holding
 * its resources in memory. `at(i)` must be deterministic and `meta.lastUpdated` must not decrease
 * with `i` (search and `_since` rely on that order); ids must sort as `i` does.
 */
export interface SyntheticSource {
  type: string;
  count: number;
  at(i: number): FhirResource;
  /** Group ids whose `$export` includes this source (system- and Patient-level exports always do). */
  groups?: string[];
}

/** Fault injection for the FHIR API requests (everything under the base URL; not the token endpoint). */
export interface FaultOptions {
  /** Every Nth API request (1-based ordinal) is answered 429 with `Retry-After`. */
  throttle?: { every: number; retryAfterSeconds: number };
  /** Transient server errors at the given request ordinals or every Nth request. */
  failures?: { at?: number[]; every?: number; status: 500 | 503 };
  /** Request ordinals whose socket is destroyed after the headers and part of the body were sent. */
  dropConnectionAt?: number[];
  /** Request quotas by the server clock (fixed UTC minute and day windows), 429 when exceeded. */
  rateLimit?: { perMinute?: number; perDay?: number } | false;
}

/** Bulk Data export tuning. */
export interface BulkOptions {
  /** Status polls answered 202 (in progress) before the manifest; default 1. */
  pollsBeforeReady?: number;
  /** The `Retry-After` seconds sent with a 202 status answer; default 1. */
  retryAfterSeconds?: number;
  /** At most this many resources per NDJSON file; default 10,000. */
  maxResourcesPerFile?: number;
}
