/**
 * `eyewear-gateway setup`: the technician's first run, in seven steps, each printed as
 * `step k/7: …` with its outcome —
 *   1 detect (hints only), 2 choose the sources, 3 test each connection, 4 write the validated
 *   config, 5 enrol with the cloud, 6 install the service, 7 the doctor's report.
 * The config is written (step 4) before enrolment because `enrol`, `install` and `doctor` each read
 * it (`--config FILE`): the data folder and the sources come from it. A gateway not yet enrolled
 * still runs, writing sealed records to its local file sink.
 * `enrol`, `install` and `doctor` are other commands of this build, found by name in the command
 * list at run time; one that this build lacks is said so, and setup goes on.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CliArgs, CliCommand, CliIo } from '../../cli/command.ts';
import { EXIT } from '../../cli/command.ts';
import { runCli } from '../../cli/registry.ts';
import { formatConfigError, ConfigError, type ConfigProblem } from '../../config/load.ts';
import { ErrorCodes, isGatewayError } from '../../gateway/errors.ts';
import { detect, type DetectOptions, type Hint } from './detect.ts';
import { askSource, createAsker, SetupCancelled, type Asker } from './interview.ts';
import { probe, type ProbeResult } from './probes.ts';
import { defaultPaths, FlagError, planFromFlags } from './setup-flags.ts';
import { describeEntry, SOURCE_KINDS, type SetupPlan, type SourceEntry, type SourceKind } from './setup-plan.ts';
import { candidateConfig, writeSetupConfig, type Written } from './write-config.ts';

export const STEPS = 7;

export interface SetupDeps {
  /** The command list of this build (looked up when needed, so setup can sit in the list it reads). */
  readonly commands: () => readonly CliCommand[];
  /** Where detection looks (tests point it at their own servers). */
  readonly detect?: DetectOptions;
}

const step = (io: CliIo, k: number, what: string) => io.out(`step ${k}/${STEPS}: ${what}`);

function problemsText(problems: readonly ConfigProblem[]): string {
  return formatConfigError(new ConfigError('GW_CONFIG_INVALID', 'the config setup would write is invalid', problems));
}

function reportProbe(io: CliIo, e: SourceEntry, r: ProbeResult): void {
  if (r.ok) io.out(`  ${describeEntry(e)}: ok — ${r.detail}`);
  else io.err(`  ${describeEntry(e)}: FAILED — ${r.problem}\n  what to do: ${r.todo}`);
}

function showHints(io: CliIo, hints: readonly Hint[]): void {
  if (hints.length === 0)
    io.out('  nothing answers on the usual HL7 and database ports of this machine (sources elsewhere on the network are not looked for)');
  for (const h of hints) io.out(`  hint: ${h.what}`);
}

/** Runs another command of this build by name; undefined when this build has none of that name. */
async function runByName(name: string, argv: string[], io: CliIo, deps: SetupDeps): Promise<number | null | undefined> {
  const command = deps.commands().find((c) => c.name === name);
  if (!command) return undefined;
  try {
    return await runCli([name, ...argv], io, [command]);
  } catch (e) {
    // said as cli/main.ts says it, and setup goes on to its next step
    if (e instanceof ConfigError) io.err(formatConfigError(e));
    else if (isGatewayError(e)) io.err(`error ${e.code}: ${e.message}\nwhat to do: ${ErrorCodes[e.code].action}`);
    else io.err(`error: ${(e as Error).message}`);
    return EXIT.failure;
  }
}

interface Finish {
  readonly written: Written;
  readonly enrolCode?: string;
  readonly cloud?: string;
  readonly cloudCa?: string;
  readonly install: boolean;
  readonly doctor: boolean;
}

