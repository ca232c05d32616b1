/**
 * Each source: how the running gateway sees it (`/status` adapters: up, degraded or down, its
 * error, and its last-activity figures), or — when no gateway answers — a direct, cheap probe:
 * a database connection and `SELECT 1` (as `db check` opens it), a FHIR server's `/metadata`, a
 * folder's access, an SFTP/FTPS server's TCP port. The deeper tests stay with their commands
 * (`db check`, `fhir check`, `api check`): they map rows, and a FHIR token would need the sealed
 * client secret, which doctor does not open (opening it makes a key on a first run).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { connectionOf, openSqlDriver } from '../../../adapters/sql/index.ts';
import type { GatewayConfig } from '../../../config/schema.ts';
import { needsConfig, type CheckResult, type DoctorCheck } from '../check.ts';
import { tcpAnswers } from '../port-owner.ts';

const PROBE_MS = 5000;

function fromStatus(id: string, a: { status: string; error?: string; detail?: Record<string, unknown> }): CheckResult {
  const name = `source ${id}`;
  const last = Object.entries(a.detail ?? {}).filter(([k]) => /(^|\.)last/i.test(k));
  const figures = Object.entries(a.detail ?? {})
    .filter(([, v]) => typeof v === 'number')
    .slice(0, 8)
    .map(([k, v]) => `${k} ${String(v)}`);
  const ev = `${a.status}${a.error ? ` (${a.error})` : ''}${last.length ? `; ${last.map(([k, v]) => `${k} ${String(v)}`).join(', ')}` : ''}${figures.length ? `; ${figures.join(', ')}` : ''} (from the running gateway)`;
  const data = { status: a.status, error: a.error ?? null, detail: a.detail ?? {} };
  if (a.status === 'up') return { name, status: 'pass', evidence: ev, data };
  if (a.status === 'degraded')
    return {
      name,
      status: 'warn',
      evidence: ev,
      todo: `see the gateway log for adapter ${id}; eyewear-gateway status shows the same`,
      data,
    };
  return {
    name,
    status: 'fail',
    evidence: ev,
    todo: `see the gateway log for adapter ${id} and fix what its error names; the source's own check command goes deeper (db check, fhir check, api check)`,
    data,
  };
}

async function probeDatabase(c: GatewayConfig['databases'][number]): Promise<CheckResult> {
  const name = `source ${c.id}`;
  const where = c.engine === 'sqlite' ? c.file : `${c.database}@${c.host}${c.port ? `:${c.port}` : ''}`;
  const t0 = performance.now();
  try {
    const d = await openSqlDriver({ ...connectionOf(c), poolSize: 1, statementTimeoutMs: PROBE_MS });
    try {
      await d.query('SELECT 1 AS ok');
    } finally {
      await d.close();
    }
    return {
      name,
      status: 'pass',
      evidence: `${c.engine} ${where}: connected and answered SELECT 1 in ${Math.round(performance.now() - t0)} ms (probed directly; the gateway is not answering)`,
    };
  } catch (e) {
    return {
      name,
      status: 'fail',
      evidence: `${c.engine} ${where}: cannot connect: ${(e as Error).message.slice(0, 200)}`,
      todo: `check host, port, database, user and password (databases[] entry ${c.id}); eyewear-gateway db check --database ${c.id} says more`,
    };
  }
}

async function probeFhir(c: GatewayConfig['fhir'][number], signal: AbortSignal): Promise<CheckResult> {
  const name = `source ${c.id}`;
  const url = `${c.baseUrl.replace(/\/$/, '')}/metadata`;
  try {
    const res = await fetch(url, {
      headers: { accept: 'application/fhir+json' },
      signal: AbortSignal.any([signal, AbortSignal.timeout(PROBE_MS)]),
    });
    const body = res.ok ? ((await res.json().catch(() => ({}))) as { fhirVersion?: string }) : {};
    if (res.ok || res.status === 401 || res.status === 403)
      return {
        name,
        status: 'pass',
        evidence: `${url} answered HTTP ${res.status}${body.fhirVersion ? ` (FHIR ${body.fhirVersion})` : ''}; the token was not tried (eyewear-gateway fhir check --source ${c.id})`,
      };
    return {
      name,
      status: 'fail',
      evidence: `${url} answered HTTP ${res.status}`,
      todo: `check fhir[] ${c.id} baseUrl; eyewear-gateway fhir check --source ${c.id} says more`,
    };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return {
      name,
      status: 'fail',
      evidence: `${url}: ${err.cause?.code ?? err.name}`,
      todo: `check fhir[] ${c.id} baseUrl and that this machine reaches it`,
    };
  }
}

async function probeFiles(c: GatewayConfig['files'][number]): Promise<CheckResult> {
  const name = `source ${c.id}`;
  if (c.source === 'folder') {
    try {
      if (!(await stat(c.dir)).isDirectory())
        return { name, status: 'fail', evidence: `${c.dir} is not a folder`, todo: `set files[] ${c.id} dir to the export folder` };
      await access(c.dir, constants.R_OK | constants.W_OK);
      return { name, status: 'pass', evidence: `folder ${c.dir}: readable and writable (processed/ and error/ are made in it)` };
    } catch (e) {
      return {
        name,
        status: 'fail',
        evidence: `folder ${c.dir}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        todo: "check the path, that the share is mounted, and the service user's rights on it",
      };
    }
  }
  const s = c.source === 'sftp' ? c.sftp : c.ftps;
  const t = await tcpAnswers(s.host, s.port, PROBE_MS);
  return t.ok
    ? { name, status: 'pass', evidence: `${c.source} ${s.host}:${s.port}: TCP connected in ${t.ms} ms; login not tried` }
    : {
        name,
        status: 'fail',
        evidence: `${c.source} ${s.host}:${s.port}: ${t.code}`,
        todo: `check files[] ${c.id} ${c.source}.host/port and the firewall`,
      };
}

export const sourcesCheck: DoctorCheck = {
  id: 'sources',
  timeoutMs: 12_000,
  async run(ctx, signal) {
    if (!ctx.config) return [needsConfig('sources', ctx)];
    const c = ctx.config;
    const g = await ctx.gateway();
    if (g.state === 'answering') {
      const adapters = Object.entries(
        (g.status.adapters ?? {}) as Record<string, { status: string; error?: string; detail?: Record<string, unknown> }>,
      );
      if (!adapters.length) return [{ name: 'sources', status: 'skip', evidence: 'the running gateway has no source' }];
      return adapters.map(([id, a]) => fromStatus(id, a));
    }
    const probes: Promise<CheckResult>[] = [
      ...c.databases.map(probeDatabase),
      ...c.fhir.map((f) => probeFhir(f, signal)),
      ...c.files.map(probeFiles),
      ...c.apis.map(
        async (a): Promise<CheckResult> => ({
          name: `source ${a.id}`,
          status: 'skip',
          evidence: 'not probed without the running gateway (its token is sealed)',
          todo: `eyewear-gateway api check --source ${a.id}`,
        }),
      ),
    ];
    if (!probes.length)
      return [
        {
          name: 'sources',
          status: 'skip',
          evidence: c.hl7.enabled ? 'only the MLLP listener (see port hl7.port)' : 'no source configured',
        },
      ];
    return Promise.all(probes);
  },
};
