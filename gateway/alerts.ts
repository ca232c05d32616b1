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
}

export interface AlertSpec {
  code: ErrorCode;
  detail: string;
  blocksReady?: boolean;
  /** Logged fields beside the code (counts, paths); never PHI. */
  fields?: Record<string, string | number | boolean>;
}

export interface AlertBoard {
  readonly active: Readonly<Record<string, ActiveAlert>>;
  raise(key: string, spec: AlertSpec): void;
  /** Clears the alert if active; `note` is logged at info level. */
  clear(key: string, note?: string): void;
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
      active[key] = { since: new Date(o.clock.now()).toISOString(), code: spec.code, detail: spec.detail, blocksReady: spec.blocksReady ?? false };
      o.logger.error({ code: spec.code, alert: key, ...spec.fields }, spec.detail);
      o.bus.emit('alert.raised', { key, code: spec.code, detail: spec.detail });
    },
    clear(key, note) {
      if (!active[key]) return;
      delete active[key];
      o.logger.info({ alert: key }, note ?? `alert ${key} cleared`);
      o.bus.emit('alert.cleared', { key });
    },
    isActive: (key) => key in active,
    readyBlockers: () => Object.values(active).filter((a) => a.blocksReady).map((a) => a.detail),
  };
}
