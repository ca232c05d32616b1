/**
 * The CLI's commands, separated from process wiring so tests run them in-process.
 * `runCommand` returns the exit code, or null for `start` (which runs until a signal).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GatewayConfig } from '../config/schema.ts';
import { createRecordValidator } from '../adapters/canonical/validator.ts';
import { CodecError, type SourceCodec } from '../adapters/contracts.ts';
import { connectMllp, createHl7Codec, frameMllp, readAck, splitHl7Messages, type Hl7CodecOptions, type MllpClient } from '../adapters/hl7v2/index.ts';
import { HL7_PROFILES } from '../adapters/hl7v2/profiles.ts';
import { FILE_PROFILE_NAMES, importOptionsOf, isFileProfileName, type FileReadConfig } from '../adapters/file/index.ts';
import { detectFileFormat, FILE_FORMATS, FileFormatError, type FileFormat } from '../adapters/file/file-formats.ts';
import { kindsFor, mapFileRow, rowsOf } from '../adapters/file/file-import.ts';
import { basename } from 'node:path';
import { systemClock } from './clock.ts';
import { ErrorCodes, isGatewayError, type GatewayError } from './errors.ts';
import { createGateway, gatewayPaths, resolveTimezone, type Gateway } from './create-gateway.ts';
import { acquireDataLease, HANDOVER_ENV, pidAlive, readDataLease, type DataLease } from './data-lease.ts';
import { GATEWAY_HEADER } from './admin/admin-server.ts';
import { startProblem } from './status-report.ts';
import { createMapStage } from './pipeline/map-stage.ts';
import { gatewayVersion } from './version.ts';
import { DB_HELP, dbCheck, dbRealtime } from './cli-db.ts';
import { KEYS_HELP, keysCommand } from './cli-keys.ts';
import { CHECK_CONFIG_HELP, checkConfig, MIGRATE_CONFIG_HELP, migrateConfig } from './cli-check-config.ts';
import { UNSEAL_HELP, unseal } from './cli-unseal.ts';

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  readFile(path: string): string;
  loadConfig(file?: string): GatewayConfig;
  /** Asks the technician (consent prompts); absent when there is no terminal. */
  confirm?(question: string): Promise<string>;
  /** Asks for a secret without echo (key passphrases); absent when there is no terminal. */
  askSecret?(prompt: string): Promise<string>;
  /** The environment (`--passphrase-env VAR` reads VAR here). */
  env?: Readonly<Record<string, string | undefined>>;
}

const USAGE = `eyewear-gateway — eyewear-ML edge gateway

Usage: eyewear-gateway <command> [options]

Commands:
  start [--config FILE]              Run the gateway in the foreground (embedded defaults without --config).
  check-config FILE [--offline]      Validate a config file as start would; list every bad field
                                     (--offline: without reading secret files or variables).
  migrate-config FILE                Upgrade an older config file to the current version (keeps a backup).
  status [--config FILE] [--json]    Ask the running gateway (admin API) how it is doing.
  preview FILE... [--profile NAME] [--format F] [--source ID] [--config FILE]
                                     Parse, map and validate source files (HL7, CSV, XML, JSON/NDJSON, FHIR);
                                     print each canonical record as one JSON line on stdout, issues on stderr.
                                     Touches neither outbox nor network.
  send FILE... [--host H] [--port P] Send the HL7 messages in FILE(s) over MLLP and print each answer's MSA
                                     (a technician's check that the listener is reachable and maps).
  unseal FILE... [--config FILE]     Decrypt file-sink NDJSON files (records-YYYY-MM-DD.ndjson) to JSON lines.
  keys export|import FILE [--passphrase-env VAR] [--replace]
                                     Back up the seal key under a passphrase, or restore it (checked against the outbox).
  db check|realtime ...              Database sources: check streams before use (EXPLAIN, columns, first row);
                                     PostgreSQL real-time triggers, installed only with consent (db --help).
  version                            Print the version.
  help [COMMAND]                     This text; every command also takes --help.

Exit codes: 0 ok · 1 runtime failure · 2 usage error · 3 invalid config · 4 gateway not reachable · 5 preview found errors
Docs: README.md, config/REFERENCE.md, docs/ERRORS.md`;

