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
  /** The records in plaintext (empty for a sink that takes `sealed` only). */
  records: CanonicalRecord[];
  /** The records as the outbox keeps them (for a sink that stores sealed blobs as they are). */
  sealed?: SealedRow[];
}

export interface SealedRow { id: string; type: string; sealed: Uint8Array }

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
