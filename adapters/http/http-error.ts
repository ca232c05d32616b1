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

/**
 * The issue codes of a FHIR OperationOutcome (`issue[].severity` and `.code`, e.g. `error:throttled`),
 * never its `diagnostics` or `details.text`, which are free text a server may fill with patient data.
 */
export function outcomeCodes(body: unknown): string[] {
  const b = body as { resourceType?: unknown; issue?: unknown } | undefined;
  if (b?.resourceType !== 'OperationOutcome' || !Array.isArray(b.issue)) return [];
  return b.issue
    .slice(0, 10)
    .map((i: { severity?: unknown; code?: unknown }) => `${String(i?.severity ?? '?')}:${String(i?.code ?? '?')}`.slice(0, 60));
}
