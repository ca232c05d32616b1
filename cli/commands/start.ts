/**
 * `start`: the gateway in the foreground until SIGINT/SIGTERM. The data folder's lease is taken
 * first (a second gateway on the folder stops here), then the gateway is built and started; the
 * banner says what runs and what did not start.
 */
import { ErrorCodes, isGatewayError, type GatewayError } from '../../gateway/errors.ts';
import { createGateway, gatewayPaths, type Gateway } from '../../gateway/create-gateway.ts';
import { acquireDataLease, HANDOVER_ENV, type DataLease } from '../../gateway/data-lease.ts';
import { createServiceNotifier, gatewayServiceHealth, type ServiceNotifier } from '../../gateway/service-notify.ts';
import { startProblem } from '../../gateway/status-report.ts';
import { gatewayVersion } from '../../gateway/version.ts';
import { createLogger } from '../../gateway/logger.ts';
import { isSea } from 'node:sea';
import { launchGuard } from '../../updater/probation.ts';
import { createUpdateRunner, updateExecutable, type UpdateRunner } from '../../updater/update-runner.ts';
import type { CliCommand, CliIo } from '../command.ts';

const START_HELP = `eyewear-gateway start [--config FILE]

Runs the gateway until SIGINT/SIGTERM. Without --config it uses the embedded defaults:
MLLP on 127.0.0.1:2575, admin API on 127.0.0.1:8480, local file sink, data in ./data.
Environment overrides: EWML__SECTION__FIELD=value (e.g. EWML__HL7__PORT=2576).

One gateway per data folder: a second start on the same folder stops with GW_DATA_DIR_IN_USE, naming
the running one's pid (the lease is <dataDir>/gateway.lock; a killed gateway's lease is taken over).
The banner names every listener or source that did not start, its cause (EADDRINUSE: port in use) and
what to do; those are retried. Exit 1 when nothing could start (no source and no admin API).`;

export const startCommand: CliCommand = {
  name: 'start',
  synopsis: 'start [--config FILE]',
  summary: 'Run the gateway in the foreground (embedded defaults without --config).',
  help: START_HELP,
  run: ({ configFile }, io) => start(configFile, io),
};

