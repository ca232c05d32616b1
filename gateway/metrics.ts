/**
 * Counters and gauges for `/status` and `/metrics` (Prometheus text exposition format 0.0.4).
 * A count since start is a counter named `…_total`, whether kept here (`inc`) or elsewhere and read
 * at scrape time (`observedCounter`); a level that goes up and down is a gauge. Names are checked.
 * Labels are small fixed sets (adapter ids from the config, error codes from the catalogue, sink
 * kinds, message types the gateway knows — message-type-label.ts): never ids of records or people,
 * nor anything else a sender chooses. As a second line of defence a counter takes at most
 * MAX_SERIES label sets; later new ones are counted under one set whose values are all `other`.
 */
/** What a gauge or an observed counter reads at scrape time: one value, or one per label set. */
export type Reading = number | Array<{ labels: Record<string, string>; value: number }>;

export interface Metrics {
  /** Adds to a counter kept here. Counter names end in `_total` (Prometheus naming; OpenMetrics requires it). */
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Registers a gauge read at scrape time: a value that goes up and down (records queued, bytes held). */
  gauge(name: string, help: string, read: () => Reading): void;
  /**
   * Registers a counter kept elsewhere and read at scrape time: a count since start that only grows
   * (commits the outbox writer made, writer restarts). Exposed as `# TYPE … counter`, so `rate()`
   * and `increase()` handle a restart's reset; the name ends in `_total`.
   */
  observedCounter(name: string, help: string, read: () => Reading): void;
  counter(name: string, labels?: Record<string, string>): number;
  /** Sum of a counter over all label sets. */
  total(name: string): number;
  render(): string;
}

const HELP: Record<string, string> = {
  ewml_intake_total: 'Inputs handed to the pipeline, by adapter and outcome.',
  ewml_intake_rejected_total: 'Rejected inputs, by adapter and error code.',
  ewml_intake_ignored_total: 'Inputs acknowledged but not mapped (a message type the gateway does not map), by adapter and kind.',
  ewml_records_enqueued_total: 'Canonical records committed to the outbox.',
  ewml_records_delivered_total: 'Records acknowledged by the cloud and deleted from the outbox.',
  ewml_records_dead_lettered_total: 'Records or inputs moved to dead letters, by code.',
  ewml_relay_failures_total: 'Failed delivery attempts, by sink and code.',
  ewml_outbox_full_total: 'Inputs refused because the outbox was at its byte cap.',
};

/** Label sets one counter may hold; each is a series a scraper keeps forever. */
export const MAX_SERIES = 2000;

function key(labels?: Record<string, string>): string {
  if (!labels) return '';
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Prometheus and OpenMetrics name a counter `…_total` and nothing else so; a wrong name is a programming error. */
function checkName(name: string, type: 'counter' | 'gauge'): void {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not a Prometheus name`);
  if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total (Prometheus naming)`);
  if (type === 'gauge' && name.endsWith('_total')) throw new Error(`gauge ${name} must not end in _total: that suffix marks a counter`);
}

interface Observed {
  type: 'counter' | 'gauge';
  help: string;
  read: () => Reading;
}

export function createMetrics(): Metrics {
  const counters = new Map<string, Map<string, number>>();
  const observed = new Map<string, Observed>();
  const observe = (type: Observed['type']) => (name: string, help: string, read: () => Reading) => {
    checkName(name, type);
    observed.set(name, { type, help, read });
  };
  return {
    inc(name, labels, by = 1) {
      let m = counters.get(name);
      if (!m) {
        checkName(name, 'counter');
        m = new Map();
        counters.set(name, m);
      }
      let k = key(labels);
      if (!m.has(k) && m.size >= MAX_SERIES && labels) k = key(Object.fromEntries(Object.keys(labels).map((l) => [l, 'other'])));
      m.set(k, (m.get(k) ?? 0) + by);
    },
    gauge: observe('gauge'),
    observedCounter: observe('counter'),
    counter(name, labels) {
      return counters.get(name)?.get(key(labels)) ?? 0;
    },
    total(name) {
      let t = 0;
      for (const v of counters.get(name)?.values() ?? []) t += v;
      return t;
    },
    render() {
      const out: string[] = [];
      for (const [name, m] of counters) {
        out.push(`# HELP ${name} ${HELP[name] ?? name}`, `# TYPE ${name} counter`);
        for (const [k, v] of m) out.push(`${name}${k} ${v}`);
      }
      for (const [name, o] of observed) {
        let v: Reading;
        try {
          v = o.read();
        } catch {
          continue;
        }
        out.push(`# HELP ${name} ${o.help}`, `# TYPE ${name} ${o.type}`);
        if (typeof v === 'number') out.push(`${name} ${v}`);
        else for (const s of v) out.push(`${name}${key(s.labels)} ${s.value}`);
      }
      return `${out.join('\n')}\n`;
    },
  };
}