const HELP: Record<string, string> = {
  start: 'eyewear-gateway start [--config FILE]\n\nRuns the gateway until SIGINT/SIGTERM. Without --config it uses the embedded defaults:\nMLLP on 127.0.0.1:2575, admin API on 127.0.0.1:8480, local file sink, data in ./data.\nEnvironment overrides: EWML__SECTION__FIELD=value (e.g. EWML__HL7__PORT=2576).\n\nOne gateway per data folder: a second start on the same folder stops with GW_DATA_DIR_IN_USE, naming\nthe running one\'s pid (the lease is <dataDir>/gateway.lock; a killed gateway\'s lease is taken over).\nThe banner names every listener or source that did not start, its cause (EADDRINUSE: port in use) and\nwhat to do; those are retried. Exit 1 when nothing could start (no source and no admin API).',
  'check-config': CHECK_CONFIG_HELP,
  'migrate-config': MIGRATE_CONFIG_HELP,
  status: 'eyewear-gateway status [--config FILE] [--json]\n\nReads /status from the running gateway\'s admin API, using the token in <dataDir>/admin.token,\nand shows whether it is ready (and why not: a listener that could not bind its port).\nIt checks it talks to this config\'s gateway (same id, data folder and lease holder), not another\nprogram or another gateway on the port. Exit 4 when the gateway cannot be reached or is not this one.',
  preview: `eyewear-gateway preview FILE... [--profile NAME] [--format F] [--source ID] [--config FILE]\n\nRuns parse → map → validate on each message or row of each file: HL7 v2 (several messages or a\nFHS/BHS batch per file), CSV, XML, JSON, NDJSON, FHIR R4 (bundle, resource or NDJSON). The format\nis picked by name and content, or --format ${FILE_FORMATS.join('|')}. Prints canonical records as JSON\nlines on stdout; issues go to stderr (with file#row).\nHL7 profiles: ${Object.keys(HL7_PROFILES).join(', ')}.\nFile profiles: ${FILE_PROFILE_NAMES.join(', ')}; --source ID uses a files[] entry of the config\n(its profile, kinds and CSV settings). Exit 5 when any message or row failed.`,
  unseal: UNSEAL_HELP,
  send: 'eyewear-gateway send FILE... [--host H] [--port P] [--config FILE]\n\nSends every HL7 message in FILE(s) over MLLP (default: the configured listener, 127.0.0.1:2575)\nand prints one line per answer: control id, MSA-1 code, and the ERR text if any. Exit 1 if any\nanswer was not AA/CA or none came.',
  version: 'eyewear-gateway version\n\nPrints the version.',
  db: DB_HELP,
  keys: KEYS_HELP,
};

