/**
 * A PMS database as a source: streams (one per table or query) read incrementally by keyset pages
 * in (watermark, key) order. Each page's records and the cursor after it commit in one outbox
 * transaction, so a crash repeats a page, never skips one (ARCHITECTURE rule 1).
 *
 * - First load: the same keyset walk from the start, in the background, with a progress figure
 *   (rows done, rows total, rate, time left) that survives a restart (it lives in the cursor).
 * - Late commits and clock skew: every cycle starts again from the position the stream had
 *   `overlapSeconds` ago (by the gateway's clock, so the database's clock never matters); rows
 *   re-read unchanged hash the same and write nothing, rows changed since are new versions.
 * - Deletes: a tombstone stream (the PMS's own deletion/audit table) or a periodic key-set
 *   comparison of the keys we hold against the keys the source still has.
 * - Real time: on PostgreSQL with the consented triggers installed (realtime.ts), a NOTIFY wakes
 *   the poller at once; the watermark stays the source of truth either way.
 * - The outbox at its cap pauses the reads (the page is retried, the cursor stays).
 */
import { toInstant, type RecordMapping } from '../canonical/field-mapping.ts';
import { recordsFromRow } from '../canonical/map-row.ts';
import { deterministicId } from '../canonical/record-id.ts';
import { rowHash } from '../canonical/row-hash.ts';
import { pollWait, type AdapterHealth, type IntakeContext, type MapResult, type RawRow, type SourceAdapter } from '../contracts.ts';
import { openSqlDriver, type SqlConnectionOptions, type SqlDriver, type SqlRow } from './sql-driver.ts';
import {
  countQuery,
  decodeValue,
  encodeValue,
  keysQuery,
  pageQuery,
  shapeQuery,
  type Position,
  type StreamSource,
  type WatermarkKind,
} from './sql-query.ts';
import { columnsOf } from '../canonical/field-mapping.ts';
import { systemClock, type Clock } from '../../gateway/clock.ts';

export interface SqlStreamConfig {
  name: string;
  table?: string;
  query?: string;
  /** The primary key column (the tie-breaker of the watermark, and the row's identity). */
  key: string;
  /** Default: the key itself (an increasing key). */
  watermark?: { column: string; kind: WatermarkKind };
  /** What each row becomes; empty for a tombstone stream. */
  records: RecordMapping[];
  /** `keyset`: find deleted rows by comparing keys every `keysetIntervalMinutes`. */
  deletes?: 'none' | 'keyset';
  /** This stream is the PMS's deletion log: each row names a deleted row of another stream. */
  tombstone?: { keyColumn: string; tableColumn?: string; targets: Record<string, string> };
}

export interface SqlSourceOptions {
  id: string;
  /** `source.system` of the records, e.g. `PRACTICE-STUDIO`. */
  system: string;
  connection: SqlConnectionOptions;
  streams: SqlStreamConfig[];
  pageSize: number;
  pollIntervalMs: number;
  overlapSeconds: number;
  keysetIntervalMinutes: number;
  /** `listen`: PostgreSQL LISTEN on `channel` (triggers installed with consent) wakes the poller. */
  realtime: 'off' | 'listen';
  channel: string;
  /** The gateway's time (default: the clock's). */
  now?: () => number;
  /** Where the poll waits and back-offs take their timers (default systemClock), so tests move them by hand. */
  clock?: Clock;
  /** IANA zone of timestamps the database stores without an offset. */
  timezone?: string;
  /** For tests: a driver instead of a connection. */
  driver?: SqlDriver;
}

/** What the cursor of a stream holds (JSON in the outbox's cursor table). */
interface StreamCursor {
  phase: 'initial' | 'incremental';
  /** Last row read: (watermark, key), encoded. */
  pos: [unknown, unknown] | null;
  /** Positions seen at gateway times: a cycle starts from the newest one at least overlap old. */
  marks: Array<[number, unknown, unknown]>;
  done: number;
  total: number | null;
  keysetAt?: number;
}

