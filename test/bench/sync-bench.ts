/**
 * `node test/bench/sync-bench.ts`: the sync scheduler measured on a simulated practice.
 *
 * A PMS database (a real SQLite file) whose appointment rows are inserted and updated on a clinic's
 * rhythm — Mon–Fri 08:00–18:30 with a lunch dip, Saturday 09:00–12:00, closed Sunday; each visit a
 * burst of row changes; a few online bookings in the evening and early morning; now and then an
 * evening of back-office edits — over 14 simulated days on the manual clock. The real database
 * source (createSqlSource, its real SQLite driver and keyset queries) polls it; its intake context
 * is a recorder (not the gateway's pipeline and outbox: 14 days through a whole gateway would be
 * slow, and the delay measured here is the schedule's, which the outbox's commit adds the same to
 * both runs): a change's delay is from the moment the PMS wrote it to the commit of the page that
 * carried it. Run twice on the same simulation, same seed, same process: once with the fixed
 * 60 s schedule, once with the sync agent (its real runner and poll-schedule registry) setting the
 * waits. Prints polls per day, the p95 delay in clinic hours and outside, the ratio of polls, and the
 * agent's CPU per decision and memory. Bounded: at most MAX_POLLS polls and MAX_SECONDS a run.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pino from 'pino';
import type { IntakeContext, PageIntakeResult, RawPage } from '../../adapters/contracts.ts';
import { createSqlSource, type SqlStreamConfig } from '../../adapters/sql/sql-source.ts';
import { STATE_FILE } from '../../agents/sync/state-file.ts';
import { createManualClock, type ManualClock } from '../../gateway/clock.ts';
import { startSyncRig, MONDAY } from '../agents/sync/sync-rig.ts';

const MIN = 60_000;
const H = 3_600_000;
const DAY = 24 * H;
const DAYS = Number(process.env.SYNC_BENCH_DAYS ?? 14);
const SEED = Number(process.env.SYNC_BENCH_SEED ?? 17);
const FIXED_MS = 60_000;
const MAX_POLLS = 100_000;
const MAX_SECONDS = 300;
/** The agent's bounds in the two agent runs: as fast as the fixed schedule in clinic hours, and a little faster; 30 min at most. */
const AGENTS = [
  { name: 'agent 60 s', sync: { minIntervalMs: 60_000, maxIntervalMs: 30 * MIN, learningDays: 14 } },
  { name: 'agent 55 s', sync: { minIntervalMs: 55_000, maxIntervalMs: 30 * MIN, learningDays: 14 } },
];

const log = (s: string) => process.stdout.write(`   ${s}\n`);
const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** mulberry32: a small seeded generator, so both runs see the same practice. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Open hours (UTC here: the practice's zone is UTC in this run), as [from, to) hours of the day; 0 Sunday … 6 Saturday. */
function openAt(t: number): boolean {
  const d = new Date(t);
  const day = d.getUTCDay();
  const h = d.getUTCHours() + d.getUTCMinutes() / 60;
  if (day >= 1 && day <= 5) return h >= 8 && h < 18.5;
  if (day === 6) return h >= 9 && h < 12;
  return false;
}

interface Change {
  t: number;
  /** The appointment row written (inserted the first time, updated after). */
  id: number;
}

/** The practice's changes over the run, in time order. */
function simulate(seed: number): Change[] {
  const r = rng(seed);
  const out: Change[] = [];
  const exp = (ratePerHour: number) => (-Math.log(1 - r()) / ratePerHour) * H;
  let rows = 0;
  const visit = (t: number) => {
    // one visit: booked/arrived, exam, Rx, charge, payment — 3 to 8 row changes over ~25 min
    const n = 3 + Math.floor(r() * 6);
    const id = ++rows;
    out.push({ t, id });
    let at = t;
    for (let i = 1; i < n; i++) {
      at += (0.5 + r() * 6) * MIN;
      out.push({ t: Math.round(at), id });
    }
  };
  for (let d = 0; d < DAYS; d++) {
    const day0 = MONDAY + d * DAY;
    const weekday = new Date(day0).getUTCDay();
    // visits: ~4 an hour while open, a quarter of that over lunch (12:30–13:30)
    for (let t = day0; t < day0 + DAY; ) {
      const lunch = weekday >= 1 && weekday <= 5 && t >= day0 + 12.5 * H && t < day0 + 13.5 * H;
      t += exp(lunch ? 1 : 4);
      if (t < day0 + DAY && openAt(t)) visit(Math.round(t));
    }
    // online bookings: ~3 a day, evenings 18:30–23:00 and mornings 06:00–08:00, every day
    for (let k = 0; k < 3; k++) {
      const evening = r() < 0.7;
      const t = day0 + (evening ? 18.5 * H + r() * 4.5 * H : 6 * H + r() * 2 * H);
      out.push({ t: Math.round(t), id: ++rows });
    }
    // an evening of back-office edits on about one day in three: 10–30 changes over 20 min
    if (r() < 0.33) {
      const start = day0 + 19 * H + r() * 2 * H;
      const n = 10 + Math.floor(r() * 21);
      for (let i = 0; i < n; i++) out.push({ t: Math.round(start + r() * 20 * MIN), id: 1 + Math.floor(r() * Math.max(1, rows)) });
    }
  }
  out.sort((a, b) => a.t - b.t);
  return out;
}

const stream: SqlStreamConfig = {
  name: 'appt',
  table: 'appt',
  key: 'id',
  watermark: { column: 'seq', kind: 'rowversion' },
  records: [
    {
      type: 'patient',
      patient: { system: 'SIM', id: 'tag' },
      fields: { 'identifiers[0].system': { value: 'SIM' }, 'identifiers[0].value': 'tag' },
    },
  ] as SqlStreamConfig['records'],
};

interface RunResult {
  polls: number;
  /** Polls in the second week (what was learned in the first in use). */
  week2Polls: number;
  clinic: number[];
  outside: number[];
  week2Clinic: number[];
  undelivered: number;
  wallMs: number;
  agent?: {
    cpuMicrosPerDecision: number;
    maxCpuMicros: number;
    decisions: number;
    saves: number;
    cpuMicrosPerSave: number;
    stateBytes: number;
    /** Heap the agent and its runner held at the end (measured with --expose-gc only). */
    heapBytes?: number;
    history: string[];
  };
}

const p95 = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)];
};

