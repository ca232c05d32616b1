/**
 * The gateway process: the data folder's lease (gateway/data-lease.ts) names the process that owns
 * the folder — alive, and still the process that took it (Linux start time) — and that process
 * answers on its admin API as this config's gateway (the same check `status` makes).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LEASE_FILE, linuxProcessStart, pidAlive, readDataLease, type LeaseHolder } from '../../../gateway/data-lease.ts';
import { accessProblem, needsConfig, notChecked, type CheckResult, type DoctorCheck, type DoctorContext } from '../check.ts';

export type LeaseState =
  | { state: 'none' }
  | { state: 'alive'; holder: LeaseHolder }
  | { state: 'stale'; holder: LeaseHolder; why: string }
  | { state: 'other-host'; holder: LeaseHolder }
  /** This user cannot read the data folder or its lease file. */
  | { state: 'no-access'; why: string };

/** Who owns the data folder, read without taking anything. */
export function leaseState(dataDir: string): LeaseState {
  const closed = accessProblem(dataDir) ?? accessProblem(join(dataDir, LEASE_FILE));
  if (closed) return { state: 'no-access', why: closed };
  const holder = readDataLease(dataDir);
  if (!holder) return { state: 'none' };
  if (holder.host !== hostname()) return { state: 'other-host', holder };
  if (!pidAlive(holder.pid)) return { state: 'stale', holder, why: `process ${holder.pid} is gone` };
  const start = holder.processStart !== undefined ? linuxProcessStart(holder.pid) : undefined;
  if (start !== undefined && start !== holder.processStart)
    return { state: 'stale', holder, why: `pid ${holder.pid} now belongs to another process (its start time differs)` };
  return { state: 'alive', holder };
}

export const gatewayProcessCheck: DoctorCheck = {
  id: 'gateway process',
  timeoutMs: 8000,
  async run(ctx: DoctorContext): Promise<CheckResult[]> {
    const name = 'gateway process';
    if (!ctx.paths) return [needsConfig(name, ctx)];
    const dir = ctx.paths.dataDir;
    const lease = leaseState(dir);
    const start = `eyewear-gateway start${ctx.configFile ? ` --config ${ctx.configFile}` : ''} (or start the service)`;
    if (lease.state === 'no-access') return [notChecked(name, lease.why)];
    if (lease.state === 'none')
      return [{ name, status: 'fail', evidence: `not running: no lease in ${dir} (gateway.lock)`, todo: `start it: ${start}` }];
    const h = lease.holder;
    const data = { pid: h.pid, host: h.host, startedAt: h.startedAt, ...(h.handOver ? { handOverTo: h.handOver.toPid ?? null } : {}) };
    if (lease.state === 'stale')
      return [
        {
          name,
          status: 'fail',
          evidence: `not running: the lease names pid ${h.pid} (since ${h.startedAt}), but ${lease.why}`,
          todo: `start it: ${start} (it takes over the stale lease)`,
          data,
        },
      ];
    if (lease.state === 'other-host')
      return [
        {
          name,
          status: 'warn',
          evidence: `the lease in ${dir} was written on host ${h.host}, not ${hostname()} (pid ${h.pid}): a data folder on a share seen by two machines`,
          todo: 'run doctor on that host; give each gateway a data folder on its own disk',
          data,
        },
      ];
    const g = await ctx.gateway();
    const ev = `pid ${h.pid} holds the data folder's lease since ${h.startedAt}`;
    if (g.state === 'disabled') return [{ name, status: 'pass', evidence: `${ev}; ${g.reason}`, data }];
    if (g.state === 'no-access') return [{ ...notChecked(name, g.reason), evidence: `${ev}; its admin API not asked: ${g.reason}`, data }];
    if (g.state !== 'answering')
      return [
        {
          name,
          status: 'fail',
          evidence: `${ev}, but its admin API does not answer as this gateway: ${g.reason}`,
          todo: 'see the gateway log for the admin API (port in use?), then restart it',
          data,
        },
      ];
    const s = g.status;
    const ready = s.ready as { ready: boolean; reasons: string[] } | undefined;
    const ev2 = `${ev}; answers at ${g.base} as gateway ${s.gateway.id} v${s.gateway.version}, up ${s.gateway.uptimeSeconds}s`;
    const d2 = {
      ...data,
      version: s.gateway.version,
      uptimeSeconds: s.gateway.uptimeSeconds,
      ready: ready?.ready ?? null,
      reasons: ready?.reasons ?? [],
    };
    if (ready && !ready.ready)
      return [
        {
          name,
          status: 'warn',
          evidence: `${ev2}; NOT ready: ${ready.reasons.join('; ')}`,
          todo: 'fix what the reasons name; the checks below say more',
          data: d2,
        },
      ];
    return [{ name, status: 'pass', evidence: `${ev2}, ready`, data: d2 }];
  },
};
