/**
 * The HL7 sequence number protocol (HL7 v2 chapter 2, "Sequence number protocol"): a sender that
 * fills MSH-13 numbers its messages; the receiver answers each with the number it expects next
 * (MSA-4) and refuses a gap, so the sender resends from there. -1 asks for the expected number
 * without sending a message; 0 starts (or restarts) the count.
 *
 * State is per sender (MSH-3/MSH-4) and kept in memory: after a restart the first numbered message
 * resynchronises. Frames of one connection are checked in arrival order (the expected number
 * advances when a message is checked, and goes back if its intake is refused for now).
 */
export type SequenceVerdict =
  | { kind: 'none' }
  | { kind: 'query'; expected: string }
  | { kind: 'accept'; expected: string; rollback: () => void }
  | { kind: 'gap'; expected: string };

export interface SequenceTracker {
  check(sender: string, sequenceNumber: string | undefined): SequenceVerdict;
  expected(sender: string): string | undefined;
}

export function createSequenceTracker(): SequenceTracker {
  const next = new Map<string, number>();
  return {
    expected: (sender) => {
      const n = next.get(sender);
      return n === undefined ? undefined : String(n);
    },
    check(sender, raw) {
      if (raw === undefined || raw.trim() === '') return { kind: 'none' };
      const n = Number(raw);
      if (!Number.isInteger(n)) return { kind: 'none' };
      const want = next.get(sender);
      if (n === -1) return { kind: 'query', expected: String(want ?? 0) };
      if (n === 0 || want === undefined || n === want) {
        const after = n === 0 ? 1 : n + 1;
        next.set(sender, after);
        return {
          kind: 'accept',
          expected: String(after),
          rollback: () => {
            if (next.get(sender) === after) next.set(sender, n === 0 ? 0 : n);
          },
        };
      }
      if (n < want) return { kind: 'accept', expected: String(want), rollback: () => undefined }; // a resend: the resend check decides
      return { kind: 'gap', expected: String(want) };
    },
  };
}