export async function runCommand(argv: string[], io: CliIo): Promise<number | null> {
  const [command = 'help', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    io.out(rest[0] && HELP[rest[0]] ? HELP[rest[0]] : USAGE);
    return 0;
  }
  if ((command === 'version' || command === '--version') && !rest.includes('--help') && !rest.includes('-h')) { io.out(gatewayVersion()); return 0; }
  if (command === 'version') { io.out(HELP.version); return 0; }
  if (!HELP[command]) { io.err(`unknown command "${command}"\n\n${USAGE}`); return 2; }
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: {
        help: { type: 'boolean', short: 'h' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, profile: { type: 'string' }, format: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
        database: { type: 'string' }, source: { type: 'string' }, 'admin-user': { type: 'string' }, 'admin-password-env': { type: 'string' }, yes: { type: 'boolean' },
        'passphrase-env': { type: 'string' }, replace: { type: 'boolean' }, offline: { type: 'boolean' },
      },
    });
  } catch (e) {
    io.err(`${(e as Error).message}\n\n${HELP[command]}`);
    return 2;
  }
  if (args.values.help) { io.out(HELP[command]); return 0; }
  const configFile = args.values.config as string | undefined;
  switch (command) {
    case 'check-config': return checkConfig(args.positionals, { offline: Boolean(args.values.offline) }, io);
    case 'migrate-config': return migrateConfig(args.positionals, io);
    case 'start': return start(configFile, io);
    case 'status': return status(configFile, Boolean(args.values.json), io);
    case 'preview': return preview(args.positionals, { profile: args.values.profile as string | undefined, format: args.values.format as string | undefined, source: args.values.source as string | undefined, configFile }, io);
    case 'send': return send(args.positionals, { host: args.values.host as string | undefined, port: args.values.port as string | undefined, configFile }, io);
    case 'unseal': return unseal(args.positionals, configFile, io);
    case 'keys': return keysCommand(args.positionals, { passphraseEnv: args.values['passphrase-env'] as string | undefined, replace: Boolean(args.values.replace), configFile }, io);
    case 'db': {
      const [sub, action] = args.positionals;
      const v = args.values as Record<string, string | boolean | undefined>;
      if (sub === 'check') return dbCheck(io.loadConfig(configFile), v.database as string | undefined, io);
      if (sub === 'realtime') return dbRealtime(io.loadConfig(configFile), action, { database: v.database as string | undefined, adminUser: v['admin-user'] as string | undefined, adminPasswordEnv: v['admin-password-env'] as string | undefined, yes: Boolean(v.yes), confirm: io.confirm }, io);
      io.err(`db needs check or realtime\n\n${DB_HELP}`);
      return 2;
    }
    default: return 2;
  }
}

