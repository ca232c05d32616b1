/**
 * Step 1 of the record path: parse. The input's format names its codec; the codec's parse either
 * yields the parsed form or throws a CodecError, which becomes a rejection with its location (the
 * input then goes to dead letters, rule 3). Any other error is a bug and is thrown on.
 */
import { CodecError, type RawInput, type SourceCodec, type SourceLocation } from '../../adapters/contracts.ts';

export type ParseOutcome =
  | { ok: true; codec: SourceCodec<unknown>; parsed: unknown }
  | { ok: false; code: 'GW_UNSUPPORTED_MESSAGE' | 'GW_PARSE_FAILED'; reason: string; location?: SourceLocation; hl7ErrorCode?: string };

export function parseInput(codecs: ReadonlyMap<string, SourceCodec<unknown>>, raw: RawInput): ParseOutcome {
  const codec = codecs.get(raw.format);
  if (!codec) return { ok: false, code: 'GW_UNSUPPORTED_MESSAGE', reason: `no codec for format ${raw.format}` };
  // an adapter that had to parse to answer hands the parsed form over (no second parse)
  if (raw.parsed !== undefined) return { ok: true, codec, parsed: raw.parsed };
  try {
    return { ok: true, codec, parsed: codec.parse(raw.text) };
  } catch (e) {
    if (e instanceof CodecError)
      return { ok: false, code: 'GW_PARSE_FAILED', reason: e.message, location: e.location, hl7ErrorCode: e.hl7ErrorCode ?? '100' };
    throw e;
  }
}
