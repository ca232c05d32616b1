/**
 * The one error a remote API source raises: a stable code from gateway/errors.ts (kept as a string:
 * adapters do not import gateway internals), its retry class, and PHI-free detail (status, the
 * server's OperationOutcome codes, the path without its query). A server's own text can quote
 * patient data, so it is never carried; only codes and counts are.
 */
export type ApiErrorCode =
  | 'GW_SOURCE_UNREACHABLE'
  | 'GW_API_AUTH_FAILED'
  | 'GW_API_REFUSED'
  | 'GW_API_QUOTA_EXHAUSTED'
  | 'GW_FHIR_NOT_R4'
  | 'GW_FHIR_BULK_FAILED';

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly retry: 'transient' | 'permanent';
  readonly status: number | undefined;
  /** When a transient error should be tried again (Retry-After, quota reset), if the server said. */
  readonly retryInMs: number | undefined;
  /** PHI-free facts for logs and `/status`. */
  readonly detail: Record<string, string | number>;
  constructor(
    code: ApiErrorCode,
    message: string,
    o: {
      status?: number;
      retryInMs?: number;
      detail?: Record<string, string | number>;
      cause?: unknown;
      retry?: 'transient' | 'permanent';
    } = {},
  ) {
    super(message, { cause: o.cause });
    this.name = 'ApiError';
    this.code = code;
    this.retry = o.retry ?? (code === 'GW_SOURCE_UNREACHABLE' || code === 'GW_API_QUOTA_EXHAUSTED' ? 'transient' : 'permanent');
    this.status = o.status;
    this.retryInMs = o.retryInMs;
    this.detail = o.detail ?? {};
  }
}

/** A URL as logs may show it: origin and path, never the query (search parameters can carry identifiers). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'invalid-url';
  }
}

/** OperationOutcome `issue.severity` (FHIR R4 value set issue-severity). */
const SEVERITIES: ReadonlySet<string> = new Set(['fatal', 'error', 'warning', 'information']);

/** OperationOutcome `issue.code` (FHIR R4 value set issue-type, every level of its hierarchy). */
const ISSUE_TYPES: ReadonlySet<string> = new Set([
  'invalid',
  'structure',
  'required',
  'value',
  'invariant',
  'security',
  'login',
  'unknown',
  'expired',
  'forbidden',
  'suppressed',
  'processing',
  'not-supported',
  'duplicate',
  'multiple-matches',
  'not-found',
  'deleted',
  'too-long',
  'code-invalid',
  'extension',
  'too-costly',
  'business-rule',
  'conflict',
  'transient',
  'lock-error',
  'no-store',
  'exception',
  'timeout',
  'incomplete',
  'throttled',
  'informational',
]);

const member = (set: ReadonlySet<string>, v: unknown): string => (typeof v === 'string' && set.has(v) ? v : 'other');

/**
 * The issue codes of a FHIR OperationOutcome (`issue[].severity` and `.code`, e.g. `error:throttled`),
 * never its `diagnostics` or `details.text`, which are free text a server may fill with patient data.
 * Both halves are mapped onto their FHIR value sets (anything else is `other`), because the
 * server chooses these strings too and they reach `/status`, metric names and logs.
 */
export function outcomeCodes(body: unknown): string[] {
  const b = body as { resourceType?: unknown; issue?: unknown } | undefined;
  if (b?.resourceType !== 'OperationOutcome' || !Array.isArray(b.issue)) return [];
  return b.issue
    .slice(0, 10)
    .map((i: { severity?: unknown; code?: unknown } | null) => `${member(SEVERITIES, i?.severity)}:${member(ISSUE_TYPES, i?.code)}`);
}

const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether a URL's host is this machine (the only place plain http is allowed: tests, a local proxy). */
export function isLoopback(u: URL): boolean {
  return LOOPBACK.has(u.hostname);
}

/**
 * Checks a URL the gateway will send a credential or PHI to (a token endpoint, a bulk file URL
 * a server handed over) and returns it parsed: https, or http only to this machine; no user or
 * password in it (they would be sent, and logged by whoever proxies it). A server's discovery
 * document or manifest is its own say-so, so the gateway checks what it is told before sending
 * a signed client assertion (usable for minutes by whoever receives it) to it.
 * Throws GW_API_REFUSED naming `what` and what to do; only the origin is shown.
 */
export function checkEndpointUrl(url: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ApiError('GW_API_REFUSED', `${what} is not a URL: give an https:// URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new ApiError('GW_API_REFUSED', `${what} is a ${u.protocol} URL: give an https:// URL`, { detail: { protocol: u.protocol } });
  if (u.username || u.password)
    throw new ApiError('GW_API_REFUSED', `${what} carries a user or password in the URL: remove it (the gateway authenticates otherwise)`, {
      detail: { origin: u.origin },
    });
  if (u.protocol === 'http:' && !isLoopback(u))
    throw new ApiError(
      'GW_API_REFUSED',
      `${what} (${u.origin}) is plain http to another machine, so what is sent there would cross the network in clear: use its https:// address (http is only for this machine)`,
      { detail: { origin: u.origin } },
    );
  return u;
}

/** RFC 6749 §5.2's error codes: a token endpoint's `error` is kept only when it is one of them (anything else could be its own text). */
export const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
]);
