/**
 * Steps 2 and 3 together — map (map.ts) then validate (validate.ts) — without storage: shared by the
 * intake pipeline and the CLI's `preview`.
 */
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import type { RecordValidator } from '../../adapters/canonical/validator.ts';
import type { MapContext, MapResult, SourceCodec, SourceLocation } from '../../adapters/contracts.ts';
import type { Clock } from '../clock.ts';
import { envelopeAll, mapParsed, type MappedRecord } from './map.ts';
import { validateRecords, type InvalidRecord } from './validate.ts';

export type { MappedRecord } from './map.ts';
export type { InvalidRecord } from './validate.ts';
export interface MapStageResult {
  mapped: MapResult;
  records: MappedRecord[];
  invalid: InvalidRecord[];
}

export interface PreviewResult {
  kind: string;
  messageId?: string;
  unsupported?: string;
  records: CanonicalRecord[];
  issues: Array<{ severity: string; code: string; message: string; location?: SourceLocation; path?: string }>;
}

export interface MapStage {
  run(codec: SourceCodec<unknown>, parsed: unknown): MapStageResult;
  /** Envelope and validation for records a row mapper already made (polled sources map rows themselves). */
  finish(mapped: MapResult): MapStageResult;
  /** Parses and maps one message's text; throws the codec's CodecError when it does not parse. */
  preview(codec: SourceCodec<unknown>, text: string): PreviewResult;
}

export function createMapStage(o: { validator: RecordValidator; clock: Clock; identity: MapContext }): MapStage {
  function run(codec: SourceCodec<unknown>, parsed: unknown): MapStageResult {
    return finish(mapParsed(codec, parsed, o.identity));
  }
  function finish(mapped: MapResult): MapStageResult {
    const records = envelopeAll(mapped, o.identity, o.clock.now());
    return { mapped, records, invalid: validateRecords(o.validator, records) };
  }
  return {
    run,
    finish,
    preview(codec, text) {
      const parsed = codec.parse(text);
      const { kind, messageId } = codec.describe(parsed);
      const { mapped, records, invalid } = run(codec, parsed);
      return {
        kind,
        messageId,
        unsupported: mapped.unsupported,
        records: records.map((r) => r.record),
        issues: [
          ...mapped.issues,
          ...invalid.map((i) => ({
            severity: 'error',
            code: 'GW_VALIDATION_FAILED',
            message: `${i.type} record ${i.path} ${i.problem}`,
            path: i.path,
          })),
        ],
      };
    },
  };
}
