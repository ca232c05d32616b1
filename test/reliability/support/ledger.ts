/**
 * What each source was told was taken, kept by the load driver, for the checker to hold against
 * what the cloud got. A marker is the patient identifier the driver seeded into one record (an MRN,
 * a PMS row key): unique per record, so the comparison is between exact sets.
 *
 * "Acknowledged" follows ARCHITECTURE rule 1, per source: an HL7 ACK AA for that message's control
 * id; a file found in `processed/` (every row in it); a database row once its INSERT committed.
 * The last is stronger than "a poll passed it": the database keeps every committed row, so the
 * gateway must end up with all of them whether or not a poll had passed one before a kill.
 */

export const SOURCE_KINDS = ['mllp', 'file', 'sftp', 'db'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export interface Ledger {
  /** Markers sent to a source (acknowledged or not). */
  readonly sent: Record<SourceKind, Set<string>>;
  /** Markers the source was told were taken. */
  readonly acked: Record<SourceKind, Set<string>>;
  noteSent(kind: SourceKind, markers: Iterable<string>): void;
  noteAcked(kind: SourceKind, markers: Iterable<string>): void;
  /** Acknowledged markers of every kind. */
  allAcked(): Set<string>;
}

const perKind = (): Record<SourceKind, Set<string>> => ({ mllp: new Set(), file: new Set(), sftp: new Set(), db: new Set() });

export function createLedger(): Ledger {
  const sent = perKind();
  const acked = perKind();
  return {
    sent,
    acked,
    noteSent(kind, markers) {
      for (const m of markers) sent[kind].add(m);
    },
    noteAcked(kind, markers) {
      for (const m of markers) acked[kind].add(m);
    },
    allAcked() {
      const all = new Set<string>();
      for (const k of SOURCE_KINDS) for (const m of acked[k]) all.add(m);
      return all;
    },
  };
}
