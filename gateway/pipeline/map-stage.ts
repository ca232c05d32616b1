/**
 * parse → map → validate, without storage: shared by the intake pipeline and the CLI's `preview`.
 * The envelope fields the mapper does not know (tenant, practice, gateway, observedAt) are added here.
 */
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { SCHEMA_VERSION } from '../../adapters/canonical/types.ts';
import type { RecordValidator } from '../../adapters/canonical/validator.ts';
import type { DraftRecord, MapContext, MapResult, SourceCodec, SourceLocation } from '../../adapters/contracts.ts';
import type { Clock } from '../clock.ts';

export interface MappedRecord { draft: DraftRecord; record: CanonicalRecord }
export interface InvalidRecord { id: string; type: string; path: string; problem: string }
export interface MapStageResult { mapped: MapResult; records: MappedRecord[]; invalid: InvalidRecord[] }

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
  function envelope(d: DraftRecord, observedAt: string): CanonicalRecord {
    return {
      id: d.id, type: d.type, schemaVersion: SCHEMA_VERSION, op: d.op,
      tenantId: o.identity.tenantId, practiceId: o.identity.practiceId, gatewayId: o.identity.gatewayId,
      source: d.source, occurredAt: d.occurredAt, observedAt, data: d.data,
    };
  }
  function run(codec: SourceCodec<unknown>, parsed: unknown): MapStageResult {
    return finish(codec.map(parsed, o.identity));
  }
  function finish(mapped: MapResult): MapStageResult {
    const observedAt = new Date(o.clock.now()).toISOString();
    const records = mapped.records.map((draft) => ({ draft, record: envelope(draft, observedAt) }));
    const invalid: InvalidRecord[] = [];
    for (const { record } of records) for (const p of o.validator.validate(record)) invalid.push({ id: record.id, type: record.type, path: p.path, problem: p.problem });
    return { mapped, records, invalid };
  }
  return {
    run,
    finish,
    preview(codec, text) {
      const parsed = codec.parse(text);
      const { kind, messageId } = codec.describe(parsed);
      const { mapped, records, invalid } = run(codec, parsed);
      return {
        kind, messageId, unsupported: mapped.unsupported,
        records: records.map((r) => r.record),
        issues: [...mapped.issues, ...invalid.map((i) => ({ severity: 'error', code: 'GW_VALIDATION_FAILED', message: `${i.type} record ${i.path} ${i.problem}`, path: i.path }))],
      };
    },
  };
}
