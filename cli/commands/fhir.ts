/**
 * `eyewear-gateway fhir …`: the technician's FHIR commands.
 *   fhir jwks   — the public JWKS of a source's client key (made on first use), to register with the
 *                 vendor or to serve at the source's `jwksUrl`.
 *   fhir check  — proves a source end to end without reading into the outbox: discovery, a token,
 *                 `/metadata` (R4, software, what each resource supports), the strategy per resource,
 *                 and one page of each resource mapped and validated (issues name fields, never values).
 */
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import { fhirSourceFrom, strategyLabel } from '../../adapters/fhir/index.ts';
import { resourceRow } from '../../adapters/fhir/fhir-rows.ts';
import { loadOrCreateClientKey } from '../../adapters/http/client-keys.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createMapStage } from '../../gateway/pipeline/map-stage.ts';
import type { CliCommand, CliIo } from '../command.ts';
import { pickEntries, sourceSecretStore } from '../source-args.ts';

export const FHIR_HELP = `eyewear-gateway fhir — FHIR R4 sources

Usage:
  eyewear-gateway fhir jwks [--config FILE] [--source ID]
      Print the public JWKS of the source's client key (made in the data folder on first use; the
      private key never leaves it). Register it with the vendor, or serve it at the source's jwksUrl.
  eyewear-gateway fhir check [--config FILE] [--source ID]
      Prove the connection without importing anything: SMART discovery, a token, /metadata (R4 only),
      the sync strategy per resource, and one page of each resource mapped and validated.
      Exit 1 when a step fails, 5 when a page maps with errors.
`;

export async function fhirJwks(config: GatewayConfig, id: string | undefined, io: CliIo): Promise<number> {
  const list = pickEntries(config.fhir, id, { kind: 'FHIR source', section: 'fhir' }, io);
  if (!list) return 2;
  if (list.length > 1 && !id) {
    io.err(`several FHIR sources: name one with --source (${list.map((f) => f.id).join(', ')})`);
    return 2;
  }
  const c = list[0];
  try {
    const key = await loadOrCreateClientKey(sourceSecretStore(config, c.id), c.keyAlg);
    io.out(JSON.stringify(key.jwks, null, 2));
    if (key.created) io.err(`made a new ${c.keyAlg} key pair for ${c.id} (kid ${key.kid}); register this JWKS with the vendor`);
    return 0;
  } catch (e) {
    io.err(`${c.id}: ${(e as Error).message}`);
    return 1;
  }
}

export async function fhirCheck(config: GatewayConfig, id: string | undefined, io: CliIo): Promise<number> {
  const list = pickEntries(config.fhir, id, { kind: 'FHIR source', section: 'fhir' }, io);
  if (!list) return 2;
  const stage = createMapStage({
    validator: createRecordValidator(),
    clock: systemClock,
    identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id },
  });
  let failed = false;
  let mapErrors = 0;
  for (const c of list) {
    const source = fhirSourceFrom(c, { clock: systemClock, secrets: sourceSecretStore(config, c.id) });
    io.out(`${c.id} (${source.profile.label}, ${c.baseUrl})`);
    for (const n of source.profile.notes) io.out(`  note: ${n}`);
    let conn;
    try {
      conn = await source.connect();
    } catch (e) {
      io.err(`  FAILED: ${(e as Error).message}`);
      io.err('  check baseUrl, clientId, the key registered with the vendor (eyewear-gateway fhir jwks) and the scopes');
      failed = true;
      continue;
    }
    const exp = conn.auth.expiresAt();
    io.out(
      `  token       ok (kid ${conn.key.kid}, ${c.keyAlg}, expires ${exp ? new Date(exp).toISOString() : '?'}, scope ${conn.auth.grantedScope() ?? 'as asked'})`,
    );
    io.out(
      `  server      FHIR ${conn.capabilities.fhirVersion}, ${conn.capabilities.software}${conn.capabilities.operations.includes('export') ? ', Bulk $export' : ''}`,
    );
    for (const [r, st] of conn.strategies) {
      if ('problem' in st) {
        io.err(`  ${r.padEnd(18)} ERROR ${st.problem}`);
        failed = true;
        continue;
      }
      const notes = [`strategy ${strategyLabel(st)}`];
      const problems: string[] = [];
      if (st.kind === 'bulk') notes.push('read by Bulk export (a page is not searched: the vendor searches it only within a patient)');
      else if (conn.capabilities.resources[r]?.interactions.includes('search-type')) {
        try {
          const bundle = (await conn.http.getJson(
            `${c.baseUrl.replace(/\/+$/, '')}/${r}?_count=${Math.min(c.pageSize ?? source.profile.pageSize, 50)}`,
          )) as {
            entry?: { resource?: unknown }[];
            total?: number;
          };
          const entries = (bundle.entry ?? []).map((e) => resourceRow(e.resource, undefined)).filter((x) => x !== undefined);
          notes.push(`first page ${entries.length}${typeof bundle.total === 'number' ? ` of ${bundle.total}` : ''}`);
          let records = 0;
          for (const row of entries) {
            const m = stage.finish(source.rowMapper.map(row));
            records += m.records.length;
            for (const i of m.mapped.issues) if (i.severity === 'error') problems.push(`${row.pk.split('/')[0]}: ${i.message}`);
            for (const i of m.invalid) problems.push(`${i.type} ${i.path} ${i.problem}`);
          }
          notes.push(`${records} records`);
        } catch (e) {
          problems.push((e as Error).message.slice(0, 200));
        }
      } else notes.push('not searchable: read by bulk export only');
      if (problems.length) mapErrors++;
      io.out(`  ${r.padEnd(18)} ${problems.length ? 'ERROR' : 'ok   '} ${notes.join('; ')}`);
      for (const p of [...new Set(problems)].slice(0, 5)) io.err(`  ${r}: ${p}`);
    }
    const unmapped = Object.entries(source.unmapped());
    if (unmapped.length) io.out(`  unmapped    ${unmapped.map(([t, n]) => `${t} ${n}`).join(', ')} (counted, not imported)`);
  }
  io.out(
    failed
      ? 'fhir check: a step failed'
      : mapErrors
        ? `fhir check: ${mapErrors} resource type(s) map with errors`
        : 'fhir check: every source is ready',
  );
  return failed ? 1 : mapErrors ? 5 : 0;
}

export const fhirCommand: CliCommand = {
  name: 'fhir',
  synopsis: 'fhir jwks|check [--source ID]',
  summary:
    "FHIR sources: print the client key's public JWKS for registration;\nprove discovery, token, /metadata and a page of each resource (fhir --help).",
  help: FHIR_HELP,
  options: { source: { type: 'string' } },
  run({ positionals, values: v, configFile }, io) {
    const [sub] = positionals;
    if (sub === 'jwks') return fhirJwks(io.loadConfig(configFile), v.source as string | undefined, io);
    if (sub === 'check') return fhirCheck(io.loadConfig(configFile), v.source as string | undefined, io);
    io.err(`fhir needs jwks or check\n\n${FHIR_HELP}`);
    return 2;
  },
};
