/**
 * The outbox: how many records wait, the oldest one's age, dead letters, bytes against the cap.
 * Counted in the file itself, opened read-only (SQLite `readOnly`: no lease taken, no writer,
 * nothing migrated; safe beside the running gateway, whose WAL commits a reader sees), with the
 * running gateway's breakdown by state from `/status` beside it when it answers.
 */
import type { OutboxStats } from '../../../gateway/outbox/outbox.ts';
import { existsSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { accessProblem, needsConfig, notChecked, type CheckResult, type DoctorCheck } from '../check.ts';

/** Records older than this mean delivery is stuck (the relay retries every few seconds to a minute). */
export const OUTBOX_AGE_WARN_S = 900;
/** Past this share of `outbox.maxBytes`, input is refused soon. */
export const OUTBOX_FULL_WARN = 0.8;

export interface OutboxFigures {
  records: number;
  deadLetters: number;
  bytes: number;
  maxBytes: number;
  oldestAgeSeconds: number | null;
  from: 'status' | 'file';
}

/** The figures read from the file, read-only; undefined when there is no outbox file yet. */
export function readOutboxFile(file: string, maxBytes: number, now: number): OutboxFigures | undefined {
  if (!existsSync(file)) return undefined;
  const d = new DatabaseSync(file, { readOnly: true });
  try {
    const has = (t: string) => d.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
    const o = has('outbox')
      ? (d.prepare('SELECT COUNT(*) AS n, MIN(created_at) AS t, COALESCE(SUM(bytes), 0) AS b FROM outbox').get() as {
          n: number;
          t: number | null;
          b: number;
        })
      : { n: 0, t: null, b: 0 };
    const dl = has('dead_letters')
      ? (d.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM dead_letters').get() as { n: number; b: number })
      : { n: 0, b: 0 };
    return {
      records: Number(o.n),
      deadLetters: Number(dl.n),
      bytes: Number(o.b) + Number(dl.b),
      maxBytes,
      oldestAgeSeconds: o.t === null ? null : Math.max(0, Math.round((now - Number(o.t)) / 1000)),
      from: 'file',
    };
  } finally {
    d.close();
  }
}

export function judgeOutbox(f: OutboxFigures): CheckResult {
  const name = 'outbox';
  const ev = `${f.records} record(s) waiting, oldest ${f.oldestAgeSeconds === null ? '—' : `${f.oldestAgeSeconds} s`}, ${f.deadLetters} dead letter(s), ${f.bytes} of ${f.maxBytes} bytes (${((100 * f.bytes) / f.maxBytes).toFixed(1)}%) (${f.from === 'status' ? 'from the running gateway' : 'read from the file, read-only'})`;
  const data = { ...f };
  if (f.bytes >= f.maxBytes)
    return {
      name,
      status: 'fail',
      evidence: `${ev}: full, new input is refused`,
      todo: 'restore the cloud connection (see the cloud checks) so the relay drains it',
      data,
    };
  const why: string[] = [];
  if (f.oldestAgeSeconds !== null && f.oldestAgeSeconds > OUTBOX_AGE_WARN_S)
    why.push(`records older than ${OUTBOX_AGE_WARN_S} s: delivery is not keeping up or is stuck`);
  if (f.bytes >= f.maxBytes * OUTBOX_FULL_WARN) why.push(`over ${OUTBOX_FULL_WARN * 100}% of outbox.maxBytes`);
  if (f.deadLetters > 0) why.push('dead letters wait for a replay or discard');
  if (why.length)
    return {
      name,
      status: 'warn',
      evidence: `${ev}: ${why.join('; ')}`,
      todo:
        f.deadLetters > 0 && why.length === 1
          ? 'see them with GET /dead-letters on the admin API; replay or discard each'
          : "see the cloud checks and the relay's last error (eyewear-gateway status)",
      data,
    };
  return { name, status: 'pass', evidence: ev, data };
}

export const outboxCheck: DoctorCheck = {
  id: 'outbox',
  async run(ctx) {
    if (!ctx.config || !ctx.paths) return [needsConfig('outbox', ctx)];
    const g = await ctx.gateway();
    // the running gateway's view: its breakdown by state (/status's outbox: OutboxStats and the oldest record's age)
    const live = g.state === 'answering' ? (g.status.outbox as OutboxStats & { oldestAgeSeconds: number | null }) : undefined;
    const closed = accessProblem(ctx.paths.dataDir) ?? accessProblem(ctx.paths.outboxFile);
    if (closed && !live) return [notChecked('outbox', closed)];
    let f: OutboxFigures | undefined;
    if (!closed)
      try {
        f = readOutboxFile(ctx.paths.outboxFile, ctx.config.outbox.maxBytes, ctx.now());
      } catch (e) {
        if (!live)
          return [
            {
              name: 'outbox',
              status: 'fail',
              evidence: `${ctx.paths.outboxFile} cannot be read: ${(e as Error).message}`,
              todo: 'start the gateway: it checks the outbox and moves a damaged one aside (see docs/operating.md)',
            },
          ];
      }
    if (!f && live)
      f = {
        records: live.pending + live.inFlight,
        deadLetters: live.deadLetters,
        bytes: live.bytes,
        maxBytes: live.maxBytes,
        oldestAgeSeconds: live.oldestAgeSeconds,
        from: 'status',
      };
    if (!f) return [{ name: 'outbox', status: 'pass', evidence: `no outbox yet at ${ctx.paths.outboxFile} (the first start makes it)` }];
    const r = judgeOutbox(f);
    if (!live) return [r];
    const said = `the running gateway: ${live.pending} pending, ${live.inFlight} in flight, ${live.waitingRetry} waiting retry`;
    return [
      {
        ...r,
        evidence: `${r.evidence}; ${said}`,
        data: { ...r.data, gateway: { pending: live.pending, inFlight: live.inFlight, waitingRetry: live.waitingRetry } },
      },
    ];
  },
};
