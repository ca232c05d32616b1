/**
 * HTTP plumbing shared by the server's parts: JSON answers, OperationOutcome errors and request
 * bodies. Error texts are fixed strings and ids, never resource content (no PHI in a body or a log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The FHIR JSON media type (FHIR R4 §2.6.2 "JSON Representation"). */
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** An issue code from the FHIR IssueType value set (R4 §4.4.1.390). */
export type IssueCode =
  | 'invalid'
  | 'not-supported'
  | 'not-found'
  | 'deleted'
  | 'conflict'
  | 'login'
  | 'forbidden'
  | 'throttled'
  | 'transient'
  | 'exception'
  | 'too-costly'
  | 'processing'
  | 'duplicate';

/** A request the server refuses: thrown by a handler, answered as an OperationOutcome by the router. */
export class FhirHttpError extends Error {
  readonly status: number;
  readonly code: IssueCode;
  readonly headers: Record<string, string>;
  constructor(status: number, code: IssueCode, text: string, headers: Record<string, string> = {}) {
    super(text);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** An OperationOutcome with one issue (FHIR R4 §3.1.0.4.2: errors come back as an OperationOutcome). */
export function operationOutcome(code: IssueCode, text: string, severity: 'error' | 'fatal' | 'warning' | 'information' = 'error') {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics: text }] };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType: string = FHIR_JSON,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendOutcome(
  res: ServerResponse,
  status: number,
  code: IssueCode,
  text: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, operationOutcome(code, text), headers);
}

/** Reads a request body up to `limit` bytes (413 beyond it). */
export async function readBody(req: IncomingMessage, limit = 5 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FhirHttpError(413, 'too-costly', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a JSON resource body, refusing anything that is not an object with a resourceType (400). */
export function parseResourceBody(text: string): { resourceType: string; [k: string]: unknown } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new FhirHttpError(400, 'invalid', 'body is not JSON');
  }
  if (typeof body !== 'object' || body === null || typeof (body as { resourceType?: unknown }).resourceType !== 'string') {
    throw new FhirHttpError(400, 'invalid', 'body is not a FHIR resource');
  }
  return body as { resourceType: string };
}

/** Query parameters as a record; a repeated name gives an array, in order. */
export function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of params) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** Base64url of a JSON value: the opaque page tokens the next links carry. */
export function encodeToken(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Reads a page token back; a token the server did not make is a 400. */
export function decodeToken<T>(token: string, check: (x: unknown) => x is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new FhirHttpError(400, 'invalid', 'unknown paging token');
  }
  if (!check(value)) throw new FhirHttpError(400, 'invalid', 'unknown paging token');
  return value;
}
