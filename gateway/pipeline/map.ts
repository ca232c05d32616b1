/**
 * Step 2 of the record path: map. A codec's mapper (or a polled source's row mapper) turns the
 * parsed input into draft records; here each draft gets the envelope fields the mapper does not
 * know — tenant, practice, gateway, schema version, observedAt — and becomes a canonical record.
 */
import { SCHEMA_VERSION, type CanonicalRecord } from '../../adapters/canonical/types.ts';
import type { DraftRecord, MapContext, MapResult, SourceCodec } from '../../adapters/contracts.ts';

export interface MappedRecord {
  draft: DraftRecord;
  record: CanonicalRecord;
}

export function toCanonical(d: DraftRecord, identity: MapContext, observedAt: string): CanonicalRecord {
  return {
    id: d.id,
    type: d.type,
    schemaVersion: SCHEMA_VERSION,
    op: d.op,
    tenantId: identity.tenantId,
    practiceId: identity.practiceId,
    gatewayId: identity.gatewayId,
    source: d.source,
    occurredAt: d.occurredAt,
    observedAt,
    data: d.data,
  };
}

export function mapParsed(codec: SourceCodec<unknown>, parsed: unknown, identity: MapContext): MapResult {
  return codec.map(parsed, identity);
}

/** A mapper's drafts as canonical records, all observed at the same instant. */
export function envelopeAll(mapped: MapResult, identity: MapContext, nowMs: number): MappedRecord[] {
  const observedAt = new Date(nowMs).toISOString();
  return mapped.records.map((draft) => ({ draft, record: toCanonical(draft, identity, observedAt) }));
}
