/**
 * An API source as it runs: the config entry with its profile folded in (adapters/api/resolve.ts),
 * every entity complete. The profiles (adapters/api/profiles/) are written in these shapes too.
 */
import type { ApiAuthKind, PagingKind, SinceFormat } from '../../config/api-schema.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import type { RecordMapping } from '../canonical/field-mapping.ts';

/** One `apis[]` entry, validated and defaulted. */
export type ApiSourceConfig = GatewayConfig['apis'][number];

export interface ModifiedSince {
  param: string;
  format: SinceFormat;
  timezone: 'utc' | 'practice';
  /** Sent on the first run (ISO instant), for APIs that refuse a read without the parameter. */
  initial?: string;
}

export interface Paging {
  kind: PagingKind;
  param?: string;
  sizeParam?: string;
  /** First page number (page paging). */
  start?: number;
  /** JSON path of the next cursor or link; `link-header` for the Link header. */
  field?: string;
  totalField?: string;
  overlapRows?: number;
}

export type Deletes =
  | { kind: 'none' }
  | { kind: 'field'; field: string; in: Array<string | number | boolean> }
  | { kind: 'tombstone'; target: string; key: string };

/** One entity: a request template, its paging, where the rows are, their key, and what they become. */
export interface ApiEntity {
  name: string;
  path: string;
  method: 'GET' | 'POST';
  query: Record<string, string>;
  /** JSON path of the rows' array; '' when the body is the array. */
  rows: string;
  key: string;
  modifiedSince?: ModifiedSince;
  paging: Paging;
  /** A path POSTed once before the first read (a changed-data subscription); remembered in the cursor. */
  subscribe?: string;
  pageSize: number;
  /** 0: every poll. */
  intervalMinutes: number;
  deletes: Deletes;
  records: RecordMapping[];
}

/** An entity as a profile writes it: what a config entry of the same name may override. */
export type ProfileEntity = Omit<ApiEntity, 'pageSize' | 'method' | 'query' | 'intervalMinutes' | 'deletes'> &
  Partial<Pick<ApiEntity, 'pageSize' | 'method' | 'query' | 'intervalMinutes' | 'deletes'>>;

export interface ApiAuthSettings {
  kind: ApiAuthKind;
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
  clientAuth: 'basic' | 'body';
  scope?: string;
  refreshToken?: string;
  header: string;
  prefix: string;
  key?: string;
}

export interface RateLimits {
  perSecond?: number;
  perMinute?: number;
  perHour?: number;
  perDay?: number;
}

/** A vendor's API as data: where it is, how it is entered, how fast, and what it holds. */
export interface ApiProfile {
  label: string;
  /** `source.system` stem of the records (`DRCHRONO`), joined with the source id. */
  system: string;
  baseUrl?: string;
  auth: Partial<Omit<ApiAuthSettings, 'clientId' | 'clientSecret' | 'refreshToken' | 'key'>> & { kind: ApiAuthKind };
  rateLimit: RateLimits;
  pageSize: number;
  /** Variables every entry must give (athenahealth: `practiceId`). */
  variables: readonly string[];
  entities: readonly ProfileEntity[];
  /** What a technician should know (printed by `api check`). */
  notes: readonly string[];
}

/** A source ready to run. */
export interface ResolvedApiSource {
  id: string;
  profile: ApiProfile;
  profileName: string;
  baseUrl: string;
  variables: Record<string, string>;
  system: string;
  auth: ApiAuthSettings;
  rateLimit: Required<RateLimits>;
  pollIntervalMs: number;
  overlapSeconds: number;
  timeoutMs: number;
  entities: ApiEntity[];
}
