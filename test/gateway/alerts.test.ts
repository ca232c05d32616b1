import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAlertBoard } from '../../gateway/alerts.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { createEventBus } from '../../gateway/event-bus.ts';

describe('alert board', () => {
  const board = () => createAlertBoard({ clock: createManualClock(), logger: pino({ level: 'silent' }), bus: createEventBus() });

  it('lets a person clear an alert that records a past event, never one whose condition clears it', () => {
    const b = board();
    b.raise('outboxSalvaged', { code: 'GW_OUTBOX_DAMAGED', detail: 'salvaged', acknowledgeable: true });
    b.raise('diskLow', { code: 'GW_DISK_LOW', detail: 'disk below its reserve', blocksReady: true });
    expect(b.acknowledge('diskLow')).toBe('not-acknowledgeable');
    expect(b.readyBlockers()).toEqual(['disk below its reserve']);
    expect(b.acknowledge('outboxSalvaged')).toBe('cleared');
    expect(b.acknowledge('outboxSalvaged')).toBe('not-active');
    expect(Object.keys(b.active)).toEqual(['diskLow']);
  });
});