export interface StreamProgress {
  phase: 'initial' | 'incremental';
  rowsDone: number;
  rowsTotal: number | null;
  rowsPerSecond: number;
  secondsLeft: number | null;
  lastPollAt: number | null;
  lastChangeAt: number | null;
}

const streamSource = (s: SqlStreamConfig): StreamSource => ({
  table: s.table,
  query: s.query,
  key: s.key,
  watermark: s.watermark ?? { column: s.key, kind: 'key' },
});

const SORTS: Record<string, RegExp> = {
  postgres: /\bSort\b/,
  mariadb: /filesort/i,
  sqlite: /TEMP B-TREE FOR ORDER BY/i,
  mssql: /\bSort\b/,
};
/** On a small table a sort is the planner's cheapest choice and harmless; on a large one each page reads everything. */
const SORT_MATTERS_ROWS = 10_000;

export interface StreamInspection {
  /** One row of the stream (none: the table is empty, columns are checked when rows arrive). */
  sample?: SqlRow;
  missing: string[];
  plan: string[];
  /** Counted when asked, or when the plan sorts. */
  rows?: number;
  /** Set when each page would sort a large table: the index to create. */
  needsIndex?: string;
}

/** A stream against the live database: a row, the columns its mapping needs that are not there, the page query's plan. Throws when the query does not run. */
export async function inspectStream(d: SqlDriver, s: SqlStreamConfig, pageSize: number, o: { count: boolean }): Promise<StreamInspection> {
  const src = streamSource(s);
  const sample = (await d.query(shapeQuery(d, src)))[0];
  const count = async () => Number(Object.values((await d.query(countQuery(d, src)))[0])[0]);
  const rows = o.count ? await count() : undefined;
  if (!sample) return { missing: [], plan: [], rows };
  const missing = streamColumns(s).filter((c) => !(c in sample));
  if (missing.length) return { sample, missing, plan: [], rows };
  const q = pageQuery(d, src, [sample[src.watermark.column], sample[src.key]], pageSize);
  const plan = await d.explain(q.sql, q.params);
  if (!SORTS[d.engine]?.test(plan.join('\n'))) return { sample, missing, plan, rows };
  const n = rows ?? (await count());
  return {
    sample,
    missing,
    plan,
    rows: n,
    needsIndex: n >= SORT_MATTERS_ROWS ? (src.watermark.kind === 'key' ? src.key : `${src.watermark.column}, ${src.key}`) : undefined,
  };
}

/** Every column a stream's key, watermark, tombstone and mappings read. */
export function streamColumns(s: SqlStreamConfig): string[] {
  const src = streamSource(s);
  const need = new Set([
    src.key,
    src.watermark.column,
    ...(s.tombstone ? [s.tombstone.keyColumn, ...(s.tombstone.tableColumn ? [s.tombstone.tableColumn] : [])] : []),
  ]);
  for (const m of s.records) {
    for (const spec of Object.values(m.fields)) for (const c of columnsOf(spec)) need.add(c);
    if (m.patient) for (const c of columnsOf(m.patient.id)) need.add(c);
    if (m.occurredAt) for (const c of columnsOf(m.occurredAt)) need.add(c);
    if (m.when) need.add(m.when.column);
  }
  return [...need];
}

/**
 * A row's key as text (binary as `x:hex`): the same in a table and in the deletion log that names
 * it, whichever integer type each declares. Bound back as text, the engines convert it to the
 * column's type.
 */
export function pkOf(v: unknown): string {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `x:${Buffer.from(v).toString('hex')}`;
  return String(v);
}
const pkValue = (pk: string): unknown => (pk.startsWith('x:') ? Buffer.from(pk.slice(2), 'hex') : pk);

