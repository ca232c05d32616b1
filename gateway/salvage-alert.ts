/**
 * The alert a salvaged outbox raises (`outboxSalvaged`, `outboundSalvaged`: GW_OUTBOX_DAMAGED,
 * not blocking readiness — the gateway runs and takes input on the salvaged outbox), and the
 * acknowledgement a person gives it through `POST /alerts/:key/clear`.
 *
 * Only alerts that record a past event can be acknowledged by hand. The others describe a
 * condition that is still true (the outbox full, the disk low) and clear themselves when it ends;
 * clearing one by hand would hide it while it lasts.
 */
import type { AlertBoard } from './alerts.ts';
import { describeSalvage, salvageTotals, type SalvageReport } from './outbox/outbox-salvage.ts';

export const ACKNOWLEDGEABLE_ALERTS: ReadonlySet<string> = new Set(['outboxSalvaged', 'outboundSalvaged']);

/** The callback an outbox calls after a salvage; the board is looked up late (the outbox is built first). */
export function salvageAlert(board: () => AlertBoard, key: string): (r: SalvageReport) => void {
  return (r) => {
    const t = salvageTotals(r);
    board().raise(key, {
      code: 'GW_OUTBOX_DAMAGED', blocksReady: false, detail: describeSalvage(r, key),
      fields: { reason: r.reason, movedTo: r.movedTo ?? '', salvaged: t.salvaged, lost: t.lost, lostUnknown: t.lostUnknown, unreadable: t.unreadable, queuedSalvaged: r.tables.outbox.salvaged, queuedLost: r.tables.outbox.lost, queuedLostUnknown: r.tables.outbox.lostUnknown, queuedUnreadable: r.tables.outbox.unreadable },
    });
  };
}

export type Acknowledgement = 'cleared' | 'not-active' | 'not-acknowledgeable';

export function acknowledgeAlert(board: AlertBoard, key: string): Acknowledgement {
  if (!board.isActive(key)) return 'not-active';
  if (!ACKNOWLEDGEABLE_ALERTS.has(key)) return 'not-acknowledgeable';
  board.clear(key, `alert ${key} acknowledged by an operator`);
  return 'cleared';
}