async function run(mode: 'fixed' | 'agent', changes: readonly Change[], sync: Record<string, unknown> = {}): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `ewml-sync-bench-${mode}-`));
  const file = join(dir, 'pms.db');
  const db = new DatabaseSync(file);
  db.exec(
    'PRAGMA journal_mode = WAL; CREATE TABLE appt (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, v INTEGER NOT NULL, tag TEXT NOT NULL)',
  );
  db.exec('CREATE INDEX appt_seq ON appt (seq, id)');
  const upsert = db.prepare(
    'INSERT INTO appt (id, seq, v, tag) VALUES (?, ?, 0, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, v = v + 1',
  );
  let rig = mode === 'agent' ? await startSyncRig(join(dir, 'data'), sync, MONDAY) : undefined;
  const clock: ManualClock = rig?.clock ?? createManualClock(MONDAY);
  const end = MONDAY + DAYS * DAY;
  /** Per row, the times of its changes not yet delivered. */
  const waiting = new Map<number, number[]>();
  const clinic: number[] = [];
  const outside: number[] = [];
  const cursors = new Map<string, string>();
  const clinicByDay: number[][] = [];
  const week2Clinic: number[] = [];
  const ctx: IntakeContext = {
    intake: async () => ({ status: 'accepted', recordIds: [] }),
    async intakePage(page: RawPage): Promise<PageIntakeResult> {
      const at = clock.now();
      for (const row of page.rows) {
        const id = Number(row.data.id);
        for (const t of waiting.get(id) ?? []) {
          (openAt(t) ? clinic : outside).push(at - t);
          if (openAt(t)) (clinicByDay[Math.floor((t - MONDAY) / DAY)] ??= []).push(at - t);
          if (openAt(t) && t >= MONDAY + 7 * DAY) week2Clinic.push(at - t);
        }
        waiting.delete(id);
      }
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { status: 'accepted', written: page.rows.length, unchanged: 0, deadLettered: 0 };
    },
    cursor: (k) => cursors.get(k),
    knownRows: () => [],
    logger: pino({ level: 'silent' }),
    ...(rig ? { pollSchedule: rig.schedules.forSource('pms') } : {}),
  };
  const source = createSqlSource({
    id: 'pms',
    system: 'SIM',
    connection: { engine: 'sqlite', file },
    streams: [stream],
    pageSize: 500,
    pollIntervalMs: FIXED_MS,
    overlapSeconds: 0,
    keysetIntervalMinutes: 60,
    realtime: 'off',
    channel: 'unused',
    clock,
  });
  const asleep = async () => {
    for (let i = 0; clock.pending() !== 1; i++) {
      if (i > 100_000) throw new Error('the poller did not go back to sleep');
      await new Promise((r) => setImmediate(r));
    }
  };
  const t0 = performance.now();
  await source.start(ctx);
  let polls = 1;
  const perDay: number[] = [];
  let seq = 0;
  let ci = 0;
  for (;;) {
    await asleep();
    const due = clock.nextDue()!;
    if (due >= end) break;
    for (; ci < changes.length && changes[ci].t <= due; ci++) {
      const c = changes[ci];
      clock.set(c.t);
      upsert.run(c.id, ++seq, `SIM-${c.id}`);
      waiting.set(c.id, [...(waiting.get(c.id) ?? []), c.t]);
    }
    clock.set(due);
    polls++;
    perDay[Math.floor((due - MONDAY) / DAY)] = (perDay[Math.floor((due - MONDAY) / DAY)] ?? 0) + 1;
    if (polls > MAX_POLLS || performance.now() - t0 > MAX_SECONDS * 1000)
      throw new Error(`run ${mode} out of bounds: ${polls} polls, ${Math.round(performance.now() - t0)} ms`);
  }
  await source.stop();
  if (process.env.SYNC_BENCH_DEBUG) {
    log(`${mode} polls by day: ${perDay.join(' ')}`);
    log(`${mode} clinic p95 by day (s): ${clinicByDay.map((d) => Math.round(p95(d) / 1000)).join(' ')}`);
  }
  const wallMs = performance.now() - t0;
  let agent: RunResult['agent'];
  if (rig) {
    const report = rig.agent.report() as {
      cost: { cpuMicrosPerDecision: number; maxCpuMicros: number; decisions: number; saves: number; cpuMicrosPerSave: number };
      history: Array<{ at: string; change: string; reason: string }>;
    };
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const held = process.memoryUsage().heapUsed;
    await rig.stop();
    rig = undefined;
    ctx.pollSchedule = undefined;
    gc?.();
    const heapBytes = gc ? held - process.memoryUsage().heapUsed : undefined;
    const stateFile = join(dir, 'data', 'agents', 'sync', STATE_FILE);
    agent = {
      ...report.cost,
      stateBytes: statSync(stateFile).size,
      ...(heapBytes !== undefined ? { heapBytes } : {}),
      history: report.history.filter((h) => h.change === 'plan').map((h) => `${h.at.slice(0, 16)} ${h.reason}`),
    };
    JSON.parse(readFileSync(stateFile, 'utf8'));
  }
  db.close();
  const undelivered = [...waiting.values()].reduce((n, ts) => n + ts.length, 0);
  const week2Polls = perDay.slice(7, 14).reduce((a, b) => a + b, 0);
  return { polls, week2Polls, clinic, outside, week2Clinic, undelivered, wallMs, ...(agent ? { agent } : {}) };
}

