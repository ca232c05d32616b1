/**
 * Structured, PHI-free logging (pino). Components take a child logger
 * (`{ component: 'adapter:hl7v2', adapterId }`) and log ids and counts only. As a second line of
 * defence, any field whose name suggests PHI is censored centrally, at any depth we name here; a
 * test proves a full message flow leaves no PHI in the log. Errors (`err`, `error`, and `cause`
 * when it holds one) keep their class, code and stack frames but never their message text, in the
 * message, the stack, a cause chain or an AggregateError's errors (log-error.ts).
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { serializeLoggedError } from './log-error.ts';

export type { Logger };

/** Field names that must never reach a log line, wherever a caller puts them. */
export const PHI_FIELDS = [
  'name',
  'family',
  'given',
  'birthDate',
  'dob',
  'address',
  'addresses',
  'phone',
  'phones',
  'email',
  'emails',
  'ssn',
  'data',
  'raw',
  'message',
  'body',
  'payload',
  'rx',
  'right',
  'left',
  'sphere',
  'cylinder',
  'axis',
] as const;

const redactPaths = PHI_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]).filter((p) => p !== 'message');

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      redact: { paths: redactPaths, censor: '[redacted]' },
      serializers: {
        err: serializeLoggedError,
        error: serializeLoggedError,
        cause: (c: unknown) => (c instanceof Error ? serializeLoggedError(c) : c),
      },
      hooks: {
        // log.error(err) alone would take err.message as the line's message: name the class instead
        logMethod(args, method) {
          const [first, second] = args as unknown[];
          if (first instanceof Error && typeof second !== 'string')
            return method.apply(this, [{ err: first }, `${first.constructor?.name || 'Error'} (message not logged)`]);
          return method.apply(this, args);
        },
      },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (unit tests). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