/** Steps 5-7 and the summary. */
async function finish(io: CliIo, deps: SetupDeps, f: Finish): Promise<number> {
  const cfg = ['--config', f.written.file];
  let failed = false;
  step(io, 5, 'enrol with the cloud');
  if (!f.enrolCode) io.out(`  skipped (no enrolment code); later: eyewear-gateway enrol CODE --cloud URL --config ${f.written.file}`);
  else {
    const code = await runByName(
      'enrol',
      [f.enrolCode, ...(f.cloud ? ['--cloud', f.cloud] : []), ...(f.cloudCa ? ['--ca', f.cloudCa] : []), ...cfg],
      io,
      deps,
    );
    if (code === undefined)
      io.out('  not in this build (no `enrol` command): the gateway runs with its local file sink until it is enrolled');
    else if (code === 0) io.out('  enrolled');
    else {
      failed = true;
      io.err(`  enrol ended with exit code ${code} (said above); retry: eyewear-gateway enrol CODE --cloud URL --config ${f.written.file}`);
    }
  }
  step(io, 6, 'install the service');
  if (!f.install) io.out(`  skipped; later, as root/Administrator: eyewear-gateway install --config ${f.written.file}`);
  else {
    const code = await runByName('install', cfg, io, deps);
    if (code === undefined)
      io.out(`  not in this build (no \`install\` command): start it with eyewear-gateway start --config ${f.written.file}`);
    else if (code === 0) io.out('  installed');
    else {
      failed = true;
      io.err(`  install ended with exit code ${code} (said above); retry: eyewear-gateway install --config ${f.written.file}`);
    }
  }
  step(io, 7, 'doctor');
  let doctorCode: number | null | undefined;
  if (!f.doctor) io.out(`  skipped; later: eyewear-gateway doctor --config ${f.written.file}`);
  else {
    doctorCode = await runByName('doctor', cfg, io, deps);
    if (doctorCode === undefined)
      io.out(`  not in this build (no \`doctor\` command); check with: eyewear-gateway check-config ${f.written.file}`);
    else io.out(`  doctor's exit code: ${doctorCode}`);
  }
  io.out(
    `setup ${failed ? 'finished with a failed step (said above)' : 'done'}: config ${f.written.file}${f.written.backup ? ` (the old one kept as ${f.written.backup})` : ''}; ${f.written.secretFiles.length} secret(s) in credentials files, none in the config`,
  );
  return failed ? EXIT.failure : EXIT.ok;
}

/** Step 4's write; a file-system refusal is said with what to do (nothing of this run is left: write-config.ts). */
function writeOrSay(io: CliIo, write: () => Written, out: string): Written | undefined {
  try {
    return write();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code || e instanceof ConfigError) throw e;
    io.err(
      `error: cannot write ${out} or its credentials files (${code}): nothing written. ${code === 'EACCES' || code === 'EPERM' ? 'Run setup as root (Administrator on Windows), or choose --out FILE and --data-dir DIR you may write' : 'Check the disk and the folders, then run setup again'}`,
    );
    return undefined;
  }
}

const nonEmptyAnswer = (what: string) => (a: string) => {
  if (!a) throw new FlagError(`${what} is needed`);
  return a;
};

function existsMessage(out: string): string {
  return `${out} exists: not overwritten, nothing written. Re-run with --force to replace it (a backup is kept), or choose another file with --out`;
}

async function nonInteractive(v: CliArgs['values'], io: CliIo, deps: SetupDeps): Promise<number> {
  let fp;
  try {
    fp = planFromFlags(v, io.env ?? process.env);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err(`setup: ${e.message}`);
    return EXIT.usage;
  }
  for (const w of fp.warnings) io.err(w);
  const { plan, out } = fp;
  if (existsSync(out) && !v.force) {
    io.err(`error: ${existsMessage(out)}`);
    return EXIT.failure;
  }
  step(io, 1, 'detect');
  showHints(io, await detect(deps.detect));
  step(io, 2, 'sources');
  for (const s of plan.sources) io.out(`  ${describeEntry(s)}`);
  const candidate = candidateConfig(plan);
  if (!candidate.ok) {
    io.err(problemsText(candidate.problems));
    io.err('nothing written');
    return EXIT.config;
  }
  step(io, 3, 'test the connections');
  const failedSources: SourceEntry[] = [];
  for (const s of plan.sources) {
    const r = await probe(s, candidate.config, io);
    reportProbe(io, s, r);
    if (!r.ok) failedSources.push(s);
  }
  if (failedSources.length && !v['keep-failed']) {
    io.err(
      `error: ${failedSources.length} source(s) failed their test: nothing written. Fix them, or add --keep-failed to write the config anyway`,
    );
    return EXIT.failure;
  }
  step(io, 4, 'write the config');
  const written = writeOrSay(io, () => writeSetupConfig(plan, out, { replace: Boolean(v.force) }), out);
  if (!written) return EXIT.failure;
  io.out(`  wrote ${written.file}${written.backup ? ` (backup ${written.backup})` : ''}; validated by loading it back`);
  for (const s of failedSources) io.err(`  warning: ${describeEntry(s)} is in the config although its test FAILED (--keep-failed)`);
  return finish(io, deps, {
    written,
    enrolCode: v['enrol-code'] as string | undefined,
    cloud: v.cloud as string | undefined,
    cloudCa: v['cloud-ca'] as string | undefined,
    install: Boolean(v.install),
    doctor: !v['no-doctor'],
  });
}