async function start(configFile: string | undefined, io: CliIo): Promise<number | null> {
  const config = io.loadConfig(configFile);
  // a start that must stop (GW_DATA_DIR_IN_USE, GW_KEY_MISSING, GW_OUTBOX_IO…) says its code, the path and what to do: no stack, no SQLite text
  const refused = (e: GatewayError) => { io.err(`error ${e.code}: ${e.message}\nwhat to do: ${ErrorCodes[e.code].action}`); return 1; };
  // the data folder's lease before anything reads or writes the folder: a second gateway on it stops here
  let lease: DataLease;
  try { lease = acquireDataLease(gatewayPaths(config).dataDir, { handOverToken: io.env?.[HANDOVER_ENV] }); } catch (e) {
    if (!isGatewayError(e)) throw e;
    return refused(e);
  }
  // an exit by a crash frees it too; a SIGKILL leaves it stale, for the next start to take over
  const releaseOnExit = () => { lease.release(); };
  process.once('exit', releaseOnExit);
  const letGo = () => { lease.release(); process.removeListener('exit', releaseOnExit); };
  let gw: Gateway;
  try { gw = createGateway({ config, lease }); } catch (e) {
    letGo();
    if (!isGatewayError(e)) throw e;
    return refused(e);
  }
  // a signal during the start (its first listeners may already accept) stops the gateway once the start has settled
  let starting: Promise<unknown> = Promise.resolve();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    io.err(`received ${signal}; stopping (in-flight messages finish first)`);
    starting.then(() => gw.stop()).then(
      () => { letGo(); if (process.exitCode === undefined) process.exitCode = 0; },
      (err: unknown) => { letGo(); io.err(`stop failed: ${(err as Error).message}`); process.exitCode = 1; },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  try {
    const started = gw.start();
    starting = started.catch(() => undefined);
    await started;
  } catch (e) {
    letGo();
    if (!isGatewayError(e)) throw e;
    return refused(e);
  }
  const report = gw.startReport();
  const failed = report.components.filter((c) => c.state === 'failed');
  const problems = failed.map((c) => `  ${startProblem(c)}`);
  if (report.nothingRunning) {
    io.err(`eyewear-gateway ${gatewayVersion()} did not start: nothing could run (no source and no admin API)\n${problems.join('\n')}\nstopping (exit 1)`);
    await gw.stop().catch((err: unknown) => io.err(`stop failed: ${(err as Error).message}`));
    letGo();
    return 1;
  }
  const one = (component: string) => report.components.find((c) => c.component === component);
  const hl7 = one('adapter:hl7v2');
  const hl7Port = gw.parts.adapters.find((a) => a.id === 'hl7v2')?.health().detail?.port;
  const mllp = !config.hl7.enabled ? 'off' : hl7?.state === 'failed' ? 'NOT listening' : `${config.hl7.host}:${String(hl7Port ?? config.hl7.port)}`;
  const adminState = one('admin')?.state;
  const admin = !config.admin.enabled ? 'off' : adminState === 'failed' ? 'NOT listening' : `http://${config.admin.host}:${config.admin.port} (token ${config.admin.token ? 'from the config' : `in ${gw.parts.paths.tokenFile}`})`;
  const parts = `MLLP ${mllp}, admin ${admin}, sink ${config.relay.sink}${config.relay.sink === 'file' ? ` → ${gw.parts.paths.fileSinkDir}` : ''}`;
  if (failed.length === 0) io.err(`eyewear-gateway ${gatewayVersion()} running — ${parts}. Ctrl-C stops.`);
  else io.err(`eyewear-gateway ${gatewayVersion()} started, but not all of it — ${parts}\n${problems.join('\n')}\n  What did not start is retried; \`eyewear-gateway status\` and /ready show it. Ctrl-C stops.`);
  return null;
}

/**
 * This config's gateway's `/status`, or the exit code after saying why not: no token, nothing on
 * the admin port (4), another program there (4), another gateway there (4: its token, id, data
 * folder or lease holder is not this config's), or an error answer (1). `send` can use it to check
 * that the configured MLLP port is this gateway's before sending to it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON document printed as is
export async function ownGatewayStatus(config: GatewayConfig, configFile: string | undefined, io: Pick<CliIo, 'err'>): Promise<{ status: Record<string, any> } | { exit: number }> {
  const paths = gatewayPaths(config);
  const holder = readDataLease(paths.dataDir);
  let token = config.admin.token;
  if (!token) {
    try { token = readFileSync(paths.tokenFile, 'utf8').trim(); } catch { io.err(`no admin token at ${paths.tokenFile}: has the gateway run with this data directory?`); return { exit: 4 }; }
  }
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}`;
  let res: Response;
  try {
    res = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  } catch {
    const held = holder && pidAlive(holder.pid) ? ` The data folder's lease names process ${holder.pid}: a gateway may run on this folder without its admin API (see its start banner: port in use?).` : '';
    io.err(`gateway not reachable at ${base} — is it running? (eyewear-gateway start${configFile ? ` --config ${configFile}` : ''})${held}`);
    return { exit: 4 };
  }
  // the port may be held by another program, or by another gateway: say so rather than print its answer as ours
  const servedBy = res.headers.get(GATEWAY_HEADER);
  if (servedBy === null) {
    io.err(`something answers at ${base} (HTTP ${res.status}) but it is not an eyewear gateway: another program holds admin.port ${config.admin.port}, so this gateway's admin API is not listening there. Free the port or change admin.port, then restart the gateway.`);
    return { exit: 4 };
  }
  if (res.status === 401) {
    io.err(`an eyewear gateway (id ${servedBy}) answers at ${base}, but not the one using the data folder ${paths.dataDir}: it refused that folder's admin token. Are two gateways set to the same admin.port? Check --config.`);
    return { exit: 4 };
  }
  if (!res.ok) { io.err(`admin API answered ${res.status}: ${await res.text()}`); return { exit: 1 }; }
  const s = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- a JSON document printed as is
  const other = s.gateway?.dataDir !== undefined && s.gateway.dataDir !== paths.dataDir ? `uses the data folder ${String(s.gateway.dataDir)}, not ${paths.dataDir}`
    : s.gateway?.id !== config.gateway.id ? `is gateway ${String(s.gateway?.id)}, not ${config.gateway.id}`
      : holder && s.gateway?.pid !== undefined && s.gateway.pid !== holder.pid ? `is process ${String(s.gateway.pid)}, but the data folder's lease names process ${holder.pid}`
        : undefined;
  if (other) { io.err(`the gateway answering at ${base} ${other}: it is not the gateway of this config. Check --config and admin.port.`); return { exit: 4 }; }
  return { status: s };
}

async function status(configFile: string | undefined, json: boolean, io: CliIo): Promise<number> {
  const got = await ownGatewayStatus(io.loadConfig(configFile), configFile, io);
  if ('exit' in got) return got.exit;
  const s = got.status;
  if (json) { io.out(JSON.stringify(s, null, 2)); return 0; }
  const ready = s.ready as { ready: boolean; reasons: string[] } | undefined;
  const lines = [
    `gateway ${s.gateway.id} (tenant ${s.gateway.tenantId}, practice ${s.gateway.practiceId}) v${s.gateway.version}, up ${s.gateway.uptimeSeconds}s`,
    ...(ready ? [ready.ready ? 'ready: yes' : `NOT ready: ${ready.reasons.join('; ')}`] : []),
    ...Object.entries(s.adapters as Record<string, { status: string; error?: string; detail?: Record<string, unknown> }>).flatMap(([id, a]) => adapterLines(id, a)),
    `outbox: ${s.outbox.pending} pending, ${s.outbox.inFlight} in flight, ${s.outbox.waitingRetry} waiting retry, ${s.outbox.deadLetters} dead letters, ${s.outbox.bytes}/${s.outbox.maxBytes} bytes${s.outbox.oldestAgeSeconds !== null ? `, oldest ${s.outbox.oldestAgeSeconds}s` : ''}`,
    `sink ${s.sink.kind}: ${s.sink.connected ? 'connected' : 'NOT connected'}${s.relay.lastError ? ` (last error ${s.relay.lastError})` : ''}`,
    ...(s.outbound ? [`outbound to the PMS: ${s.outbound.pending} pending, ${s.outbound.inFlight} in flight, ${s.outbound.waitingRetry} waiting retry, ${s.outbound.deadLetters} dead letters; ${s.outbound.sink.connected ? 'reachable' : 'NOT reachable'}`] : []),
    `counts: ${Object.entries(s.counts).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`,
    ...(Object.keys(s.ignoredByType ?? {}).length ? [`not mapped (answered AA): ${Object.entries(s.ignoredByType).map(([k, v]) => `${k} ×${String(v)}`).join(', ')}`] : []),
    ...Object.entries(s.alerts ?? {}).map(([k, v]) => `ALERT ${k}: ${(v as { detail: string }).detail}`),
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
    if (dot > 0) { const name = k.slice(0, dot); if (!streams.has(name)) streams.set(name, {}); streams.get(name)![k.slice(dot + 1)] = v; } else flat[k] = v;
  }
  const n = (x: unknown) => Number(x).toLocaleString('en-US');
  const lines = [`adapter ${id}: ${a.status}${a.error ? ` (${a.error})` : ''} ${JSON.stringify(flat)}`];
  for (const [name, p] of streams) {
    if (p.phase === 'initial') {
      const left = typeof p.secondsLeft === 'number' ? `, ~${p.secondsLeft >= 120 ? `${Math.round(p.secondsLeft / 60)} min` : `${p.secondsLeft} s`} left` : '';
      lines.push(`  ${name}: first load ${n(p.rowsDone)}${p.rowsTotal !== undefined ? ` / ${n(p.rowsTotal)}` : ''} rows, ${n(p.rowsPerSecond ?? 0)} rows/s${left}`);
    } else lines.push(`  ${name}: ${String(p.phase ?? '?')}${p.rowsDone !== undefined ? `, first load done (${n(p.rowsDone)} rows)` : ''}`);
  }
  return lines;
}

async function preview(files: string[], o: { profile?: string; format?: string; source?: string; configFile?: string }, io: CliIo): Promise<number> {
  if (files.length === 0) { io.err(`preview needs at least one FILE\n\n${HELP.preview}`); return 2; }
  const config = io.loadConfig(o.configFile);
  const hl7Profile = (o.profile && o.profile in HL7_PROFILES ? o.profile : config.hl7.profile) as GatewayConfig['hl7']['profile'];
  const fileProfiles: readonly string[] = FILE_PROFILE_NAMES;
  if (o.profile && !(o.profile in HL7_PROFILES) && !fileProfiles.includes(o.profile)) { io.err(`unknown profile "${o.profile}"; HL7: ${Object.keys(HL7_PROFILES).join(', ')}; files: ${fileProfiles.join(', ')}`); return 2; }
  if (o.format && !(FILE_FORMATS as readonly string[]).includes(o.format)) { io.err(`unknown format "${o.format}"; one of: ${FILE_FORMATS.join(', ')}`); return 2; }
  const source = o.source ? config.files.find((f) => f.id === o.source) : undefined;
  if (o.source && !source) { io.err(`no files entry "${o.source}" in the config`); return 2; }
  const timezone = resolveTimezone(config.gateway.timezone);
  const hl7 = createHl7Codec({ profile: hl7Profile, timezone, overrides: config.hl7.profileOverrides as Hl7CodecOptions['overrides'] }) as SourceCodec<unknown>;
  const stage = createMapStage({ validator: createRecordValidator(), clock: systemClock, identity: { tenantId: config.gateway.tenantId, practiceId: config.gateway.practiceId, gatewayId: config.gateway.id } });
  let failed = 0;
  let total = 0;
  let recordsOut = 0;
  const show = (where: string, r: ReturnType<typeof stage.preview>) => {
    // a message or row with an error is rejected whole by the gateway: nothing of it is shown as a record
    if (!r.issues.some((x) => x.severity === 'error')) for (const rec of r.records) { io.out(JSON.stringify(rec)); recordsOut++; }
    if (r.unsupported) io.err(`${where}: ${r.kind}${r.messageId ? ` (${r.messageId})` : ''}: not mapped (${r.unsupported})`);
    for (const is of r.issues) io.err(`${where}: ${is.severity} ${is.code}: ${is.message}${is.location ? ` at ${[is.location.segment, is.location.sequence, is.location.field].filter(Boolean).join('-')}` : ''}`);
    if (r.issues.some((x) => x.severity === 'error')) failed++;
  };
  for (const file of files) {
    let format: string | undefined = o.format;
    try { format ??= await detectFileFormat(file); } catch (e) { io.err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`); failed++; continue; }
    if (!format) { io.err(`${file}: format not recognised (use --format ${FILE_FORMATS.join('|')})`); failed++; continue; }
    if (format === 'hl7v2') {
      let text: string;
      try { text = io.readFile(file); } catch (e) { io.err(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`); failed++; continue; }
      const messages = splitHl7Messages(text);
      messages.forEach((m, i) => {
        total++;
        const where = `${file}${messages.length > 1 ? `#${i + 1}` : ''}`;
        try { show(where, stage.preview(hl7, m)); } catch (e) {
          if (!(e instanceof CodecError)) throw e;
          failed++;
          io.err(`${where}: error GW_PARSE_FAILED: ${e.message}`);
        }
      });
      continue;
    }
    // export files: the profile's kinds that read this file name (or FHIR), row by row
    const asked = o.profile && isFileProfileName(o.profile) ? o.profile : undefined;
    const entry: FileReadConfig = source ?? { id: 'preview', profile: asked ?? (format === 'fhir' ? 'fhir-r4' : 'generic'), system: '', kinds: [], csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' }, format: 'auto', maxWholeFileBytes: 64 * 1024 * 1024, pageSize: 500 };
    let imp;
    try { imp = importOptionsOf({ ...entry, ...(asked ? { profile: asked } : {}) }, { timezone, now: () => Date.now() }); } catch (e) { io.err(`${file}: ${(e as Error).message} (use --profile ${fileProfiles.join('|')} or --source ID)`); failed++; continue; }
    const profile = imp.profile;
    const kinds = typeof profile === 'string' ? ['fhir' as const] : kindsFor(profile, basename(file));
    if (kinds.length === 0) { io.err(`${file}: no kind of profile ${typeof profile === 'string' ? profile : profile.name} reads this file name`); failed++; continue; }
    const system = typeof profile === 'string' ? 'FHIR' : profile.system;
    let g = 0;
    try {
      for (const kind of kinds) {
        for await (const row of rowsOf(file, (kind === 'fhir' ? 'fhir' : kind.format ?? format) as FileFormat, kind === 'fhir' ? undefined : kind, imp)) {
          g++;
          total++;
          const kindName = kind === 'fhir' ? 'fhir' : kind.name;
          const mapped = mapFileRow({ adapterId: entry.id, system, timezone, now: () => Date.now() }, kind, { pk: `${kindName}#${g}`, data: row.data });
          const built = stage.finish(mapped);
          show(`${file}#${g}`, { kind: kindName, unsupported: mapped.unsupported, records: built.records.map((x) => x.record), issues: [...mapped.issues, ...built.invalid.map((i) => ({ severity: 'error', code: 'GW_VALIDATION_FAILED', message: `${i.type} record ${i.path} ${i.problem}` }))] });
        }
      }
    } catch (e) {
      if (!(e instanceof FileFormatError)) throw e;
      failed++;
      io.err(`${file}: error GW_PARSE_FAILED: ${e.message}`);
    }
  }
  io.err(`preview: ${total} message(s)/row(s), ${recordsOut} record(s), ${failed} with errors`);
  return failed ? 5 : 0;
}

async function send(files: string[], o: { host?: string; port?: string; configFile?: string }, io: CliIo): Promise<number> {
  if (files.length === 0) { io.err(`send needs at least one FILE\n\n${HELP.send}`); return 2; }
  const config = io.loadConfig(o.configFile);
  const host = o.host ?? (config.hl7.host === '0.0.0.0' ? '127.0.0.1' : config.hl7.host);
  const port = o.port !== undefined ? Number(o.port) : config.hl7.port;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) { io.err(`--port must be 1-65535, got ${o.port}`); return 2; }
  let client: MllpClient;
  try { client = await connectMllp(host, port); } catch (e) {
    io.err(`cannot connect to ${host}:${port} (${(e as NodeJS.ErrnoException).code ?? 'error'}) — is the gateway running and is the port right?`);
    return 4;
  }
  let bad = 0;
  try {
    for (const file of files) {
      for (const m of splitHl7Messages(io.readFile(file))) {
        // enhanced mode (MSH-15/16 valued) may answer twice (CA, then AA) or not at all (NE, ER)
        const msh = (m.split(/\r\n|\r|\n/)[0] ?? '').split(m[3] ?? '|');
        const enhanced = Boolean(msh[14] || msh[15]);
        const firstWait = !enhanced || ['', 'AL', 'SU'].includes((msh[14] ?? '').toUpperCase()) ? 15_000 : 2_000;
        client.writeRaw(frameMllp(m));
        const answers: string[] = [];
        try {
          answers.push(await client.nextAnswer(firstWait));
          if (enhanced) answers.push(await client.nextAnswer(500));
        } catch { /* no (further) answer */ }
        if (answers.length === 0) {
          if (enhanced) io.out(`${msh[9] ?? '?'} no answer (MSH-15/16 allow none)`);
          else { bad++; io.out(`${msh[9] ?? '?'} no answer within ${firstWait / 1000} s`); }
        }
        for (const a of answers) {
          const ack = readAck(a);
          if (ack.code !== 'AA' && ack.code !== 'CA') bad++;
          io.out(`${ack.controlId || '?'} ${ack.code}${ack.err ? ` ${ack.err}` : ''}`);
        }
      }
    }
  } finally { await client.close(); }
  return bad ? 1 : 0;
}

