import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../gateway/clock.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createLogger } from '../../../gateway/logger.ts';
import { createSupervisor } from '../../../gateway/supervisor.ts';

const logger = createLogger({ level: 'silent' });
const flush = () => new Promise((r) => setImmediate(r));

function part(id: string, failures: number) {
  const p = {
    id,
    starts: 0,
    stops: 0,
    async start() {
      p.starts++;
      if (failures-- > 0) throw Object.assign(new Error('down'), { code: 'EADDRINUSE' });
    },
    async stop() {
      p.stops++;
    },
  };
  return p;
}

describe('supervisor', () => {
  it('isolates a failing start, reports it, and retries with doubling back-off on the clock', async () => {
    const clock = createManualClock();
    const bus = createEventBus();
    const failed: string[] = [];
    bus.on('component.failed', (e) => failed.push(`${e.component}:${e.code}`));
    const sup = createSupervisor({ clock, logger, bus, retryBaseMs: 1000, retryMaxMs: 3000 });
    const a = part('a', 3);
    const b = part('b', 0);
    sup.add(a);
    sup.add(b);
    await sup.startAll();
    expect([a.starts, b.starts, sup.state('a'), sup.state('b'), sup.errors.get('a')]).toEqual([1, 1, 'failed', 'running', 'EADDRINUSE']);
    clock.advance(999);
    await flush();
    expect(a.starts).toBe(1);
    clock.advance(1);
    await flush();
    expect(a.starts).toBe(2); // after 1000 ms
    clock.advance(2000);
    await flush();
    expect(a.starts).toBe(3); // after 2000 more
    clock.advance(3000);
    await flush();
    expect(a.starts).toBe(4); // capped at 3000
    expect([sup.state('a'), sup.errors.has('a')]).toEqual(['running', false]);
    expect(failed).toEqual(['a:EADDRINUSE', 'a:EADDRINUSE', 'a:EADDRINUSE']);
  });

  it('keeps a paused component stopped (no retry) until resumed, and stopAll cancels retries', async () => {
    const clock = createManualClock();
    const sup = createSupervisor({ clock, logger, bus: createEventBus(), retryBaseMs: 1000 });
    const a = part('a', 1);
    sup.add(a);
    await sup.startAll();
    expect(sup.state('a')).toBe('failed');
    await sup.pause('a');
    expect([sup.state('a'), sup.errors.has('a'), clock.pending()]).toEqual(['paused', false, 0]);
    clock.advance(10_000);
    await flush();
    expect(a.starts).toBe(1);
    await sup.resume('a');
    expect([a.starts, sup.state('a')]).toEqual([2, 'running']);
    await sup.restart('a');
    expect([a.starts, a.stops, sup.state('a')]).toEqual([3, 2, 'running']);
    const c = part('c', 5);
    sup.add(c);
    await flush();
    expect([sup.state('c'), clock.pending()]).toEqual(['failed', 1]);
    await sup.stopAll();
    expect([sup.state('a'), sup.state('c'), clock.pending(), sup.errors.size]).toEqual(['stopped', 'stopped', 0, 0]);
    await expect(sup.restart('nope')).rejects.toThrow('no component "nope"');
    expect(() => sup.add(part('a', 0))).toThrow('two components with the id "a"');
  });
});

describe('event bus owners', () => {
  it('drops every listener an owner added, and only those', () => {
    const bus = createEventBus();
    const got: string[] = [];
    bus.on('alert.cleared', (e) => got.push(`x:${e.key}`), 'x');
    bus.on('alert.cleared', (e) => got.push(`x2:${e.key}`), 'x');
    const offY = bus.on('alert.cleared', (e) => got.push(`y:${e.key}`), 'y');
    bus.on('alert.cleared', (e) => got.push(`free:${e.key}`));
    expect([bus.listenerCount('x'), bus.listenerCount('y'), bus.listenerCount()]).toEqual([2, 1, 4]);
    bus.emit('alert.cleared', { key: 'k1' });
    expect(bus.dropOwner('x')).toBe(2);
    offY();
    expect([bus.listenerCount('x'), bus.listenerCount('y'), bus.listenerCount()]).toEqual([0, 0, 1]);
    bus.emit('alert.cleared', { key: 'k2' });
    expect(got).toEqual(['x:k1', 'x2:k1', 'y:k1', 'free:k1', 'free:k2']);
    expect(bus.dropOwner('x')).toBe(0);
  });
});
