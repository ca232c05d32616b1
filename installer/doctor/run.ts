/**
 * Runs the checks concurrently, each bounded by its own timeout, and reduces the results to one
 * exit code: 0 when nothing is worse than pass/skip, 6 with warnings, 7 with a failure
 * (cli/command.ts EXIT). A check that throws or overruns is itself a fail, so doctor never hangs
 * and never hides a check that could not run.
 */
import { hostname } from 'node:os';
import { EXIT } from '../../cli/command.ts';
import { gatewayVersion } from '../../gateway/version.ts';
import { DEFAULT_CHECK_TIMEOUT_MS, type CheckResult, type CheckStatus, type DoctorCheck, type DoctorContext } from './check.ts';

export interface DoctorReport {
  /** When the run started (ISO 8601). */
  readonly at: string;
  readonly configFile: string | null;
  /** Which machine and which build said this (the cloud team reads reports from many). */
  readonly host: string;
  readonly platform: string;
  readonly version: string;
  readonly worst: CheckStatus;
  readonly exitCode: number;
  readonly counts: Readonly<Record<CheckStatus, number>>;
  readonly results: readonly CheckResult[];
}

const RANK: Record<CheckStatus, number> = { pass: 0, skip: 0, warn: 1, fail: 2 };

export function worstOf(results: readonly CheckResult[]): CheckStatus {
  let worst: CheckStatus = 'pass';
  for (const r of results) if (RANK[r.status] > RANK[worst]) worst = r.status;
  return worst;
}

export function exitCodeOf(worst: CheckStatus): number {
  switch (worst) {
    case 'pass':
    case 'skip':
      return EXIT.ok;
    case 'warn':
      return EXIT.doctorWarnings;
    case 'fail':
      return EXIT.doctorFailures;
    default:
      return worst satisfies never;
  }
}

/** One check, bounded: its results, or a fail naming the timeout or the error it threw. */
export async function runCheck(check: DoctorCheck, ctx: DoctorContext): Promise<readonly CheckResult[]> {
  const ms = check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<readonly CheckResult[]>((resolve) => {
    timer = setTimeout(() => {
      ac.abort(new Error(`doctor check ${check.id} timed out after ${ms} ms`));
      resolve([
        {
          name: check.id,
          status: 'fail',
          evidence: `no answer within ${ms} ms (the check was stopped)`,
          todo: 'something it asks hangs (a firewall dropping packets, a stuck mount, an overloaded machine): run doctor again; if it repeats, check that dependency by hand',
          data: { timeoutMs: ms },
        },
      ]);
    }, ms);
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => check.run(ctx, ac.signal))
        .catch((e: unknown): readonly CheckResult[] => [
          {
            name: check.id,
            status: 'fail',
            evidence: `the check could not run: ${(e as Error)?.message ?? String(e)}`,
            todo: 'report this with the --json output; the other checks still ran',
          },
        ]),
      overrun,
    ]);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/** Every check at once; results in the list's order. */
export async function runDoctor(checks: readonly DoctorCheck[], ctx: DoctorContext): Promise<DoctorReport> {
  const at = new Date(ctx.now()).toISOString();
  const results = (await Promise.all(checks.map((c) => runCheck(c, ctx)))).flat();
  const worst = worstOf(results);
  const counts: Record<CheckStatus, number> = { pass: 0, skip: 0, warn: 0, fail: 0 };
  for (const r of results) counts[r.status]++;
  return {
    at,
    configFile: ctx.configFile ?? null,
    host: hostname(),
    platform: `${ctx.platform}-${process.arch}`,
    version: gatewayVersion(),
    worst,
    exitCode: exitCodeOf(worst),
    counts,
    results,
  };
}

/** The report for a person over SSH: one line per result (and what to do), in check order. */
export function formatReport(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { pass: 'PASS', skip: 'SKIP', warn: 'WARN', fail: 'FAIL' };
  const lines = [
    `eyewear-gateway ${r.version} doctor on ${r.host} (${r.platform}) — ${r.at}${r.configFile ? ` — ${r.configFile}` : ' — no --config (embedded defaults)'}`,
  ];
  for (const x of r.results) {
    lines.push(`${mark[x.status]}  ${x.name}: ${x.evidence}`);
    if (x.todo && x.status !== 'pass') lines.push(`      what to do: ${x.todo}`);
  }
  lines.push(
    `${r.counts.pass} pass, ${r.counts.warn} warn, ${r.counts.fail} fail, ${r.counts.skip} skip — ${r.worst === 'fail' ? 'FAILURES' : r.worst === 'warn' ? 'warnings' : 'all good'} (exit ${r.exitCode})`,
  );
  return lines.join('\n');
}
