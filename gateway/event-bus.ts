/**
 * The in-process event bus: components report what happened, agents and the admin API listen.
 * Typed by event name; listeners must not throw (a throwing listener is logged and isolated).
 */
export interface GatewayEvents {
  'intake.accepted': { adapter: string; records: number };
  'intake.duplicate': { adapter: string };
  'intake.rejected': { adapter: string; code: string };
  'intake.ignored': { adapter: string; messageType: string };
  'outbox.full': { bytes: number; maxBytes: number };
  'outbox.drained': { bytes: number };
  'relay.delivered': { sink: string; records: number };
  'relay.failed': { sink: string; code: string; retryInMs: number };
  'relay.deadLettered': { sink: string; records: number; code: string };
  'sink.connected': { sink: string };
  'sink.disconnected': { sink: string; reason: string };
  'component.failed': { component: string; code: string };
  /** An alert was raised (see alerts.ts); `detail` says what happened and what to do. */
  'alert.raised': { key: string; code: string; detail: string };
  'alert.cleared': { key: string };
  /** A cloud command's outcome: accepted/refused when it arrives, done/failed when carried out. */
  'command.outcome': {
    commandId: string;
    status: 'accepted' | 'refused' | 'done' | 'failed';
    detail: string;
    /** What a done command left, PHI-free (a FHIR write-back: `resource` `<Type>/<id>`, `versionId`, `outcome`). */
    result?: Record<string, string>;
    /** A failed command's error code, where it has one (gateway/errors.ts): what the cloud decides on, not `detail`. */
    code?: string;
  };
  /** What the updater decided or did (updater/update-runner.ts): the MQTT sink reports it on up/status. PHI-free. */
  'update.outcome': { outcome: string; from: string; to?: string; reason?: string; commandId?: string };
  /** An agent found something a person or the cloud should know (agents/contract.ts). PHI-free. */
  'agent.finding': { agent: string; code: string; severity: 'info' | 'warning' | 'error'; summary: string; subject?: string };
  /** The cause of an agent's finding is gone. */
  'agent.finding.cleared': { agent: string; code: string; subject?: string };
  /** An agent proposes a config change; nothing is applied until a person (or the cloud) accepts it. */
  'agent.proposal': { agent: string; id: string; path: string; value: unknown; reason: string };
  /** A component was started, stopped, paused or resumed through the control surface (agents, admin API). */
  'component.control': { component: string; action: 'restart' | 'pause' | 'resume'; by: string; outcome: 'done' | 'failed'; code?: string };
}
export type GatewayEventName = keyof GatewayEvents;
type Listener<K extends GatewayEventName> = (payload: GatewayEvents[K]) => void;

export interface EventBus {
  emit<K extends GatewayEventName>(name: K, payload: GatewayEvents[K]): void;
  /**
   * Returns the function that removes the listener. `owner` (a component's or agent's id) lets
   * `dropOwner` remove every listener that owner added, so a component that stops leaves none behind.
   */
  on<K extends GatewayEventName>(name: K, listener: Listener<K>, owner?: string): () => void;
  /** Removes every listener added under `owner`; returns how many. */
  dropOwner(owner: string): number;
  /** Listeners currently added under `owner` (for tests and status). */
  listenerCount(owner?: string): number;
}

/** The part of the bus one owner sees: its listeners are all dropped with `dropOwner(owner)`. */
export interface OwnedBus {
  emit: EventBus['emit'];
  on<K extends GatewayEventName>(name: K, listener: Listener<K>): () => void;
}

export function ownedBus(bus: EventBus, owner: string): OwnedBus {
  return { emit: (name, payload) => bus.emit(name, payload), on: (name, listener) => bus.on(name, listener, owner) };
}

export function createEventBus(onListenerError: (err: unknown, name: string) => void = () => {}): EventBus {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const owned = new Map<string, Set<() => void>>();
  return {
    emit(name, payload) {
      const set = listeners.get(name);
      if (!set) return;
      for (const l of set) {
        try {
          l(payload);
        } catch (err) {
          onListenerError(err, name);
        }
      }
    },
    on(name, listener, owner) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      // a wrapper per registration: the same function added twice is two listeners, removed one by one
      const l = (p: unknown) => listener(p as GatewayEvents[typeof name]);
      set.add(l);
      let offs: Set<() => void> | undefined;
      if (owner !== undefined) {
        offs = owned.get(owner);
        if (!offs) owned.set(owner, (offs = new Set()));
      }
      const off = () => {
        set.delete(l);
        offs?.delete(off);
      };
      offs?.add(off);
      return off;
    },
    dropOwner(owner) {
      const offs = owned.get(owner);
      if (!offs) return 0;
      const n = offs.size;
      for (const off of [...offs]) off();
      owned.delete(owner);
      return n;
    },
    listenerCount(owner) {
      if (owner !== undefined) return owned.get(owner)?.size ?? 0;
      let n = 0;
      for (const set of listeners.values()) n += set.size;
      return n;
    },
  };
}