async function start(configFile: string | undefined, io: CliIo): Promise<number | null> {
  // before anything that can fail: a new version whose last start ended unjudged is replaced by the previous one
  const guard = launchGuard(isSea() ? process.execPath : undefined, gatewayVersion());
  if (guard.restored) {
    io.err(
      `error GW_UPDATE_ROLLED_BACK: ${guard.reason}; the previous executable is back\nwhat to do: nothing; the service manager starts the previous version (exit 1)`,
    );
    return 1;
  }
  const config = io.loadConfig(configFile);
  // a start that must stop (GW_DATA_DIR_IN_USE, GW_KEY_MISSING, GW_OUTBOX_IO…) says its code, the path and what to do: no stack, no SQLite text
  const refused = (e: GatewayError) => {
    io.err(`error ${e.code}: ${e.message}\nwhat to do: ${ErrorCodes[e.code].action}`);
    return 1;
  };
  // the data folder's lease before anything reads or writes the folder: a second gateway on it stops here
  let lease: DataLease;
  try {
    lease = acquireDataLease(gatewayPaths(config).dataDir, { handOverToken: io.env?.[HANDOVER_ENV] });
  } catch (e) {
    if (!isGatewayError(e)) throw e;
    return refused(e);
  }
  // an exit by a crash frees it too; a SIGKILL leaves it stale, for the next start to take over
  const releaseOnExit = () => {
    lease.release();
  };
  process.once('exit', releaseOnExit);
  const letGo = () => {
    lease.release();
    process.removeListener('exit', releaseOnExit);
  };
  let gw: Gateway;
  // signed gateway.update commands go to the updater (created once the gateway runs)
  let updater: UpdateRunner | undefined;
  const build = (l: DataLease) =>
    createGateway({
      config,
      lease: l,
      // with a config file, POST /config/reload (or `eyewear-gateway reload`) reads it again while running
      loadConfig: configFile === undefined ? undefined : () => io.loadConfig(configFile),
      onUpdate: (req) => (updater ? updater.request(req) : 'the gateway is still starting; send a new gateway.update command in a minute'),
    });
  try {
    gw = await build(lease);
  } catch (e) {
    letGo();
    if (!isGatewayError(e)) throw e;
    return refused(e);
  }
  // a signal during the start (its first listeners may already accept) stops the gateway once the start has settled
  let starting: Promise<unknown> = Promise.resolve();
  let stopping = false;
  // under systemd (Type=notify): READY=1 once up, WATCHDOG=1 while healthy, STOPPING=1 here
  let notifier: ServiceNotifier | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    notifier?.stopping();
    io.err(`received ${signal}; stopping (in-flight messages finish first)`);
    updater?.stop();
    starting
      .then(() => gw.stop())
      .then(
        () => {
          letGo();
          if (process.exitCode === undefined) process.exitCode = 0;
        },
        (err: unknown) => {
          letGo();
          io.err(`stop failed: ${(err as Error).message}`);
          process.exitCode = 1;
        },
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
    io.err(
      `eyewear-gateway ${gatewayVersion()} did not start: nothing could run (no source and no admin API)\n${problems.join('\n')}\nstopping (exit 1)`,
    );
    await gw.stop().catch((err: unknown) => io.err(`stop failed: ${(err as Error).message}`));
    letGo();
    return 1;
  }
  const one = (component: string) => report.components.find((c) => c.component === component);
  const hl7 = one('adapter:hl7v2');
  const hl7Port = gw.parts.adapters.find((a) => a.id === 'hl7v2')?.health().detail?.port;
  const mllp = !config.hl7.enabled
    ? 'off'
    : hl7?.state === 'failed'
      ? 'NOT listening'
      : `${config.hl7.host}:${String(hl7Port ?? config.hl7.port)}`;
  const adminState = one('admin')?.state;
  const admin = !config.admin.enabled
    ? 'off'
    : adminState === 'failed'
      ? 'NOT listening'
      : `http://${config.admin.host}:${config.admin.port} (token ${config.admin.token ? 'from the config' : `in ${gw.parts.paths.tokenFile}`})`;
  const parts = `MLLP ${mllp}, admin ${admin}, sink ${config.relay.sink}${config.relay.sink === 'file' ? ` → ${gw.parts.paths.fileSinkDir}` : ''}`;
  const dataDir = gatewayPaths(config).dataDir;
  const updateLog = createLogger({ level: config.log.level }).child({ component: 'updater' });
  updater = createUpdateRunner({
    config,
    dataDir,
    version: gatewayVersion(),
    gatewayId: config.gateway.id,
    executable: updateExecutable(config),
    platform: `${process.platform}-${process.arch}`,
    bus: () => gw.parts.bus,
    sinkConnected: () => gw.parts.sink.health().connected,
    adminToken: () => gw.parts.token,
    // the switch-over: this gateway stops (in-flight messages finish), its lease goes to the new process
    stopGateway: () => gw.stop({ keepLease: true }),
    handOver: () => lease.handOver().token,
    // a rollback: the lease back (the token it was promised under), the gateway built and started again
    resumeGateway: async (token) => {
      lease = acquireDataLease(dataDir, { handOverToken: token });
      gw = await build(lease);
      await gw.start();
    },
    exitAfterUpdate: () => {
      process.removeListener('exit', releaseOnExit);
      io.err(`eyewear-gateway ${gatewayVersion()}: the new version took over; this process exits`);
      process.exit(0);
    },
    // exit 75 (temporary failure): systemd's Restart=on-failure and WinSW's onfailure start the executable again
    exitForRestart: () => {
      lease.release();
      io.err(`eyewear-gateway ${gatewayVersion()}: the new version is in place; exiting (75) for the service manager to start it`);
      process.exit(75);
    },
    exitAfterRollback: () => {
      void gw.stop().finally(() => {
        letGo();
        io.err(
          `eyewear-gateway ${gatewayVersion()} failed its health gate; the previous executable is back; exiting (1) for the service manager to start it`,
        );
        process.exit(1);
      });
    },
    ready: () => (gw.status() as { ready: { ready: boolean; reasons: string[] } }).ready,
    args: process.argv.slice(2),
    env: process.env,
    log: (level, fields, msg) => updateLog[level](fields, msg),
  });
  updater.atStart();
  updater.startPeriodic();
  if (failed.length === 0) io.err(`eyewear-gateway ${gatewayVersion()} running — ${parts}. Ctrl-C stops.`);
  else
    io.err(
      `eyewear-gateway ${gatewayVersion()} started, but not all of it — ${parts}\n${problems.join('\n')}\n  What did not start is retried; \`eyewear-gateway status\` and /ready show it. Ctrl-C stops.`,
    );
  // what did not start is retried in-process, so the service is up (STATUS says what is missing)
  if (!stopping) {
    notifier = createServiceNotifier({ env: io.env ?? {}, warn: (line) => io.err(line), health: () => gatewayServiceHealth(gw) });
    notifier.ready();
  }
  return null;
}
