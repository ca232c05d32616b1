/**
 * `/metrics` types: a count since start is a `counter` named `…_total` (Prometheus and OpenMetrics
 * naming), so `rate()`/`increase()` treat a gateway restart as a reset; a level is a `gauge`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../gateway/metrics.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';

/** `# TYPE` of every metric family in a text exposition, by name. */
function types(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

describe('metrics registry', () => {
  it('renders counters kept here and observed counters as counter, gauges as gauge, with their values', () => {
    const m = createMetrics();
    m.inc('ewml_intake_total', { adapter: 'hl7v2', outcome: 'accepted' }, 3);
    let commits = 7;
    m.observedCounter('ewml_test_commits_total', 'Commits since start, by writer.', () => [
      { labels: { writer: 'thread' }, value: commits },
    ]);
    m.gauge('ewml_test_queued', 'Records queued.', () => 2);
    commits = 9;
    const text = m.render();
    expect([...types(text)]).toEqual([
      ['ewml_intake_total', 'counter'],
      ['ewml_test_commits_total', 'counter'],
      ['ewml_test_queued', 'gauge'],
    ]);
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'ewml_intake_total{adapter="hl7v2",outcome="accepted"} 3',
      'ewml_test_commits_total{writer="thread"} 9',
      'ewml_test_queued 2',
    ]);
    expect(text).toContain('# HELP ewml_test_commits_total Commits since start, by writer.\n');
  });

  it('refuses a counter not named …_total and a gauge named like one, naming the metric', () => {
    const m = createMetrics();
    expect(() => m.inc('ewml_intake')).toThrow('counter ewml_intake must end in _total (Prometheus naming)');
    expect(() => m.observedCounter('ewml_outbox_commits', 'x', () => 1)).toThrow(
      'counter ewml_outbox_commits must end in _total (Prometheus naming)',
    );
    expect(() => m.gauge('ewml_queued_total', 'x', () => 1)).toThrow(
      'gauge ewml_queued_total must not end in _total: that suffix marks a counter',
    );
    expect(() => m.gauge('ewml queued', 'x', () => 1)).toThrow('metric name "ewml queued" is not a Prometheus name');
  });

  it('leaves out a metric whose reading fails, and keeps the others', () => {
    const m = createMetrics();
    m.gauge('ewml_test_broken', 'Fails to read.', () => {
      throw new Error('closed');
    });
    m.gauge('ewml_test_ok', 'Reads.', () => 1);
    expect(m.render()).toBe('# HELP ewml_test_ok Reads.\n# TYPE ewml_test_ok gauge\newml_test_ok 1\n');
  });
});

describe('/metrics of a running gateway', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({}, { logLevel: 'warn' });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('types every count since start as a counter named …_total, and only those', async () => {
    const r = await fetch(`http://127.0.0.1:${h.adminPort}/metrics`, { headers: { authorization: `Bearer ${h.gw.parts.token}` } });
    expect(r.status).toBe(200);
    const text = await r.text();
    const help = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^# HELP (\S+) (.*)$/.exec(line);
      if (m) help.set(m[1], m[2]);
    }
    const t = types(text);
    expect(t.size).toBeGreaterThan(0);
    const wrong = [...t]
      .filter(([name, type]) => {
        const sinceStart = /since start/i.test(help.get(name) ?? '');
        return (type === 'counter') !== name.endsWith('_total') || (sinceStart && type !== 'counter');
      })
      .map(([name, type]) => `${name} (${type}): ${help.get(name)}`);
    expect(wrong).toEqual([]);
    expect(t.get('ewml_outbox_commits_total')).toBe('counter');
    expect(t.get('ewml_outbox_writer_restarts_total')).toBe('counter');
  });
});
