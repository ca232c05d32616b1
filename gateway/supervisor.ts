/**
 * Supervision of the gateway's long-running parts (source adapters, the admin API, agents): each is
 * started in turn and isolated — one that fails to start is reported (`component.failed`, its code
 * kept for status) and retried with back-off while the others run on. The control surface agents and
 * the admin API use (restart one, pause one, resume it) goes through here, so a paused component is
 * not restarted behind the pause's back.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.ts';
import type { EventBus } from './event-bus.ts';

export interface Supervised {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type SupervisedState = 'stopped' | 'starting' | 'running' | 'failed' | 'paused';

export interface Supervisor {
  /** Adds a component; started by `startAll`, or at once when the supervisor already runs (the promise settles when that first start did; a failure is retried, never thrown). */
  add(c: Supervised, opts?: { paused?: boolean }): Promise<void>;
  /** Starts every component in the order added; failures are retried, never thrown. */
  startAll(): Promise<void>;
  /** Stops every component in reverse order and cancels pending retries. */
  stopAll(): Promise<void>;
  /** Stops and starts one component (clears a pause). Rejects when the id is unknown; a failed start is retried as usual. */
  restart(id: string): Promise<void>;
  /** Stops one component and keeps it stopped (no retries) until `resume`. */
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Stops one component and forgets it (a source a config reload removes or re-creates). */
  remove(id: string): Promise<void>;
  state(id: string): SupervisedState | undefined;
  /** Components that failed to start, with the error code of the last attempt (status, `/ready`). */
  readonly errors: ReadonlyMap<string, string>;
  ids(): string[];
}

export class UnknownComponentError extends Error {
  constructor(id: string) {
    super(`no component "${id}"`);
    this.name = 'UnknownComponentError';
  }
}

export function createSupervisor(o: {
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  retryBaseMs?: number;
  retryMaxMs?: number;
  label?: (id: string) => string;
}): Supervisor {
  const base = o.retryBaseMs ?? 2000;
  const max = o.retryMaxMs ?? 60_000;
  const entries = new Map<
    string,
    { c: Supervised; state: SupervisedState; attempt: number; timer?: TimerHandle; gen: number; stopping?: Promise<void> }
  >();
  const errors = new Map<string, string>();
  let running = false;

  const entry = (id: string) => {
    const e = entries.get(id);
    if (!e) throw new UnknownComponentError(id);
    return e;
  };

  async function startOne(id: string): Promise<void> {
    const e = entry(id);
    if (e.state === 'running' || e.state === 'starting' || e.state === 'paused') return;
    o.clock.clearTimeout(e.timer);
    e.timer = undefined;
    const gen = ++e.gen;
    e.state = 'starting';
    const log = o.logger.child({ component: o.label?.(id) ?? id });
    try {
      await e.c.start();
      if (gen !== e.gen) return; // paused or stopped meanwhile: that caller stops it
      e.state = 'running';
      e.attempt = 0;
      errors.delete(id);
    } catch (err) {
      if (gen !== e.gen) return;
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      errors.set(id, code);
      e.state = 'failed';
      const delay = Math.min(max, base * 2 ** Math.min(e.attempt, 5));
      e.attempt++;
      log.error(
        { code: 'GW_START_FAILED', cause: code, retryInMs: delay },
        `${o.label?.(id) ?? id} failed to start; the rest of the gateway runs on, and it is tried again`,
      );
      o.bus.emit('component.failed', { component: o.label?.(id) ?? id, code });
      if (running)
        e.timer = o.clock.setTimeout(
          () => {
            e.timer = undefined;
            if (running && e.state === 'failed') void startOne(id);
          },
          delay,
          { unref: true },
        );
    }
  }

  async function stopOne(id: string, next: SupervisedState): Promise<void> {
    const e = entry(id);
    o.clock.clearTimeout(e.timer);
    e.timer = undefined;
    e.gen++;
    const was = e.state;
    e.state = next;
    // a component that failed to start may still hold what it opened before failing: stop it too
    if (was !== 'stopped' && was !== 'paused') {
      e.stopping = e.c.stop().catch((err: unknown) => o.logger.error({ err, component: id }, 'stop failed'));
    }
    // a stop already under way (a pause, then a remove) is waited for too: what replaces the
    // component must not start while it still holds its port or files
    await e.stopping;
  }

  return {
    add(c, opts) {
      if (entries.has(c.id)) throw new Error(`two components with the id "${c.id}"`);
      entries.set(c.id, { c, state: opts?.paused ? 'paused' : 'stopped', attempt: 0, gen: 0 });
      return running ? startOne(c.id) : Promise.resolve();
    },
    async startAll() {
      running = true;
      for (const id of [...entries.keys()]) {
        // a stopAll while this loop runs: the rest stay stopped
        if (!running) break;
        await startOne(id);
      }
    },
    async stopAll() {
      running = false;
      for (const id of [...entries.keys()].reverse()) await stopOne(id, 'stopped');
      errors.clear();
    },
    async restart(id) {
      await stopOne(id, 'stopped');
      entry(id).attempt = 0;
      if (running) await startOne(id);
    },
    async pause(id) {
      if (entry(id).state === 'paused') return;
      await stopOne(id, 'paused');
      errors.delete(id);
    },
    async resume(id) {
      const e = entry(id);
      if (e.state !== 'paused') return;
      e.state = 'stopped';
      e.attempt = 0;
      if (running) await startOne(id);
    },
    async remove(id) {
      await stopOne(id, 'stopped');
      entries.delete(id);
      errors.delete(id);
    },
    state: (id) => entries.get(id)?.state,
    errors,
    ids: () => [...entries.keys()],
  };
}