/** Interactive steps 2-3 for one source: asked, validated, tested; re-entered, skipped or kept as the technician says. */
async function oneSource(kind: SourceKind, a: Asker, io: CliIo, base: SetupPlan, hints: readonly Hint[]): Promise<SourceEntry | undefined> {
  let before: SourceEntry | undefined;
  for (;;) {
    const e = await askSource(kind, a, { hints, taken: base.sources, before, io });
    const candidate = candidateConfig({ ...base, sources: [...base.sources, e] });
    let r: ProbeResult;
    if (!candidate.ok) {
      io.err(problemsText(candidate.problems));
      r = { ok: false, problem: 'these answers do not make a valid config (listed above)', todo: 're-enter them' };
    } else {
      io.out(`  testing ${describeEntry(e)} …`);
      r = await probe(e, candidate.config, io);
      reportProbe(io, e, r);
      if (r.ok) return e;
    }
    const choice = await a.askValid(
      candidate.ok ? '  [r]e-enter, [s]kip this source, or [k]eep it although it failed' : '  [r]e-enter or [s]kip this source',
      'r',
      (s) => {
        const c = s.toLowerCase()[0];
        if (c === 'r' || c === 's' || (c === 'k' && candidate.ok)) return c;
        throw new FlagError(candidate.ok ? 'answer r, s or k' : 'answer r or s');
      },
    );
    if (choice === 's') return undefined;
    if (choice === 'k') {
      io.err(`  kept: ${describeEntry(e)} goes into the config although its test FAILED`);
      return e;
    }
    before = e;
  }
}

