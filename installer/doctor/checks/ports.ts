/**
 * The ports the config says the gateway listens on (MLLP, admin API, CDS Hooks): bound by this
 * gateway (the lease holder's pid), by another program (which pid, which command), or not bound.
 * Linux reads the socket tables, Windows netstat's (port-owner.ts); elsewhere only whether
 * something answers, and for the admin port whether it answers as this gateway.
 */
import type { GatewayConfig } from '../../../config/schema.ts';
import { listenersOn, tcpAnswers, windowsListenersOn, type PortListener } from '../port-owner.ts';
import { needsConfig, notChecked, type CheckResult, type DoctorCheck, type DoctorContext } from '../check.ts';
import { leaseState } from './gateway-process.ts';

export interface ConfiguredListener {
  setting: string;
  host: string;
  port: number;
}

/** Every listener the config enables. */
export function configuredListeners(c: GatewayConfig): ConfiguredListener[] {
  const out: ConfiguredListener[] = [];
  if (c.hl7.enabled) out.push({ setting: 'hl7.port', host: c.hl7.host, port: c.hl7.port });
  if (c.admin.enabled) out.push({ setting: 'admin.port', host: c.admin.host, port: c.admin.port });
  if (c.cdsHooks.enabled) out.push({ setting: 'cdsHooks.port', host: c.cdsHooks.host, port: c.cdsHooks.port });
  return out;
}

const who = (l: PortListener) =>
  l.pid !== undefined ? `pid ${l.pid}${l.command ? ` (${l.command})` : ''}` : 'a process this user cannot see';
const loopbackOf = (h: string) => (h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '::1' : h);

async function one(ctx: DoctorContext, l: ConfiguredListener, gatewayPid: number | undefined): Promise<CheckResult> {
  const name = `port ${l.setting}`;
  const at = `${l.host}:${l.port}`;
  if (l.port === 0) return { name, status: 'skip', evidence: `${l.setting} is 0: the system picks a free port at each start` };
  const change = `free the port (stop that program) or set ${l.setting} to a free port, then restart the gateway`;
  const table =
    ctx.platform === 'linux' ? listenersOn(l.port) : ctx.platform === 'win32' ? await windowsListenersOn(ctx.exec, l.port) : undefined;
  if (table) {
    const listeners = table.map((x) => ({ address: x.address, pid: x.pid ?? null, command: x.command ?? null }));
    const data = { host: l.host, port: l.port, gatewayPid: gatewayPid ?? null, listeners };
    if (table.length === 0) {
      return gatewayPid === undefined
        ? { name, status: 'pass', evidence: `${at} is free: the gateway can listen there when it starts`, data }
        : {
            name,
            status: 'fail',
            evidence: `${at}: nothing listens, though the gateway runs (pid ${gatewayPid}): its listener did not bind`,
            todo: 'see /ready (eyewear-gateway status) and the start log for why, then restart the gateway',
            data,
          };
    }
    const ours = table.filter((x) => gatewayPid !== undefined && x.pid === gatewayPid);
    const others = table.filter((x) => !ours.includes(x));
    if (ours.length && !others.length)
      return {
        name,
        status: 'pass',
        evidence: `${at} bound by this gateway (pid ${gatewayPid}, on ${ours.map((x) => x.address).join(', ')})`,
        data,
      };
    if (ours.length)
      return {
        name,
        status: 'warn',
        evidence: `${at} bound by this gateway (pid ${gatewayPid}) and also by ${others.map((x) => `${who(x)} on ${x.address}`).join(', ')}`,
        todo: 'two programs share the port on different addresses: clients may reach the other one; stop it or move one of them',
        data,
      };
    const unseen = others.every((x) => x.pid === undefined);
    return {
      name,
      status: unseen ? 'warn' : 'fail',
      evidence: `${at} is held by ${others.map((x) => `${who(x)} on ${x.address}`).join(', ')}, not by this gateway${gatewayPid !== undefined ? ` (pid ${gatewayPid})` : ' (not running)'}`,
      todo: unseen ? `run doctor as root to see which process; if it is not the gateway, ${change}` : change,
      data,
    };
  }
  // no socket table (Windows, macOS): whether something answers; the admin port also says whose it is
  const probe = await tcpAnswers(loopbackOf(l.host), l.port, 2000);
  const data = { host: l.host, port: l.port, gatewayPid: gatewayPid ?? null, answers: probe.ok };
  if (!probe.ok)
    return gatewayPid === undefined
      ? { name, status: 'pass', evidence: `${at} is free (${probe.code}): the gateway can listen there when it starts`, data }
      : {
          name,
          status: 'fail',
          evidence: `${at}: nothing answers (${probe.code}) though the gateway runs (pid ${gatewayPid})`,
          todo: 'see /ready and the start log for why, then restart the gateway',
          data,
        };
  if (l.setting === 'admin.port') {
    const g = await ctx.gateway();
    if (g.state === 'answering')
      return { name, status: 'pass', evidence: `${at} answers as this gateway (pid ${g.status.gateway.pid})`, data };
    return {
      name,
      status: 'fail',
      evidence: `${at} answers, but not as this gateway: ${g.state === 'not-answering' ? g.reason : g.state}`,
      todo: change,
      data,
    };
  }
  return gatewayPid === undefined
    ? { name, status: 'fail', evidence: `${at} answers though the gateway is not running: another program holds it`, todo: change, data }
    : {
        name,
        status: 'pass',
        evidence: `${at} answers and the gateway runs (pid ${gatewayPid}); which process holds it cannot be read on ${ctx.platform}`,
        data,
      };
}

export const portsCheck: DoctorCheck = {
  id: 'ports',
  timeoutMs: 8000,
  async run(ctx) {
    if (!ctx.config || !ctx.paths) return [needsConfig('ports', ctx)];
    const lease = leaseState(ctx.paths.dataDir);
    const pid = lease.state === 'alive' ? lease.holder.pid : undefined;
    if (lease.state === 'no-access')
      return configuredListeners(ctx.config).map((l) =>
        notChecked(`port ${l.setting}`, `which process is the gateway is unknown: ${lease.why}`),
      );
    const listeners = configuredListeners(ctx.config);
    if (!listeners.length)
      return [{ name: 'ports', status: 'skip', evidence: 'the config enables no listener (hl7, admin, cdsHooks all off)' }];
    return Promise.all(listeners.map((l) => one(ctx, l, pid)));
  },
};
