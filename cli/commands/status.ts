/**
 * `status`: the running gateway's /status through its admin API, after checking that what answers
 * is this config's gateway (`ownGatewayStatus`, which `send` uses too).
 */
import { readFileSync } from 'node:fs';
import type { GatewayConfig } from '../../config/schema.ts';
import { gatewayPaths } from '../../gateway/create-gateway.ts';
import { pidAlive, readDataLease } from '../../gateway/data-lease.ts';
import { GATEWAY_HEADER } from '../../gateway/admin/admin-server.ts';
import type { CliCommand, CliIo } from '../command.ts';

const STATUS_HELP = `eyewear-gateway status [--config FILE] [--json]

Reads /status from the running gateway's admin API, using the token in <dataDir>/admin.token,
and shows whether it is ready (and why not: a listener that could not bind its port).
It checks it talks to this config's gateway (same id, data folder and lease holder), not another
program or another gateway on the port. Exit 4 when the gateway cannot be reached or is not this one.`;

export const statusCommand: CliCommand = {
  name: 'status',
  synopsis: 'status [--config FILE] [--json]',
  summary: 'Ask the running gateway (admin API) how it is doing.',
  help: STATUS_HELP,
  options: { json: { type: 'boolean' } },
  run: ({ configFile, values }, io) => status(configFile, Boolean(values.json), io),
};

/**
 * This config's gateway's `/status`, or the exit code after saying why not: no token, nothing on
 * the admin port (4), another program there (4), another gateway there (4: its token, id, data
 * folder or lease holder is not this config's), or an error answer (1). `send` can use it to check
 * that the configured MLLP port is this gateway's before sending to it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON document printed as is
export async function ownGatewayStatus(
  config: GatewayConfig,
  configFile: string | undefined,
  io: Pick<CliIo, 'err'>,
): Promise<{ status: Record<string, any>; base: string; token: string } | { exit: number }> {
  const paths = gatewayPaths(config);
  const holder = readDataLease(paths.dataDir);
  let token = config.admin.token;
  if (!token) {
    try {
      token = readFileSync(paths.tokenFile, 'utf8').trim();
    } catch {
      io.err(
        `no admin token at ${paths.tokenFile}: has the gateway run with this data directory?\nwhat to do: give the running gateway's config (--config FILE), so its data folder and admin port are used`,
      );
      return { exit: 4 };
    }
  }
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}`;
  let res: Response;
  try {
    res = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  } catch {
    const held =
      holder && pidAlive(holder.pid)
        ? ` The data folder's lease names process ${holder.pid}: a gateway may run on this folder without its admin API (see its start banner: port in use?).`
        : '';
    io.err(
      `gateway not reachable at ${base} — is it running? (eyewear-gateway start${configFile ? ` --config ${configFile}` : ''})${held}`,
    );
    return { exit: 4 };
  }
  // the port may be held by another program, or by another gateway: say so rather than print its answer as ours
  const servedBy = res.headers.get(GATEWAY_HEADER);
  if (servedBy === null) {
    io.err(
      `something answers at ${base} (HTTP ${res.status}) but it is not an eyewear gateway: another program holds admin.port ${config.admin.port}, so this gateway's admin API is not listening there. Free the port or change admin.port, then restart the gateway.`,
    );
    return { exit: 4 };
  }
  if (res.status === 401) {
    io.err(
      `an eyewear gateway (id ${servedBy}) answers at ${base}, but not the one using the data folder ${paths.dataDir}: it refused that folder's admin token. Are two gateways set to the same admin.port? Check --config.`,
    );
    return { exit: 4 };
  }
  if (!res.ok) {
    io.err(`admin API answered ${res.status}: ${await res.text()}`);
    return { exit: 1 };
  }
  const s = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a JSON document printed as is
  const other =
    s.gateway?.dataDir !== undefined && s.gateway.dataDir !== paths.dataDir
      ? `uses the data folder ${String(s.gateway.dataDir)}, not ${paths.dataDir}`
      : s.gateway?.id !== config.gateway.id
        ? `is gateway ${String(s.gateway?.id)}, not ${config.gateway.id}`
        : holder && s.gateway?.pid !== undefined && s.gateway.pid !== holder.pid
          ? `is process ${String(s.gateway.pid)}, but the data folder's lease names process ${holder.pid}`
          : undefined;
  if (other) {
    io.err(`the gateway answering at ${base} ${other}: it is not the gateway of this config. Check --config and admin.port.`);
    return { exit: 4 };
  }
  // the address and token it was reached with, for a caller that asks it more (reload)
  return { status: s, base, token };
}

async function status(configFile: string | undefined, json: boolean, io: CliIo): Promise<number> {
  const got = await ownGatewayStatus(io.loadConfig(configFile), configFile, io);
  if ('exit' in got) return got.exit;
  const s = got.status;
  if (json) {
    io.out(JSON.stringify(s, null, 2));
    return 0;
  }
  const ready = s.ready as { ready: boolean; reasons: string[] } | undefined;
  const lines = [
    `gateway ${s.gateway.id} (tenant ${s.gateway.tenantId}, practice ${s.gateway.practiceId}) v${s.gateway.version}, up ${s.gateway.uptimeSeconds}s`,
    ...(ready ? [ready.ready ? 'ready: yes' : `NOT ready: ${ready.reasons.join('; ')}`] : []),
    ...Object.entries(s.adapters as Record<string, { status: string; error?: string; detail?: Record<string, unknown> }>).flatMap(
      ([id, a]) => adapterLines(id, a),
    ),
    `outbox: ${s.outbox.pending} pending, ${s.outbox.inFlight} in flight, ${s.outbox.waitingRetry} waiting retry, ${s.outbox.deadLetters} dead letters, ${s.outbox.bytes}/${s.outbox.maxBytes} bytes${s.outbox.oldestAgeSeconds !== null ? `, oldest ${s.outbox.oldestAgeSeconds}s` : ''}`,
    `sink ${s.sink.kind}: ${s.sink.connected ? 'connected' : 'NOT connected'}${s.relay.lastError ? ` (last error ${s.relay.lastError})` : ''}`,
    ...(s.identity ? identityLines(s.identity) : []),
    ...(s.outbound
      ? [
          `outbound to the PMS: ${s.outbound.pending} pending, ${s.outbound.inFlight} in flight, ${s.outbound.waitingRetry} waiting retry, ${s.outbound.deadLetters} dead letters; ${s.outbound.sink.connected ? 'reachable' : 'NOT reachable'}`,
        ]
      : []),
    `counts: ${Object.entries(s.counts)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ')}`,
    ...(Object.keys(s.ignoredByType ?? {}).length
      ? [
          `not mapped (answered AA): ${Object.entries(s.ignoredByType)
            .map(([k, v]) => `${k} ×${String(v)}`)
            .join(', ')}`,
        ]
      : []),
    ...Object.entries(s.alerts ?? {}).map(([k, v]) => `ALERT ${k}: ${(v as { detail: string }).detail}`),
    ...(s.agents ? agentLines(s.agents) : []),
  ];
  io.out(lines.join('\n'));
  return 0;
}

/** An adapter's status line; a database source also gets a line per stream (first-load progress). */
export function adapterLines(id: string, a: { status: string; error?: string; detail?: Record<string, unknown> }): string[] {
  const flat: Record<string, unknown> = {};
  const streams = new Map<string, Record<string, unknown>>();
  for (const [k, v] of Object.entries(a.detail ?? {})) {
    const dot = k.lastIndexOf('.');
    if (dot > 0) {
      const name = k.slice(0, dot);
      if (!streams.has(name)) streams.set(name, {});
      streams.get(name)![k.slice(dot + 1)] = v;
    } else flat[k] = v;
  }
  const n = (x: unknown) => Number(x).toLocaleString('en-US');
  const lines = [`adapter ${id}: ${a.status}${a.error ? ` (${a.error})` : ''} ${JSON.stringify(flat)}`];
  for (const [name, p] of streams) {
    if (p.phase === 'initial') {
      const left =
        typeof p.secondsLeft === 'number'
          ? `, ~${p.secondsLeft >= 120 ? `${Math.round(p.secondsLeft / 60)} min` : `${p.secondsLeft} s`} left`
          : '';
      lines.push(
        `  ${name}: first load ${n(p.rowsDone)}${p.rowsTotal !== undefined ? ` / ${n(p.rowsTotal)}` : ''} rows, ${n(p.rowsPerSecond ?? 0)} rows/s${left}`,
      );
    } else lines.push(`  ${name}: ${String(p.phase ?? '?')}${p.rowsDone !== undefined ? `, first load done (${n(p.rowsDone)} rows)` : ''}`);
  }
  return lines;
}

