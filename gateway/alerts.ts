/**
 * Alerts: conditions a person should know about, shown in `/status` (`alerts`), logged once when
 * raised and once when cleared, and announced on the bus (`alert.raised`, `alert.cleared`) for the
 * agents and the cloud. An alert that `blocksReady` makes `/ready` false with its detail as the
 * reason (the outbox is full, the disk is below its reserve, the outbox was salvaged from damage…).
 *
 * Keys are stable names (`outboxFull`, `diskLow`, `outboxSalvaged`…); raising an active alert again
 * updates its detail without logging again, so a condition that persists does not flood the log.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { ErrorCode } from './errors.ts';
import type { EventBus } from './event-bus.ts';

export interface ActiveAlert {
  /** When the condition was first seen (ISO 8601). */
  since: string;
  code: ErrorCode;
  /** What happened and what to do: ids and counts only, never PHI. */
  detail: string;
  /** While active, `/ready` is false with `detail` as the reason. */
  blocksReady: boolean;
  /** It records a past event (an outbox salvaged, rows quarantined), so a person clears it; otherwise it clears itself when its condition ends. */
  acknowledgeable: boolean;
}

export interface AlertSpec {
  code: ErrorCode;
  detail: string;
  blocksReady?: boolean;
  /** See ActiveAlert.acknowledgeable (default false: the condition clears the alert). */
  acknowledgeable?: boolean;
  /** Logged fields beside the code (counts, paths); never PHI. */
  fields?: Record<string, string | number | boolean>;
}

export type Acknowledgement = 'cleared' | 'not-active' | 'not-acknowledgeable';

export interface AlertBoard {
  readonly active: Readonly<Record<string, ActiveAlert>>;
  raise(key: string, spec: AlertSpec): void;
  /** Clears the alert if active; `note` is logged at info level. */
  clear(key: string, note?: string): void;
  /**
   * A person acknowledges an alert (`POST /alerts/:key/clear`): only one that records a past event;
   * clearing a condition still true by hand would hide it while it lasts.
   */
  acknowledge(key: string): Acknowledgement;
  isActive(key: string): boolean;
  /** Details of the active alerts that block readiness. */
  readyBlockers(): string[];
}

export function createAlertBoard(o: { clock: Clock; logger: Logger; bus: EventBus }): AlertBoard {
  const active: Record<string, ActiveAlert> = {};
  return {
    active,
    raise(key, spec) {
      const existing = active[key];
      if (existing) {
        existing.detail = spec.detail;
        return;
      }
      active[key] = {
        since: new Date(o.clock.now()).toISOString(),
        code: spec.code,
        detail: spec.detail,
        blocksReady: spec.blocksReady ?? false,
        acknowledgeable: spec.acknowledgeable ?? false,
      };
      o.logger.error({ code: spec.code, alert: key, ...spec.fields }, spec.detail);
      o.bus.emit('alert.raised', { key, code: spec.code, detail: spec.detail });
    },
    clear(key, note) {
      if (!active[key]) return;
      delete active[key];
      o.logger.info({ alert: key }, note ?? `alert ${key} cleared`);
      o.bus.emit('alert.cleared', { key });
    },
    acknowledge(key) {
      const a = active[key];
      if (!a) return 'not-active';
      if (!a.acknowledgeable) return 'not-acknowledgeable';
      this.clear(key, `alert ${key} acknowledged by an operator`);
      return 'cleared';
    },
    isActive: (key) => key in active,
    readyBlockers: () =>
      Object.values(active)
        .filter((a) => a.blocksReady)
        .map((a) => a.detail),
  };
}
