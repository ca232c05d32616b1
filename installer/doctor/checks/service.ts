/**
 * The service: installed, enabled at boot, running. Linux asks systemd (`systemctl is-enabled` /
 * `is-active`), only where systemd is the init system (sd_booted's test: /run/systemd/system
 * exists); Windows asks the service control manager (`sc query` / `sc qc`), parsed from its text.
 */
import { readFileSync } from 'node:fs';
import { SERVICE_NAME } from '../../install.ts';
import type { CheckResult, DoctorCheck, DoctorContext } from '../check.ts';

/** The name `install` registers: the systemd unit `<name>.service` and the WinSW service id. */
export { SERVICE_NAME };

const EXEC_MS = 3000;

/** `sc query NAME` text → the state word (RUNNING, STOPPED, START_PENDING…), or 'not-installed' (error 1060), or undefined. */
export function parseScQuery(text: string): string | undefined {
  if (/\b1060\b/.test(text)) return 'not-installed';
  return /^\s*STATE\s*:\s*\d+\s+(\w+)/m.exec(text)?.[1];
}

/** `sc qc NAME` text → the start type (AUTO_START, DEMAND_START, DISABLED; `AUTO_START (DELAYED)` as AUTO_START). */
export function parseScStartType(text: string): string | undefined {
  return /^\s*START_TYPE\s*:\s*\d+\s+(\w+)/m.exec(text)?.[1];
}

/** `systemctl is-enabled` → its word, or 'not-found' for a unit file that does not exist. */
function enabledWord(r: { stdout: string; stderr: string }): string {
  return r.stdout.trim() || (/no such file|not[- ]found|does not exist/i.test(r.stderr) ? 'not-found' : r.stderr.trim());
}

async function linux(ctx: DoctorContext, name: string): Promise<CheckResult> {
  const unit = `${name}.service`;
  if (!ctx.systemdBooted) {
    let init = '?';
    try {
      init = readFileSync('/proc/1/comm', 'utf8').trim();
    } catch {
      /* no /proc: said as '?' */
    }
    // is-enabled reads unit files and works without a running systemd: say at least whether it is installed
    const offline = await ctx.exec('systemctl', ['is-enabled', unit], EXEC_MS);
    const en = offline.error ? `not known (systemctl: ${offline.error})` : enabledWord(offline);
    return {
      name: 'service',
      status: 'skip',
      evidence: `systemd is not the init system here (PID 1 is ${init}; no /run/systemd/system): whether ${unit} runs cannot be checked (its unit file: ${en === 'not-found' ? 'not installed' : en})`,
      todo: 'on a machine without systemd, run the gateway under the supervisor it has and check it there',
      data: { unit, isEnabled: en, init },
    };
  }
  const enabled = await ctx.exec('systemctl', ['is-enabled', unit], EXEC_MS);
  if (enabled.error === 'ENOENT')
    return {
      name: 'service',
      status: 'skip',
      evidence: 'systemctl is not installed',
      todo: 'install systemd or check the supervisor by hand',
    };
  const active = await ctx.exec('systemctl', ['is-active', unit], EXEC_MS);
  const en =
    enabled.stdout.trim() || (/no such file|not[- ]found|does not exist/i.test(enabled.stderr) ? 'not-found' : enabled.stderr.trim());
  const act = active.stdout.trim() || active.stderr.trim();
  const data = { unit, isEnabled: en, isActive: act };
  const evidence = `${unit}: is-enabled ${en}, is-active ${act}`;
  if (en === 'not-found' || /no such file/i.test(en))
    return {
      name: 'service',
      status: 'fail',
      evidence: `${unit} is not installed`,
      todo: 'install the service: eyewear-gateway install --config FILE (as root)',
      data,
    };
  if (act === 'failed')
    return {
      name: 'service',
      status: 'fail',
      evidence,
      todo: `see why it stopped: journalctl -u ${unit} -n 50; fix what it says, then systemctl restart ${unit}`,
      data,
    };
  if (act !== 'active')
    return {
      name: 'service',
      status: 'fail',
      evidence,
      todo: `start it: systemctl start ${unit} (journalctl -u ${unit} says why if it does not stay up)`,
      data,
    };
  if (en !== 'enabled')
    return { name: 'service', status: 'warn', evidence, todo: `it runs but will not start after a reboot: systemctl enable ${unit}`, data };
  return { name: 'service', status: 'pass', evidence, data };
}

async function windows(ctx: DoctorContext, name: string): Promise<CheckResult> {
  const q = await ctx.exec('sc', ['query', name], EXEC_MS);
  if (q.error === 'ENOENT')
    return { name: 'service', status: 'skip', evidence: 'sc.exe could not be run', todo: 'check the service in services.msc' };
  const state = parseScQuery(`${q.stdout}\n${q.stderr}`);
  if (state === 'not-installed')
    return {
      name: 'service',
      status: 'fail',
      evidence: `service ${name} is not installed (sc: 1060)`,
      todo: 'install the service: eyewear-gateway install --config FILE (as Administrator)',
    };
  if (state === undefined)
    return {
      name: 'service',
      status: 'fail',
      evidence: `sc query ${name} answered without a state (exit ${q.code}): ${(q.stdout + q.stderr).trim().slice(0, 200)}`,
      todo: 'run doctor as Administrator, or check the service in services.msc',
    };
  const qc = await ctx.exec('sc', ['qc', name], EXEC_MS);
  const start = parseScStartType(qc.stdout) ?? '?';
  const data = { service: name, state, startType: start };
  const evidence = `service ${name}: ${state}, start type ${start}`;
  if (state !== 'RUNNING')
    return {
      name: 'service',
      status: 'fail',
      evidence,
      todo: `start it: sc start ${name} (the Windows event log and the WinSW log in the service folder say why it stopped)`,
      data,
    };
  if (start !== 'AUTO_START')
    return {
      name: 'service',
      status: 'warn',
      evidence,
      todo: `it runs but will not start after a reboot: sc config ${name} start= delayed-auto`,
      data,
    };
  return { name: 'service', status: 'pass', evidence, data };
}

export function serviceCheckFor(name: string): DoctorCheck {
  return {
    id: 'service',
    timeoutMs: 4 * EXEC_MS,
    async run(ctx) {
      if (ctx.platform === 'linux') return [await linux(ctx, name)];
      if (ctx.platform === 'win32') return [await windows(ctx, name)];
      return [{ name: 'service', status: 'skip', evidence: `no service manager check for ${ctx.platform}` }];
    },
  };
}

export const serviceCheck = serviceCheckFor(SERVICE_NAME);
