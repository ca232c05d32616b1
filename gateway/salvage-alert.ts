/**
 * The alert a salvaged outbox raises (`outboxSalvaged`, `outboundSalvaged`: GW_OUTBOX_DAMAGED,
 * not blocking readiness — the gateway runs and takes input on the salvaged outbox); it records a
 * past event, so a person acknowledges it (`POST /alerts/:key/clear`).
 */
import type { AlertBoard } from './alerts.ts';
import { describeSalvage, salvageTotals, type SalvageReport } from './outbox/outbox-salvage.ts';

/** The callback an outbox calls after a salvage; the board is looked up late (the outbox is built first). */
export function salvageAlert(board: () => AlertBoard, key: string): (r: SalvageReport) => void {
  return (r) => {
    const t = salvageTotals(r);
    board().raise(key, {
      code: 'GW_OUTBOX_DAMAGED',
      blocksReady: false,
      acknowledgeable: true,
      detail: describeSalvage(r, key),
      fields: {
        reason: r.reason,
        movedTo: r.movedTo ?? '',
        salvaged: t.salvaged,
        lost: t.lost,
        lostUnknown: t.lostUnknown,
        unreadable: t.unreadable,
        queuedSalvaged: r.tables.outbox.salvaged,
        queuedLost: r.tables.outbox.lost,
        queuedLostUnknown: r.tables.outbox.lostUnknown,
        queuedUnreadable: r.tables.outbox.unreadable,
      },
    });
  };
}