/** The agents (/status `agents`): each one not running, and each finding still active with its code, since when, and what it says. */
export function agentLines(a: {
  agents: Array<{ id: string; state: string; error?: string }>;
  active: Array<{ agent: string; code: string; severity: string; summary: string; subject?: string; since: number }>;
}): string[] {
  const down = a.agents.filter((g) => g.state !== 'running').map((g) => `agent ${g.id}: ${g.state}${g.error ? ` (${g.error})` : ''}`);
  const findings = a.active.map(
    (f) =>
      `${f.severity === 'error' ? 'FINDING' : f.severity === 'warning' ? 'finding' : 'note'} ${f.code}${f.subject ? ` (${f.subject})` : ''} since ${new Date(f.since).toISOString()}: ${f.summary}`,
  );
  const running = a.agents.filter((g) => g.state === 'running').map((g) => g.id);
  return [`agents: ${running.length ? running.join(', ') : 'none running'}; ${a.active.length} active finding(s)`, ...down, ...findings];
}

/** The device certificate (/status `identity`, gateway/identity/): its dates, or, expired or revoked, the code and what to do. */
function identityLines(i: Record<string, string>): string[] {
  const head = `device certificate ${i.serial}:`;
  if (i.code) return [`${head} ${i.state.toUpperCase()} — ${i.code}: ${i.problem}`, `  what to do: ${i.action}`];
  const state = i.state === 'valid' ? 'valid' : `${i.state}, valid`;
  return [
    `${head} ${state} until ${i.notAfter}, renews from ${i.renewAt}${i.lastRenewalError ? `; last renewal failed: ${i.lastRenewalError}` : ''}`,
  ];
}
