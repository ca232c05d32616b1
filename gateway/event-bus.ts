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
  'command.outcome': { commandId: string; status: 'accepted' | 'refused' | 'done' | 'failed'; detail: string };
}
export type GatewayEventName = keyof GatewayEvents;
type Listener<K extends GatewayEventName> = (payload: GatewayEvents[K]) => void;

export interface EventBus {
  emit<K extends GatewayEventName>(name: K, payload: GatewayEvents[K]): void;
  /** Returns the function that removes the listener. */
  on<K extends GatewayEventName>(name: K, listener: Listener<K>): () => void;
}

export function createEventBus(onListenerError: (err: unknown, name: string) => void = () => {}): EventBus {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  return {
    emit(name, payload) {
      const set = listeners.get(name);
      if (!set) return;
      for (const l of set) {
        try { l(payload); } catch (err) { onListenerError(err, name); }
      }
    },
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      const l = listener as (p: unknown) => void;
      set.add(l);
      return () => { set.delete(l); };
    },
  };
}