export function createSqlSource(
  opts: SqlSourceOptions,
): SourceAdapter & { progress(): Record<string, StreamProgress>; pollNow(): void; mapRow(stream: string, row: RawRow): MapResult } {
  const clock = opts.clock ?? systemClock;
  const o = { ...opts, now: opts.now ?? (() => clock.now()) };
  const byName = new Map(o.streams.map((s) => [s.name, s]));
  const streamKey = (s: SqlStreamConfig) => `${o.id}/${s.name}`;
  const progress = new Map<string, StreamProgress & { runStartedAt: number; runStartDone: number }>();
  let ctx: IntakeContext | undefined;
  let driver: SqlDriver | undefined;
  let running = false;
  let wake: (() => void) | undefined;
  let woken = false;
  let loop: Promise<void> | undefined;
  /** A start in progress (its first connection): a second start waits for it rather than starting another loop. */
  let starting: Promise<void> | undefined;
  let health: AdapterHealth = { status: 'down', detail: { state: 'not started' } };
  let failures = 0;
  const broken = new Map<string, string>();
  /** Streams whose every page sorts a large table (the index on their watermark is missing): the index to create. */
  const unindexed = new Map<string, string>();
  /** When the unindexed streams were last looked at again (an index created since clears them). */
  let indexCheckedAt = 0;

  function recordsOf(stream: SqlStreamConfig, row: RawRow): MapResult {
    const tz = o.timezone ?? 'UTC';
    const wm = stream.watermark;
    return recordsFromRow(row.data, stream.records, {
      idParts: ['sql', o.id, stream.name, row.pk],
      rowHash: row.hash ?? '',
      system: o.system,
      adapter: 'sql',
      sourceId: `${stream.name}/${row.pk}`,
      partition: `${o.id}:${stream.name}:${row.pk}`,
      where: stream.name,
      timezone: tz,
      now: o.now,
      occurredFallback: wm?.kind === 'timestamp' ? toInstant(row.data[wm.column], undefined, tz) : undefined,
    });
  }

  /** The delete records of a row gone from a stream (its tombstone, or missing at a key-set comparison). */
  function deletesOf(stream: SqlStreamConfig, pk: string, evidence: string): MapResult {
    const pkText = pk;
    return {
      issues: [],
      records: stream.records.map((m, i) => ({
        id: deterministicId('sql', o.id, stream.name, pk, String(i), 'deleted', evidence),
        type: m.type,
        op: 'delete' as const,
        source: { system: o.system, adapter: 'sql', sourceId: `${stream.name}/${pkText}${m.sourceIdSuffix ?? ''}` },
        occurredAt: new Date(o.now()).toISOString(),
        partitionKey: `${o.id}:${stream.name}:${pkText}`,
        data: {},
      })),
    };
  }

  function mapRow(streamName: string, row: RawRow): MapResult {
    const target = row.stream ? byName.get(row.stream.slice(o.id.length + 1)) : undefined;
    if (target && row.hash === '-') return deletesOf(target, row.pk, (row.data.evidence as string | undefined) ?? '');
    const s = byName.get(streamName);
    if (!s) return { records: [], issues: [{ severity: 'error', code: 'GW_MAP_FAILED', message: `no stream ${streamName}` }] };
    return recordsOf(s, row);
  }

  function readCursor(s: SqlStreamConfig): StreamCursor {
    const text = ctx!.cursor(streamKey(s));
    if (!text) return { phase: 'initial', pos: null, marks: [], done: 0, total: null };
    return JSON.parse(text) as StreamCursor;
  }

  function noteProgress(s: SqlStreamConfig, c: StreamCursor, changed: number): void {
    const now = o.now();
    let p = progress.get(s.name);
    if (!p) {
      p = {
        phase: c.phase,
        rowsDone: c.done,
        rowsTotal: c.total,
        rowsPerSecond: 0,
        secondsLeft: null,
        lastPollAt: null,
        lastChangeAt: null,
        runStartedAt: now,
        runStartDone: c.done,
      };
      progress.set(s.name, p);
    }
    if (p.phase !== c.phase) {
      p.runStartedAt = now;
      p.runStartDone = c.done;
    }
    p.phase = c.phase;
    p.rowsDone = c.done;
    p.rowsTotal = c.total;
    const secs = (now - p.runStartedAt) / 1000;
    p.rowsPerSecond = secs > 0.5 ? Math.round((c.done - p.runStartDone) / secs) : p.rowsPerSecond;
    p.secondsLeft =
      c.phase === 'initial' && c.total !== null && p.rowsPerSecond > 0
        ? Math.max(0, Math.round((c.total - c.done) / p.rowsPerSecond))
        : null;
    p.lastPollAt = now;
    if (changed > 0) p.lastChangeAt = now;
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (!running) {
        resolve();
        return;
      }
      if (woken) {
        woken = false;
        resolve();
        return;
      }
      const t = clock.setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clock.clearTimeout(t);
        wake = undefined;
        resolve();
      };
    });

  /** Commits a page, waiting (cursor kept) while the outbox is full. Returns false when stopping. */
  async function commit(
    stream: SqlStreamConfig,
    rows: RawRow[],
    cursor: StreamCursor,
    firstLoad = false,
  ): Promise<{ written: number } | false> {
    for (let attempt = 0; running; attempt++) {
      const r = await ctx!.intakePage({
        adapter: o.id,
        format: `sql:${o.id}`,
        stream: streamKey(stream),
        rows,
        map: (row) => mapRow(stream.name, row),
        cursor: { key: streamKey(stream), value: JSON.stringify(cursor) },
        // a first load's rows go in the backfill lane (gateway/pipeline/record-lane.ts)
        firstLoad,
      });
      if (r.status === 'accepted') return { written: r.written + r.deadLettered };
      health = {
        status: 'degraded',
        detail: {
          state:
            r.code === 'GW_OUTBOX_FULL'
              ? 'paused: outbox full'
              : r.code === 'GW_DISK_LOW'
                ? 'paused: disk low'
                : 'paused: outbox write failed',
          stream: stream.name,
        },
      };
      ctx!.logger.warn({ code: r.code, stream: stream.name }, 'page not committed; reads paused, the page will be retried');
      await sleep(Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)));
    }
    return false;
  }

  /** One cycle of a stream: pages from its start position until a short page. Returns the rows it committed as changed. */
  async function cycle(s: SqlStreamConfig): Promise<number> {
    const d = driver!;
    const src = streamSource(s);
    const c = readCursor(s);
    const now = o.now();
    if (c.phase === 'initial' && c.total === null) {
      c.total = Number(((await d.query(countQuery(d, src)))[0] as { n: unknown }).n);
      ctx!.logger.info({ stream: s.name, rowsTotal: c.total }, 'first load starting');
    }
    // start where the stream stood `overlap` ago: rows committed late with an older watermark are read again
    let from: Position | null = c.pos ? [decodeValue(c.pos[0]), decodeValue(c.pos[1])] : null;
    if (c.phase === 'incremental') {
      const old = [...c.marks].reverse().find((m) => m[0] <= now - o.overlapSeconds * 1000) ?? c.marks[0];
      if (old) from = [decodeValue(old[1]), decodeValue(old[2])];
    }
    let changed = 0;
    // a first load reads a slice at a time, so the other streams' live changes are read between slices
    const sliceStart = performance.now();
    let pages = 0;
    for (;;) {
      if (!running) return changed;
      if (
        c.phase === 'initial' &&
        pages > 0 &&
        (pages >= FIRST_LOAD_SLICE.pages || performance.now() - sliceStart >= FIRST_LOAD_SLICE.ms)
      ) {
        firstLoadPending = true;
        return changed;
      }
      pages++;
      const q = pageQuery(d, src, from, o.pageSize);
      const rows = await d.query(q.sql, q.params);
      cycleQueries++;
      const wmCol = src.watermark.column;
      const raw: RawRow[] = [];
      for (const row of rows) {
        if (s.tombstone) {
          const table = s.tombstone.tableColumn ? String(row[s.tombstone.tableColumn] ?? '') : '';
          const targetName = s.tombstone.tableColumn ? s.tombstone.targets[table] : Object.values(s.tombstone.targets)[0];
          const target = targetName ? byName.get(targetName) : undefined;
          raw.push({ pk: pkOf(row[s.key]), data: row, hash: rowHash(row) });
          if (target)
            raw.push({
              pk: pkOf(row[s.tombstone.keyColumn]),
              stream: streamKey(target),
              hash: '-',
              data: { evidence: `tombstone:${pkOf(row[s.key])}` },
            });
        } else raw.push({ pk: pkOf(row[s.key]), data: row, hash: rowHash(row) });
      }
      const last = rows.at(-1) as SqlRow | undefined;
      // the position after this page (in an overlap re-read it can lie below the last one: a crash
      // then repeats more, never less)
      const pos = last ? ([encodeValue(last[wmCol]), encodeValue(last[s.key])] as [unknown, unknown]) : c.pos;
      const next: StreamCursor = { ...c, pos, done: c.phase === 'initial' ? c.done + rows.length : c.done };
      if (rows.length < o.pageSize) {
        // caught up: remember where we stand now, for the next cycle's overlap (a new mark only
        // when the position moved, so an idle poll writes nothing)
        if (next.phase === 'initial') {
          next.phase = 'incremental';
          ctx!.logger.info({ stream: s.name, rows: next.done }, 'first load finished');
        }
        const lastMark = next.marks.at(-1);
        if (next.pos && (!lastMark || JSON.stringify([lastMark[1], lastMark[2]]) !== JSON.stringify(next.pos))) {
          const keep = next.marks.filter((m) => m[0] > now - o.overlapSeconds * 1000);
          const older = next.marks.filter((m) => m[0] <= now - o.overlapSeconds * 1000).at(-1);
          next.marks = [...(older ? [older] : []), ...keep.slice(-20), [now, next.pos[0], next.pos[1]]];
        }
      }
      if (raw.length > 0 || JSON.stringify(next) !== JSON.stringify(c)) {
        const r = await commit(s, raw, next, c.phase === 'initial');
        if (r === false) return changed;
        changed += r.written;
      }
      Object.assign(c, next);
      noteProgress(s, c, changed);
      if (rows.length < o.pageSize) break;
      from = [last![wmCol], last![s.key]];
    }
    if (changed > 0) ctx!.logger.info({ stream: s.name, rowsChanged: changed }, 'stream changes committed');
    return changed;
  }

  /** Deleted rows found by comparing the keys we hold with the keys the source still has. */
  async function keysetDeletes(s: SqlStreamConfig): Promise<void> {
    const c = readCursor(s);
    const now = o.now();
    if (c.phase !== 'incremental' || (c.keysetAt !== undefined && now - c.keysetAt < o.keysetIntervalMinutes * 60_000)) return;
    const d = driver!;
    const src = streamSource(s);
    let after: string | undefined;
    let gone = 0;
    for (;;) {
      if (!running) return;
      const known = ctx!.knownRows(streamKey(s), after, 500);
      if (known.length === 0) break;
      after = known.at(-1);
      const values = known.map(pkValue);
      const present = new Set((await d.query(keysQuery(d, src, values.length), values)).map((r) => pkOf(r.k)));
      const missing = known.filter((k) => !present.has(k));
      if (missing.length === 0) continue;
      const r = await commit(
        s,
        missing.map((pk) => ({ pk, stream: streamKey(s), hash: '-', data: { evidence: `keyset:${now}` } })),
        readCursor(s),
      );
      if (r === false) return;
      gone += missing.length;
    }
    const latest = readCursor(s);
    const r = await commit(s, [], { ...latest, keysetAt: now });
    if (r === false) return;
    if (gone > 0) ctx!.logger.info({ stream: s.name, rowsDeleted: gone }, 'deleted rows found by key-set comparison');
  }

  /**
   * Each stream checked against the live database before it is read (not run blind): its query
   * must run and return the columns its mapping needs; a page query that would sort a large table
   * is logged with the index to create. A stream that fails is not read (health says why); the
   * others go on. Checked again after every reconnect.
   */
  async function checkStreams(d: SqlDriver): Promise<void> {
    broken.clear();
    unindexed.clear();
    indexCheckedAt = o.now();
    for (const s of o.streams) {
      try {
        const r = await inspectStream(d, s, o.pageSize, { count: false });
        if (r.missing.length) {
          broken.set(s.name, `no column(s) ${r.missing.join(', ')}`);
          continue;
        }
        if (r.needsIndex) unindexed.set(s.name, `${s.table ?? `query:${s.name}`} (${r.needsIndex}), ${r.rows} rows`);
        if (r.needsIndex)
          ctx?.logger.warn(
            { stream: s.name, rows: r.rows, index: r.needsIndex },
            'each page of this stream sorts the whole table: create an index on the columns named (db check shows the plan)',
          );
      } catch (e) {
        // a lock, a timeout or a lost connection says nothing about the stream's fit: the check is
        // tried again (the start or the reconnect fails and is retried), never the stream given up
        if (isTransient(e)) throw e;
        broken.set(s.name, (e as Error).message.slice(0, 200));
      }
    }
    for (const [name, why] of broken)
      ctx?.logger.error(
        { code: 'GW_CONFIG_INVALID', stream: name, cause: why },
        'stream not read: it does not fit the database (fix databases[].streams, check with `eyewear-gateway db check`)',
      );
  }

  /**
   * Opens the driver and proves the database answers (a pool connects lazily, so without the
   * probe a database that is not there would pass as streams that do not fit it, never read
   * again), then checks the streams.
   */
  async function connect(): Promise<SqlDriver> {
    const d = o.driver ?? (await openSqlDriver(o.connection));
    try {
      await d.query('SELECT 1 AS ok');
    } catch (e) {
      if (!o.driver) await d.close().catch(() => undefined);
      throw e;
    }
    try {
      await checkStreams(d);
    } catch (e) {
      // a lock or a timeout in the check: this pool is not kept, the retry opens its own
      if (!o.driver) await d.close().catch(() => undefined);
      throw e;
    }
    return d;
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        if (!driver) driver = await connect();
        if (o.realtime === 'listen' && driver.listen && !listening) {
          await driver.listen(
            o.channel,
            () => pollNow(),
            (e) => {
              listening = false;
              ctx?.logger.warn(
                { code: 'GW_SOURCE_UNREACHABLE', cause: errorCodeOf(e) },
                'notification connection lost; polling until it is back',
              );
            },
          );
          listening = true;
        }
        let changes = 0;
        cycleQueries = 0;
        // while a first load goes on slice by slice, the live streams are read at their poll interval, not every slice
        const slicing = firstLoadPending;
        firstLoadPending = false;
        const mono = clock.monotonic ? clock.monotonic() : clock.now();
        const liveDue = !slicing || mono - liveReadAt >= o.pollIntervalMs;
        if (liveDue) liveReadAt = mono;
        for (const s of o.streams) {
          if (!running || broken.has(s.name)) continue;
          // a first load is no change of the practice's: the poll schedule does not learn from it
          const firstLoad = readCursor(s).phase === 'initial';
          if (!firstLoad && !liveDue) continue;
          const changed = await cycle(s);
          if (!firstLoad) changes += changed;
        }
        for (const s of o.streams) {
          if (running && !broken.has(s.name) && s.deletes === 'keyset') await keysetDeletes(s);
        }
        // an index created since: looked at again hourly (the plan and a count, per stream that lacked it)
        if (unindexed.size && o.now() - indexCheckedAt >= 3_600_000) {
          indexCheckedAt = o.now();
          for (const name of [...unindexed.keys()]) {
            const s = o.streams.find((x) => x.name === name);
            const r = s ? await inspectStream(driver, s, o.pageSize, { count: false }) : undefined;
            if (!r?.needsIndex) {
              unindexed.delete(name);
              ctx?.logger.info({ stream: name }, 'the stream reads by its index again');
            }
          }
        }
        failures = 0;
        const initial = [...progress.values()].some((p) => p.phase === 'initial');
        health = {
          status: broken.size ? 'degraded' : 'up',
          detail: {
            state: initial ? 'first load' : 'incremental',
            streams: o.streams.length,
            realtime: listening ? 'listen' : 'polling',
            ...Object.fromEntries([...broken].map(([n, why]) => [`${n}.error`, why])),
          },
        };
        // a first load cut at its slice goes on at once (after one round of the other streams)
        if (!firstLoadPending) await sleep(pollWait(ctx, { configuredMs: o.pollIntervalMs, changes, requests: cycleQueries }));
      } catch (e) {
        failures++;
        const delay = Math.min(60_000, 1000 * 2 ** Math.min(failures, 6));
        // the driver's code only (SQLSTATE, errno): a database's message text can quote row values
        const cause = errorCodeOf(e);
        health = {
          status: 'down',
          detail: {
            state: 'database unreachable or query failed (run `eyewear-gateway db check` for the full answer)',
            error: cause,
            retryInMs: delay,
          },
        };
        ctx?.logger.error({ code: 'GW_SOURCE_UNREACHABLE', cause, retryInMs: delay }, 'database poll failed; retrying');
        if (driver && !o.driver) {
          await driver.close().catch(() => undefined);
          driver = undefined;
          listening = false;
        }
        await sleep(delay);
      }
    }
  }
  let listening = false;
  /** A stream's first load stopped at its slice this round: the next round starts without the poll wait. */
  let firstLoadPending = false;
  /** When the streams past their first load were last read (during a sliced first load they wait their interval). */
  let liveReadAt = 0;
  /** Page queries of the cycle under way (the sync agent's budgets count them). */
  let cycleQueries = 0;

  function pollNow(): void {
    if (wake) wake();
    else woken = true;
  }

  return {
    id: o.id,
    /**
     * Opens the first connection and checks the streams before the poll loop starts: a database
     * that cannot be reached rejects the start (with the driver's code), so the composition root
     * reports it and retries; later failures are the loop's to retry. A second start while
     * running (or starting) starts no second loop.
     */
    async start(c) {
      if (running) return;
      if (starting) return starting;
      starting = (async () => {
        ctx = c;
        woken = false;
        health = { status: 'degraded', detail: { state: 'starting' } };
        try {
          if (!driver) driver = await connect();
        } catch (e) {
          if (driver && !o.driver) await driver.close().catch(() => undefined);
          driver = undefined;
          const cause = errorCodeOf(e);
          health = {
            status: 'down',
            detail: { state: 'database unreachable at start (run `eyewear-gateway db check` for the full answer)', error: cause },
          };
          // the driver's code only: a database's message text can quote row values
          throw Object.assign(new Error(`database ${o.id} unreachable at start (${cause})`, { cause: e }), { code: cause });
        }
        running = true;
        loop = run();
      })().finally(() => {
        starting = undefined;
      });
      return starting;
    },
    async stop() {
      if (starting) await starting.catch(() => undefined);
      running = false;
      pollNow();
      await loop;
      loop = undefined;
      woken = false;
      if (driver && !o.driver) await driver.close().catch(() => undefined);
      driver = undefined;
      listening = false;
      health = { status: 'down', detail: { state: 'stopped' } };
    },
    health() {
      const streams: Record<string, number | string | boolean> = {};
      for (const [name, p] of progress) {
        streams[`${name}.phase`] = p.phase;
        streams[`${name}.rowsDone`] = p.rowsDone;
        if (p.rowsTotal !== null) streams[`${name}.rowsTotal`] = p.rowsTotal;
        if (p.phase === 'initial') {
          streams[`${name}.rowsPerSecond`] = p.rowsPerSecond;
          if (p.secondsLeft !== null) streams[`${name}.secondsLeft`] = p.secondsLeft;
        }
      }
      // what the start found missing stays in every answer, whatever wrote `health` last (a full outbox, a failed poll)
      for (const [name, index] of unindexed) streams[`${name}.needsIndex`] = index;
      return { status: health.status, detail: { ...health.detail, ...streams } };
    },
    progress() {
      return Object.fromEntries([...progress].map(([k, { runStartedAt: _a, runStartDone: _b, ...p }]) => [k, p]));
    },
    pollNow,
    mapRow,
  };
}