async function main(): Promise<void> {
  const changes = simulate(SEED);
  const clinicChanges = changes.filter((c) => openAt(c.t)).length;
  log(
    `simulated practice: ${DAYS} days from Mon ${new Date(MONDAY).toISOString().slice(0, 10)}, seed ${SEED}: ${fmt(changes.length)} row changes (${fmt(clinicChanges)} in clinic hours, ${fmt(changes.length - clinicChanges)} outside)`,
  );
  const fixed = await run('fixed', changes);
  const s = (ms: number) => `${fmt(ms / 1000, 1)} s`;
  const line = (name: string, r: RunResult) =>
    log(
      `${name.padEnd(10)}: ${fmt(r.polls / DAYS, 0).padStart(5)} polls/day (week 2: ${fmt(r.week2Polls / 7, 0)}); p95 delay clinic hours ${s(p95(r.clinic))} (week 2: ${s(p95(r.week2Clinic))}; ${fmt(r.clinic.length)} changes), outside ${s(p95(r.outside))} (${fmt(r.outside.length)}); ${r.undelivered} not delivered by the end; ${fmt(r.wallMs / 1000, 1)} s to run`,
    );
  line('fixed 60 s', fixed);
  let met = false;
  for (const v of AGENTS) {
    const agent = await run('agent', changes, v.sync);
    line(v.name, agent);
    const fewer = 1 - agent.polls / fixed.polls;
    const fewer2 = 1 - agent.week2Polls / fixed.week2Polls;
    const ratio = p95(agent.clinic) / p95(fixed.clinic);
    const ratio2 = p95(agent.week2Clinic) / p95(fixed.week2Clinic);
    log(
      `${''.padEnd(10)}  polls ${fmt(fewer * 100, 1)}% fewer (week 2: ${fmt(fewer2 * 100, 1)}%; goal ≥ 60%); clinic-hours p95 agent/fixed ${fmt(ratio, 3)} (week 2: ${fmt(ratio2, 3)}; goal ≤ 1)`,
    );
    const a = agent.agent!;
    log(
      `${''.padEnd(10)}  cost: ${fmt(a.decisions)} decisions, CPU ${fmt(a.cpuMicrosPerDecision)} µs a decision (max ${fmt(a.maxCpuMicros)} µs); ${fmt(a.saves)} state writes, ${fmt(a.cpuMicrosPerSave)} µs CPU each; state file ${fmt(a.stateBytes)} bytes; heap held ${a.heapBytes === undefined ? 'not measured (run with --expose-gc)' : `${fmt(a.heapBytes / 1024, 0)} KiB`}`,
    );
    if (v === AGENTS[0]) for (const h of a.history.slice(-1)) log(`${''.padEnd(10)}  last plan: ${h}`);
    met ||= fewer >= 0.6 && ratio <= 1;
  }
  log(
    met
      ? 'goal met (≥ 60% fewer polls over the 14 days, clinic-hours p95 no worse)'
      : 'goal NOT met over the 14 days (see the figures above)',
  );
  process.exitCode = met ? 0 : 1;
}

await main();
