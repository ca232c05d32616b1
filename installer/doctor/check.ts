/**
 * The contract of one `doctor` check. A check is a module exporting a {@link DoctorCheck}; the list
 * in installer/doctor/index.ts (`doctorChecks`) is what `eyewear-gateway doctor` runs, so adding a
 * check (the device certificate, say) is one new file and one entry there.
 *
 * A check reads the world and changes nothing the gateway owns: it never takes the data folder's
 * lease, never opens the outbox for writing, never creates a key, and never connects to the cloud
 * under the gateway's own MQTT client id (that would cut the running gateway off its broker).
 * Every result carries exact evidence (bytes, ms, counts, ports, pids — ids and figures, never
 * record contents or key material) and, unless it passed, what to do.
 */
import { accessSync, constants, statSync } from 'node:fs';
import type { ConfigProblem } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import type { GatewayPaths } from '../../gateway/create-gateway.ts';

/** The outcome of one result, from best to worst (skip: not applicable here, with the reason as evidence). */
export const CheckStatus = { pass: 'pass', skip: 'skip', warn: 'warn', fail: 'fail' } as const;
export type CheckStatus = (typeof CheckStatus)[keyof typeof CheckStatus];

/** One line of the report. A check may give several (one per port, one per source, one per cloud step). */
export interface CheckResult {
  /** Stable and short: `config`, `port hl7.port`, `cloud tls`, `source pms-db`. */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was seen, with exact figures. */
  readonly evidence: string;
  /** What to do; absent on a pass. */
  readonly todo?: string;
  /** The figures behind the evidence, for `--json` readers (bytes, ms, pid…). */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** What the running gateway's admin API said, asked once and shared by every check. */
export type GatewayProbe =
  | {
      readonly state: 'answering';
      /** Its `/status` document (gateway/status-report.ts). */
      // biome-ignore lint/suspicious/noExplicitAny: a JSON document read field by field
      readonly status: Record<string, any>;
      readonly base: string;
    }
  | {
      /**
       * not-answering: nothing (or not this gateway) at admin.port; disabled: admin.enabled is false;
       * no-config: nothing to ask; no-access: this user cannot read the admin token or the lease.
       */
      readonly state: 'not-answering' | 'disabled' | 'no-config' | 'no-access';
      /** Why, in the words `status` uses. */
      readonly reason: string;
    };

/** The result of running a program (systemctl, sc). */
export interface ExecResult {
  /** The exit code; null when it could not run or was killed at its timeout. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when it could not run: ENOENT (not installed), ETIMEDOUT… */
  readonly error?: string;
}

export interface DoctorContext {
  /** `--config` as given (absent: the embedded defaults). */
  readonly configFile?: string;
  /** The validated config; absent when it did not load (then `configError` says why). */
  readonly config?: GatewayConfig;
  readonly configError?: { readonly code: string; readonly message: string; readonly problems: readonly ConfigProblem[] };
  readonly configWarnings: readonly ConfigProblem[];
  /** The data folder's files, when the config loaded. */
  readonly paths?: GatewayPaths;
  readonly platform: NodeJS.Platform;
  /** Linux: systemd is the init system (sd_booted's test: /run/systemd/system exists). */
  readonly systemdBooted: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  now(): number;
  /** The running gateway's `/status` (memoised: one admin-API round trip for all checks). */
  gateway(): Promise<GatewayProbe>;
  /** Runs a program without a shell, bounded by `timeoutMs`. */
  exec(file: string, args: readonly string[], timeoutMs: number): Promise<ExecResult>;
}

export interface DoctorCheck {
  /** Used for the result when the check times out or throws. */
  readonly id: string;
  /** Bound on the whole check (default {@link DEFAULT_CHECK_TIMEOUT_MS}); past it the check is a fail, and `signal` aborts. */
  readonly timeoutMs?: number;
  run(ctx: DoctorContext, signal: AbortSignal): Promise<readonly CheckResult[]>;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/** The results of a check that could not run for want of a valid config. */
export function needsConfig(name: string, ctx: DoctorContext): CheckResult {
  return {
    name,
    status: 'skip',
    evidence: `not checked: the config did not load (${ctx.configError?.code ?? 'no config'})`,
    todo: 'fix the config first (see the config check)',
  };
}

/**
 * Why this user cannot read `path` (a folder: list and enter it), or undefined when it can. A
 * technician over SSH is often not the service's user: what doctor cannot read is then "not
 * checked, run it as root", never a fault of the gateway.
 */
export function accessProblem(path: string, mode: 'read' | 'write' = 'read'): string | undefined {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') return undefined; // absent: each check says so itself
  }
  const bits = (mode === 'write' ? constants.W_OK : constants.R_OK) | (dir ? constants.X_OK : 0);
  try {
    accessSync(path, bits);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'EACCES' && code !== 'EPERM') return undefined;
    const uid = process.getuid?.();
    let owner = '';
    try {
      owner = `; it belongs to uid ${statSync(path).uid}`;
    } catch {
      /* the parent is closed too */
    }
    return uid === undefined
      ? `doctor cannot ${mode} ${path} (${code})`
      : `doctor runs as uid ${uid} and cannot ${mode} ${path} (${code}${owner})`;
  }
}

/** A result for what this user could not look at: a warning (run again with the rights), never a pass. */
export function notChecked(name: string, problem: string): CheckResult {
  return {
    name,
    status: 'warn',
    evidence: `not checked: ${problem}`,
    todo: "run doctor again as root (sudo eyewear-gateway doctor …), as Administrator on Windows, or as the service's user",
  };
}
