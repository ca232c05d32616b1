/**
 * Canonical records made to order for the reliability cases that feed an outbox directly (no
 * parser in the way, so a case can reach a million records in minutes on two cores). Each record
 * is a valid `patient` upsert the reference cloud accepts; its id is deterministic from
 * (tag, patient, seq), and `seq` rides in `source.messageId` so a test can check the order the
 * cloud saw one patient's records in.
 */
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import type { Outbox, SourceRowEntry } from '../../gateway/outbox/outbox.ts';

export interface FedRecord {
  id: string;
  partitionKey: string;
  json: string;
}

export function fedRecord(o: {
  tag: string;
  tenantId: string;
  gatewayId: string;
  patient: number;
  seq: number;
  padBytes?: number;
}): FedRecord {
  const id = deterministicId('reliability-feed', o.tag, String(o.patient), String(o.seq));
  const data: Record<string, unknown> = { identifiers: [{ system: `urn:test:${o.tag}`, value: `${o.patient}` }] };
  if (o.padBytes) data.addresses = [{ lines: ['x'.repeat(o.padBytes)] }];
  const rec = {
    id,
    type: 'patient',
    schemaVersion: '1.0',
    op: 'upsert',
    tenantId: o.tenantId,
    practiceId: 'p-rel',
    gatewayId: o.gatewayId,
    source: { system: 'PMS@REL', adapter: 'hl7v2', sourceId: `${o.tag}|${o.patient}`, messageId: `${o.tag}:${o.patient}:${o.seq}` },
    occurredAt: '2026-12-01T10:00:00Z',
    observedAt: '2026-12-01T10:00:01Z',
    data,
  };
  return { id, partitionKey: `${o.tag}:p${o.patient}`, json: JSON.stringify(rec) };
}

/** (tag, patient, seq) back from a record the cloud received (its `source.messageId`). */
export function fedKey(rec: { source?: { messageId?: string } }): { tag: string; patient: number; seq: number } | undefined {
  const m = /^(.*):(\d+):(\d+)$/.exec(rec.source?.messageId ?? '');
  return m ? { tag: m[1], patient: Number(m[2]), seq: Number(m[3]) } : undefined;
}

/**
 * Enqueues records one transaction each (as an MLLP message's intake is), `concurrency` at a time
 * so they share group commits; returns the ids the outbox answered `accepted` — the records
 * acknowledged to their source, which the cloud must end up holding.
 */
export async function enqueueEach(outbox: Outbox, records: readonly FedRecord[], concurrency = 64): Promise<string[]> {
  const accepted: string[] = [];
  for (let k = 0; k < records.length; k += concurrency) {
    const slice = records.slice(k, k + concurrency);
    const outcomes = await Promise.all(
      slice.map((r) => outbox.enqueue({ records: [{ id: r.id, type: 'patient', partitionKey: r.partitionKey, plain: r.json }] })),
    );
    outcomes.forEach((o, i) => {
      if (o === 'accepted') accepted.push(slice[i].id);
    });
  }
  return accepted;
}

/** Enqueues records as one page (one transaction, as a database poller's page is); true when accepted. */
export async function enqueueAsPage(outbox: Outbox, stream: string, records: readonly FedRecord[]): Promise<boolean> {
  const rows: SourceRowEntry[] = records.map((r) => ({
    pk: r.id,
    hash: '',
    records: [{ id: r.id, type: 'patient', partitionKey: r.partitionKey, plain: r.json }],
  }));
  const out = await outbox.enqueuePage({ stream, rows, trackRows: false });
  return out.outcome === 'accepted';
}
