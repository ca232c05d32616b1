/**
 * Counters and gauges for `/status` and `/metrics` (Prometheus text exposition format 0.0.4).
 * Labels are small fixed sets (adapter ids from the config, error codes from the catalogue, sink
 * kinds, message types the gateway knows — message-type-label.ts): never ids of records or people,
 * nor anything else a sender chooses. As a second line of defence a counter takes at most
 * MAX_SERIES label sets; later new ones are counted under one set whose values are all `other`.
 */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Registers a gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number | Array<{ labels: Record<string, string>; value: number }>): void;
  counter(name: string, labels?: Record<string, string>): number;
  /** Sum of a counter over all label sets. */
  total(name: string): number;
  render(): string;
}

const HELP: Record<string, string> = {
  ewml_intake_total: 'Inputs handed to the pipeline, by adapter and outcome.',
  ewml_intake_rejected_total: 'Rejected inputs, by adapter and error code.',
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
  const parts = Object.keys(labels).sort().map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function createMetrics(): Metrics {
  const counters = new Map<string, Map<string, number>>();
  const gauges = new Map<string, { help: string; read: () => number | Array<{ labels: Record<string, string>; value: number }> }>();
  return {
    inc(name, labels, by = 1) {
      let m = counters.get(name);
      if (!m) counters.set(name, (m = new Map()));
      let k = key(labels);
      if (!m.has(k) && m.size >= MAX_SERIES && labels) k = key(Object.fromEntries(Object.keys(labels).map((l) => [l, 'other'])));
      m.set(k, (m.get(k) ?? 0) + by);
    },
    gauge(name, help, read) { gauges.set(name, { help, read }); },
    counter(name, labels) { return counters.get(name)?.get(key(labels)) ?? 0; },
    total(name) { let t = 0; for (const v of counters.get(name)?.values() ?? []) t += v; return t; },
    render() {
      const out: string[] = [];
      for (const [name, m] of counters) {
        out.push(`# HELP ${name} ${HELP[name] ?? name}`, `# TYPE ${name} counter`);
        for (const [k, v] of m) out.push(`${name}${k} ${v}`);
      }
      for (const [name, g] of gauges) {
        out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
        let v: ReturnType<typeof g.read>;
        try { v = g.read(); } catch { continue; }
        if (typeof v === 'number') out.push(`${name} ${v}`);
        else for (const s of v) out.push(`${name}${key(s.labels)} ${s.value}`);
      }
      return out.join('\n') + '\n';
    },
  };
}