async function interactive(v: CliArgs['values'], io: CliIo, deps: SetupDeps): Promise<number> {
  if (!io.confirm || !io.askSecret) {
    io.err('setup needs a terminal to ask on; for a scripted install use setup --non-interactive with flags (setup --help)');
    return EXIT.usage;
  }
  const a = createAsker(io);
  let written: Written | undefined;
  const stopped = () =>
    written
      ? `\nsetup stopped after writing ${written.file}. To go on: eyewear-gateway enrol CODE --cloud URL --config ${written.file}, then eyewear-gateway install --config ${written.file} and eyewear-gateway doctor --config ${written.file}`
      : '\nsetup stopped: nothing was written. Run eyewear-gateway setup again to start over (or setup --non-interactive with flags)';
  // Ctrl-C between prompts (a test or a command running, the terminal not in raw mode): the same clean stop.
  // Every file is written by rename, so there is no half of one to leave.
  const onSigint = () => {
    io.err(stopped());
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    io.out('eyewear-gateway setup — Enter takes the [default]; Ctrl-C stops (nothing is written before step 4).');
    const defaults = defaultPaths();
    const out = resolve((v.out as string | undefined) ?? (await a.ask('Config file to write', defaults.out)));
    let replace = Boolean(v.force);
    if (existsSync(out) && !replace) {
      replace = await a.yes(`${out} exists. Replace it at step 4 (a backup is kept)?`, false);
      if (!replace) {
        io.err(`stopped: ${existsMessage(out)}`);
        return EXIT.failure;
      }
    }
    step(io, 1, 'detect');
    const hints = await detect(deps.detect);
    showHints(io, hints);
    step(io, 2, 'choose the sources');
    const gatewayId = await a.ask('Gateway id (from the cloud team)', (v['gateway-id'] as string | undefined) ?? 'gw-local');
    const tenantId = await a.ask('Tenant id', (v.tenant as string | undefined) ?? 'local');
    const practiceId = await a.ask('Practice id', (v.practice as string | undefined) ?? 'local');
    const dataDir = resolve(await a.ask('Data folder', (v['data-dir'] as string | undefined) ?? defaults.dataDir));
    const suggested = ['hl7', ...(hints.some((h) => h.suggests?.kind === 'db') ? ['db'] : [])].join(',');
    const kinds = await a.askValid(`Sources, comma-separated (${SOURCE_KINDS.join(', ')})`, suggested, (s) => {
      const list = s
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean);
      if (list.length === 0) throw new FlagError('name at least one source');
      for (const k of list)
        if (!(SOURCE_KINDS as readonly string[]).includes(k)) throw new FlagError(`"${k}" is not one of ${SOURCE_KINDS.join(', ')}`);
      if (list.filter((k) => k === 'hl7').length > 1) throw new FlagError('hl7 once: the gateway has one MLLP listener');
      return list as SourceKind[];
    });
    step(io, 3, 'enter and test each connection');
    let plan: SetupPlan = { gatewayId, tenantId, practiceId, dataDir, sources: [] };
    const kept: string[] = [];
    for (const kind of kinds) {
      io.out(`${kind}:`);
      const e = await oneSource(kind, a, io, plan, hints);
      if (e) {
        plan = { ...plan, sources: [...plan.sources, e] };
        kept.push(describeEntry(e));
      } else io.out(`  skipped ${kind}`);
    }
    if (plan.sources.length === 0) {
      io.err('no source was kept: nothing written. Run eyewear-gateway setup again when a source can be reached');
      return EXIT.failure;
    }
    step(io, 4, 'write the config');
    const candidate = candidateConfig(plan);
    if (!candidate.ok) {
      io.err(problemsText(candidate.problems));
      io.err('nothing written');
      return EXIT.config;
    }
    for (const k of kept) io.out(`  ${k}`);
    if (!(await a.yes(`Write ${out}?`, true))) {
      io.err('not written; nothing was changed. Run eyewear-gateway setup again to start over');
      return EXIT.failure;
    }
    written = writeOrSay(io, () => writeSetupConfig(plan, out, { replace }), out);
    if (!written) return EXIT.failure;
    io.out(`  wrote ${written.file}${written.backup ? ` (backup ${written.backup})` : ''}; validated by loading it back`);
    const enrolCode =
      (v['enrol-code'] as string | undefined) ?? ((await a.ask('Enrolment code from the cloud team (Enter to skip)')) || undefined);
    const cloud = enrolCode
      ? ((v.cloud as string | undefined) ??
        (await a.askValid('Cloud enrolment URL (https://…, from the cloud team)', undefined, nonEmptyAnswer('the URL'))))
      : undefined;
    const cloudCa = enrolCode
      ? ((v['cloud-ca'] as string | undefined) ??
        ((await a.ask("CA file of the cloud's TLS certificate (Enter: a public CA)")) || undefined))
      : undefined;
    const install = Boolean(v.install) || (await a.yes('Install and start the gateway as a service now?', false));
    return await finish(io, deps, { written, enrolCode, cloud, cloudCa, install, doctor: !v['no-doctor'] });
  } catch (e) {
    if (!(e instanceof SetupCancelled)) throw e;
    io.err(stopped());
    return EXIT.failure;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function runSetup(args: CliArgs, io: CliIo, deps: SetupDeps): Promise<number> {
  if (args.positionals.length) {
    io.err(`setup takes no positional arguments (got ${args.positionals.join(' ')}); see setup --help`);
    return Promise.resolve(EXIT.usage);
  }
  return args.values['non-interactive'] ? nonInteractive(args.values, io, deps) : interactive(args.values, io, deps);
}
