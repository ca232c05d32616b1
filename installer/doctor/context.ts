/**
 * The world a doctor run reads: the config loaded by the same loader `check-config` uses, the
 * data folder's paths, and the running gateway asked once through the same client code as
 * `status` (`ownGatewayStatus`: it checks the answer comes from this config's gateway).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ConfigError, loadConfigReport, type ConfigProblem } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { ownGatewayStatus } from '../../cli/commands/status.ts';
import { gatewayPaths } from '../../gateway/create-gateway.ts';
import { accessProblem, type DoctorContext, type ExecResult, type GatewayProbe } from './check.ts';

export interface DoctorContextOptions {
  configFile?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Tests: another platform's code path (Windows `sc query`, read as text). */
  platform?: NodeJS.Platform;
  /** Tests: whether systemd runs (default: /run/systemd/system exists), to read systemctl's answers as text. */
  systemdBooted?: boolean;
  /** Tests: another program runner (the Windows path, which cannot run here). */
  exec?: DoctorContext['exec'];
  now?: () => number;
}

export function createDoctorContext(o: DoctorContextOptions): DoctorContext {
  const env = o.env ?? process.env;
  let config: GatewayConfig | undefined;
  let configError: DoctorContext['configError'];
  let configWarnings: readonly ConfigProblem[] = [];
  try {
    const r = loadConfigReport({ ...(o.configFile !== undefined ? { file: o.configFile } : {}), env: env as NodeJS.ProcessEnv });
    config = r.config;
    configWarnings = r.warnings;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    configError = { code: e.code, message: e.message, problems: e.problems };
  }
  let probe: Promise<GatewayProbe> | undefined;
  const askGateway = async (c: GatewayConfig): Promise<GatewayProbe> => {
    if (!c.admin.enabled) return { state: 'disabled', reason: 'admin.enabled is false: the running gateway cannot be asked' };
    const paths = gatewayPaths(c);
    const closed = accessProblem(paths.dataDir) ?? (c.admin.token ? undefined : accessProblem(paths.tokenFile));
    if (closed) return { state: 'no-access', reason: closed };
    const said: string[] = [];
    const got = await ownGatewayStatus(c, o.configFile, { err: (s) => said.push(s) });
    if ('exit' in got) return { state: 'not-answering', reason: said.join(' ') || `admin API gave exit ${got.exit}` };
    return { state: 'answering', status: got.status, base: got.base };
  };
  return {
    ...(o.configFile !== undefined ? { configFile: o.configFile } : {}),
    ...(config ? { config, paths: gatewayPaths(config) } : {}),
    ...(configError ? { configError } : {}),
    configWarnings,
    platform: o.platform ?? process.platform,
    systemdBooted: o.systemdBooted ?? existsSync('/run/systemd/system'),
    env,
    now: o.now ?? Date.now,
    gateway() {
      if (!config) return Promise.resolve({ state: 'no-config', reason: 'the config did not load' });
      probe ??= askGateway(config).catch((e: unknown) => ({ state: 'not-answering' as const, reason: (e as Error).message }));
      return probe;
    },
    exec: o.exec ?? runProgram,
  };
}

/** A program run without a shell; its failure to run is a result (ENOENT: not installed), never a throw. */
export function runProgram(file: string, args: readonly string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, encoding: 'utf8', windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
      if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr });
      resolve({ code: null, stdout, stderr, error: e.killed ? 'ETIMEDOUT' : String(e.code ?? 'error') });
    });
  });
}