/**
 * How much of a first load one round reads before the source's other streams get their turn: a
 * large table's first load (hours for millions of rows) never holds back the live changes of the
 * others. 50 pages (25,000 rows at the default pageSize) or 2 s of reading, whichever comes first;
 * between slices the other streams are read at their own poll interval, as they would be without it.
 */
const FIRST_LOAD_SLICE = { pages: 50, ms: 2000 };

/**
 * Errors that pass: a statement cancelled at its timeout or by a lock (PostgreSQL 57014, 55P03,
 * 40001, 40P01; MariaDB's lock wait, deadlock and query timeout; SQL Server's timeout; SQLite busy or
 * locked), a server shutting down or out of connections, a connection lost.
 */
const TRANSIENT = new Set([
  '57014',
  '55P03',
  '40001',
  '40P01',
  '57P01',
  '57P03',
  '53300',
  '08000',
  '08003',
  '08006',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_QUERY_TIMEOUT',
  'ER_QUERY_INTERRUPTED',
  'ETIMEOUT',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ESOCKET',
  'PROTOCOL_CONNECTION_LOST',
]);
/**
 * By number where a driver gives no name: MariaDB's errno (1969 statement time exceeded, 1205 lock
 * wait timeout, 1213 deadlock, 3024 query timeout, 1317 interrupted, 2013 connection lost; mysql2
 * names some of them, not 1969) and SQL Server's error number (1222 lock timeout, 1205 deadlock
 * victim), which arrive as the generic EREQUEST.
 */
