/**
 * The oracle's other half: what the reference cloud holds, reduced to the markers the load driver
 * seeded, and the comparison with the ledger. The cloud keeps only `{id, type}` per record and the
 * markers per record id (a soak's hundreds of thousands of full records would not fit a test's
 * memory); that is all the check needs.
 */
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { newStore, type ReceivedStore } from '../../reference-cloud/reference-cloud.ts';
import { SOURCE_KINDS, type Ledger, type SourceKind } from './ledger.ts';

/** Every marker the driver seeds starts with this (an MRN-shaped value, also the PHI sweep's MRN). */
export const MARKER_PREFIX = 'PHIMRN0042';

/** The cloud's records, kept as markers. */
class MarkerMap extends Map<string, CanonicalRecord> {
  /** Record ids each marker arrived under. */
  readonly idsByMarker = new Map<string, Set<string>>();
  readonly byType = new Map<string, number>();
  override set(id: string, rec: CanonicalRecord): this {
    super.set(id, { id, type: rec.type } as CanonicalRecord);
    this.byType.set(rec.type, (this.byType.get(rec.type) ?? 0) + 1);
    if (rec.type !== 'patient') return this;
    const ids = (rec.data as { identifiers?: Array<{ value?: string }> }).identifiers ?? [];
    for (const i of ids) {
      if (!i.value?.startsWith(MARKER_PREFIX)) continue;
      const s = this.idsByMarker.get(i.value);
      if (s) s.add(id);
      else this.idsByMarker.set(i.value, new Set([id]));
    }
    return this;
  }
}

export interface MarkerStore {
  store: ReceivedStore;
  markers: MarkerMap;
}

/** A reference-cloud store that keeps markers instead of whole records. */
export function markerStore(): MarkerStore {
  const markers = new MarkerMap();
  const store: ReceivedStore = { ...newStore(), records: markers, order: { push: () => 0 } as unknown as string[] };
  return { store, markers };
}

export interface KindResult {
  sent: number;
  acked: number;
  delivered: number;
  missing: string[];
  unackedDelivered: number;
}

export interface CheckResult {
  perKind: Record<SourceKind, KindResult>;
  /** Acknowledged markers the cloud never got, all kinds. */
  missing: number;
  acked: number;
  /** Copies of a record the cloud got again under the same id (dropped by its dedupe). */
  duplicateDeliveries: number;
  /** Markers that reached the cloud under more than one record id (a source re-read as new records). */
  markersUnderManyIds: number;
  invalid: number;
}

/** Compares the ledger with the cloud: every acknowledged marker must be there. */
export function check(ledger: Ledger, cloud: MarkerStore): CheckResult {
  const got = cloud.markers.idsByMarker;
  const perKind = {} as Record<SourceKind, KindResult>;
  let missing = 0;
  let acked = 0;
  for (const k of SOURCE_KINDS) {
    const miss = [...ledger.acked[k]].filter((m) => !got.has(m));
    let unackedDelivered = 0;
    for (const m of ledger.sent[k]) if (!ledger.acked[k].has(m) && got.has(m)) unackedDelivered++;
    const delivered = [...ledger.sent[k]].filter((m) => got.has(m)).length;
    perKind[k] = { sent: ledger.sent[k].size, acked: ledger.acked[k].size, delivered, missing: miss, unackedDelivered };
    missing += miss.length;
    acked += ledger.acked[k].size;
  }
  let markersUnderManyIds = 0;
  for (const ids of got.values()) if (ids.size > 1) markersUnderManyIds++;
  return { perKind, missing, acked, duplicateDeliveries: cloud.store.duplicates, markersUnderManyIds, invalid: cloud.store.invalid.length };
}

/** Whether every acknowledged marker has arrived (for a bounded wait). */
export function allDelivered(ledger: Ledger, cloud: MarkerStore): boolean {
  const got = cloud.markers.idsByMarker;
  for (const k of SOURCE_KINDS) for (const m of ledger.acked[k]) if (!got.has(m)) return false;
  return true;
}

/** The figures of a check, flat, for `report()`. */
export function checkFigures(r: CheckResult): Record<string, number> {
  const out: Record<string, number> = {
    acked: r.acked,
    missing: r.missing,
    duplicateDeliveries: r.duplicateDeliveries,
    markersUnderManyIds: r.markersUnderManyIds,
    invalid: r.invalid,
  };
  for (const k of SOURCE_KINDS) {
    out[`${k}Sent`] = r.perKind[k].sent;
    out[`${k}Acked`] = r.perKind[k].acked;
    out[`${k}UnackedDelivered`] = r.perKind[k].unackedDelivered;
  }
  return out;
}
