/**
 * How an error reaches a log line: its class, its code (and the few other fields that are codes
 * or numbers), and its stack frames — never its message text. A message can carry PHI (a database
 * error quoting a row, a parser quoting a field, a file name with a patient's name), and V8 repeats
 * the message as the first line of `stack`, so redacting `message` alone is not enough. The same
 * holds along `cause` chains and inside an AggregateError's `errors`.
 */

/** Fields of an error kept as they are: codes, classes of retry, numbers. */
const KEPT_FIELDS = ['code', 'errno', 'syscall', 'retry', 'status', 'statusCode'] as const;
const REDACTED = '[redacted]';
/** A stack frame as V8 writes it ("    at fn (file:line:col)", "    at file:line:col", "    at async fn …"). */
const FRAME = /^\s+at [^\r\n]*$/;
const MAX_DEPTH = 8;

export interface LoggedError {
  type: string;
  message: string;
  stack?: string;
  cause?: LoggedError | string;
  errors?: Array<LoggedError | string>;
  [field: string]: unknown;
}

function typeOf(e: object): string {
  const ctor = (e as { constructor?: { name?: unknown } }).constructor;
  if (typeof ctor?.name === 'string' && ctor.name) return ctor.name;
  const name = (e as { name?: unknown }).name;
  return typeof name === 'string' ? name : 'Error';
}

/**
 * The stack with its first lines (the class and message V8 put there) replaced by the class and
 * `[redacted]`; only lines that look like frames are kept, so message text spread over several
 * lines goes too.
 */
export function redactedStack(stack: string, type: string): string {
  const frames = stack.split('\n').filter((l) => FRAME.test(l));
  return [`${type}: ${REDACTED}`, ...frames].join('\n');
}

function serialize(e: unknown, depth: number, seen: Set<object>): LoggedError | string {
  if (e === null || e === undefined || typeof e !== 'object') return typeof e === 'number' || typeof e === 'boolean' ? String(e) : REDACTED;
  if (seen.has(e) || depth > MAX_DEPTH) return '[circular or too deep]';
  seen.add(e);
  const type = typeOf(e);
  const out: LoggedError = { type, message: REDACTED };
  for (const f of KEPT_FIELDS) {
    const v = (e as Record<string, unknown>)[f];
    if (typeof v === 'string' || typeof v === 'number') out[f] = typeof v === 'string' ? v.slice(0, 64) : v;
  }
  const stack = (e as { stack?: unknown }).stack;
  if (typeof stack === 'string') out.stack = redactedStack(stack, type);
  const cause = (e as { cause?: unknown }).cause;
  if (cause !== undefined) out.cause = serialize(cause, depth + 1, seen);
  const errors = (e as { errors?: unknown }).errors;
  if (Array.isArray(errors)) out.errors = errors.slice(0, 20).map((x) => serialize(x, depth + 1, seen));
  return out;
}

/** pino serializer for `err` (and any field holding an error): class, codes and frames, no message text. */
export function serializeLoggedError(e: unknown): LoggedError | string {
  return serialize(e, 0, new Set());
}