const TRANSIENT_NUMBERS = new Set([1969, 1205, 1213, 3024, 1317, 2013, 1222]);
function isTransient(e: unknown): boolean {
  const x = e as { errcode?: unknown; errno?: unknown; number?: unknown } | undefined;
  // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6), in their extended forms too
  if (typeof x?.errcode === 'number' && [5, 6].includes(x.errcode & 0xff)) return true;
  if (typeof x?.errno === 'number' && TRANSIENT_NUMBERS.has(x.errno)) return true;
  if (typeof x?.number === 'number' && TRANSIENT_NUMBERS.has(x.number)) return true;
  return TRANSIENT.has(errorCodeOf(e));
}

/** A driver error's code (SQLSTATE, errno name) or its class: never its message, which can quote data. */
function errorCodeOf(e: unknown): string {
  const x = e as { code?: unknown; errno?: unknown; number?: unknown; errcode?: unknown } | undefined;
  const code = x?.code;
  // SQL Server's generic EREQUEST says less than its error number; SQLite's ERR_SQLITE_ERROR less than its errcode
  if (code === 'EREQUEST' && typeof x?.number === 'number') return `EREQUEST:${x.number}`;
  if (code === 'ERR_SQLITE_ERROR' && typeof x?.errcode === 'number') return `SQLITE:${x.errcode}`;
  if (typeof code === 'string' || typeof code === 'number') return String(code);
  // a MariaDB error mysql2 has no name for (1969: statement time exceeded) carries its errno only
  if (typeof x?.errno === 'number') return `ERRNO:${x.errno}`;
  return e instanceof Error ? e.name : 'unknown';
}
