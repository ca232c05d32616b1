/**
 * The Sink contract: `deliver(batch)` resolves when the cloud has acknowledged the batch (rule 2:
 * only then are rows deleted). Errors are GatewayErrors whose retry class tells the relay what to
 * do: transient (retry with backoff), ambiguous (resend; the cloud dedupes by record id),
 * permanent (dead-letter the batch).
 */
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';

export interface RecordBatch {
  /** Deterministic from the record ids: a resend carries the same id (Idempotency-Key). */
  batchId: string;
  ids: string[];
  /**
   * Each record's canonical JSON, as it was sealed (empty for a sink that takes `sealed` only).
   * Kept as text: the envelope is built by concatenation, with no parse and re-stringify per record.
   */
  json: string[];
  /** The records as the outbox keeps them (for a sink that stores sealed blobs as they are). */
  sealed?: SealedRow[];
}

/** A batch from records (tests, tools). */
export function batchOf(batchId: string, records: CanonicalRecord[]): RecordBatch {
  return { batchId, ids: records.map((r) => r.id), json: records.map((r) => JSON.stringify(r)) };
}

/** The records of a batch as objects (for sinks and tests that need them). */
export function batchRecords(batch: RecordBatch): CanonicalRecord[] {
  return batch.json.map((j) => JSON.parse(j) as CanonicalRecord);
}

/** The batch envelope's JSON (see BatchEnvelope), built from the records' JSON text. */
export function envelopeJson(batch: RecordBatch, meta: { gatewayId: string; tenantId: string; sentAt: string }): string {
  return `{"batchId":${JSON.stringify(batch.batchId)},"gatewayId":${JSON.stringify(meta.gatewayId)},"tenantId":${JSON.stringify(meta.tenantId)},"sentAt":${JSON.stringify(meta.sentAt)},"records":[${batch.json.join(',')}]}`;
}

/** A row as the outbox keeps it: one record, or a bundle of records (`recordIds`; its sealed JSON texts are joined by newlines). */
export interface SealedRow {
  id: string;
  type: string;
  sealed: Uint8Array;
  recordIds?: string[];
}

export interface DeliveryResult {
  /** Records the cloud refused permanently (the rest were accepted). */
  rejected: Array<{ id: string; reason: string }>;
}

export interface SinkHealth {
  connected: boolean;
  detail?: Record<string, string | number | boolean>;
}

export interface Sink {
  readonly kind: string;
  /** True when the sink writes the sealed blobs as they are: the relay then skips unsealing. */
  readonly takesSealed?: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  deliver(batch: RecordBatch): Promise<DeliveryResult>;
  health(): SinkHealth;
}

/** The JSON inside the JWE of one batch, as the cloud reads it. */
export interface BatchEnvelope {
  batchId: string;
  gatewayId: string;
  tenantId: string;
  sentAt: string;
  records: CanonicalRecord[];
}

/** The cloud's acknowledgement of one batch (MQTT `down/acks`, or the HTTPS response body). */
export interface BatchAck {
  batchId: string;
  accepted?: string[];
  rejected?: Array<{ id: string; reason: string }>;
}
