/**
 * `eyewear-gateway api check`: proves an API source end to end without reading into the outbox —
 * the way in (an OAuth token; a refresh-token source's rotated token is sealed as the gateway
 * itself would keep it, in the same data folder) and one page of each entity, mapped and validated
 * (issues name fields, never values). The page asked is the first page of the entity's first load.
 */
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import { apiSourceFrom } from '../../adapters/api/index.ts';
import { pageRows, streamOf } from '../../adapters/api/api-rows.ts';
import { pageUrl, rowsOf } from '../../adapters/api/entity-sync.ts';
import { firstPosition, totalOf } from '../../adapters/api/paging.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';
import { ApiError } from '../../adapters/http/http-error.ts';
import type { CliCommand, CliIo } from '../command.ts';
import { pickEntries, sourceSecretStore } from '../source-args.ts';

export const API_HELP = `eyewear-gateway api — vendor REST API sources

Usage:
  eyewear-gateway api check [--config FILE] [--source ID]
      Prove the way in and one page of each entity without importing anything: the token (a
      rotated refresh token is kept sealed, as the gateway keeps it), then the first page of each
      entity, mapped and validated. Exit 1 when a step fails, 5 when a page maps with errors.
`;

/** What to check when the way in fails, by what failed (codes only). */
function authHint(e: unknown, kind: string): string {
  const error = e instanceof ApiError ? String(e.detail.error ?? '') : '';
  if (error === 'invalid_grant')
    return '  the refresh token was refused: authorize the gateway again as the practice and put the new refresh token in auth.refreshToken';
  if (error === 'invalid_client') return '  the client id or secret was refused: check auth.clientId and auth.clientSecret';
  if (kind === 'none' || kind === 'api-key') return '  check baseUrl and the API key';
  return '  check baseUrl, auth.tokenUrl, the client id and secret and the scopes';
}

export async function apiCheck(config: GatewayConfig, id: string | undefined, io: CliIo): Promise<number> {
  const list = pickEntries(config.apis, id, { kind: 'API source', section: 'apis' }, io);
  if (!list) return 2;
  const stage = createMapStage({
    validator: createRecordValidator(),
    clock: systemClock,
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
  });
  let failed = false;
  let mapErrors = 0;
  for (const c of list) {
    let source;
    try {
      source = apiSourceFrom(c, { clock: systemClock, secrets: sourceSecretStore(config, c.id), timezone: config.gateway.timezone });
    } catch (e) {
      io.err(`${c.id}: ${(e as Error).message}`);
      failed = true;
      continue;
    }
    const src = source.source;
    io.out(`${c.id} (${src.profile.label}, ${src.baseUrl})`);
    for (const n of src.profile.notes) io.out(`  note: ${n}`);
    let conn;
    try {
      conn = await source.connect();
    } catch (e) {
      io.err(`  FAILED: ${(e as Error).message}`);
      io.err(authHint(e, src.auth.kind));
      failed = true;
      continue;
    }
    const exp = conn.auth.provider?.expiresAt();
    io.out(`  auth        ok (${src.auth.kind}${exp ? `, token expires ${new Date(exp).toISOString()}` : ''})`);
    const ctx = { source: src, timezone: config.gateway.timezone };
    for (const e of src.entities) {
      const notes: string[] = [];
      const problems: string[] = [];
      try {
        const pos = firstPosition(e.paging);
        const res = await conn.http.request({
          method: e.method,
          url: pageUrl(ctx, e, pos, e.modifiedSince?.initial),
          headers: { accept: 'application/json', ...conn.auth.headers },
          accept: e.subscribe ? [403] : [],
        });
        if (res.status === 403) {
          await res.stream().cancel();
          notes.push('not subscribed yet: the source subscribes on its first read (a new subscription can take minutes)');
        } else {
          const body = await res.json();
          const items = rowsOf(e, body);
          const total = totalOf(e.paging, body);
          notes.push(`first page ${items.length}${total !== undefined ? ` of ${total}` : ''}`);
          let records = 0;
          for (const row of pageRows(src.id, e, items)) {
            const m = stage.finish(source.mapRow(streamOf(src.id, e.name), row));
            records += m.records.length;
            for (const i of m.mapped.issues) if (i.severity === 'error') problems.push(i.message);
            for (const i of m.invalid) problems.push(`${i.type} ${i.path} ${i.problem}`);
          }
          notes.push(`${records} records`);
        }
      } catch (err) {
        problems.push((err as Error).message.slice(0, 200));
      }
      if (problems.length) mapErrors++;
      io.out(`  ${e.name.padEnd(20)} ${problems.length ? 'ERROR' : 'ok   '} ${notes.join('; ')}`);
      for (const p of [...new Set(problems)].slice(0, 5)) io.err(`  ${e.name}: ${p}`);
    }
    const gen = conn.auth.refreshGeneration?.();
    if (gen !== undefined && gen > 0)
      io.out(`  refresh token: the vendor rotated it; the newest is sealed in the data folder (generation ${gen})`);
  }
  io.out(
    failed
      ? 'api check: a step failed'
      : mapErrors
        ? `api check: ${mapErrors} entit${mapErrors === 1 ? 'y maps' : 'ies map'} with errors`
        : 'api check: every source is ready',
  );
  return failed ? 1 : mapErrors ? 5 : 0;
}

export const apiCommand: CliCommand = {
  name: 'api',
  synopsis: 'api check [--source ID]',
  summary: 'Vendor API sources: prove the token and a page of each entity,\nmapped and validated (api --help).',
  help: API_HELP,
  options: { source: { type: 'string' } },
  run({ positionals, values: v, configFile }, io) {
    const [sub] = positionals;
    if (sub === 'check') return apiCheck(io.loadConfig(configFile), v.source as string | undefined, io);
    io.err(`api needs check\n\n${API_HELP}`);
    return 2;
  },
};
