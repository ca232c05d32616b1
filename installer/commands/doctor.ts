/** `eyewear-gateway doctor`: one report of everything that can be wrong (installer/doctor/). */
import { EXIT, type CliCommand } from '../../cli/command.ts';
import { createDoctorContext, doctorChecks, formatReport, runDoctor } from '../doctor/index.ts';

export const DOCTOR_HELP = `eyewear-gateway doctor [--config FILE] [--json]

Checks everything that can keep the gateway from working and prints one report: the config (as
check-config loads it), the service (systemd or the Windows service manager), the gateway process
(the data folder's lease and its admin API), the ports it listens on (bound by this gateway, by
another process — which pid — or free), the data folder (a probe file written, fsynced and
removed) and its free space against outbox.diskReserveBytes, the seal key against the outbox,
the clock against the cloud's, the cloud step by step (DNS, TCP, TLS and its certificate, auth),
each source, and the outbox (records waiting, oldest age, dead letters). Each line: PASS, WARN,
FAIL or SKIP, the evidence, and what to do. Nothing is changed: no lease is taken, the outbox is
read read-only, no key is made, nothing is sent to the cloud. Every check is bounded in time.
--json: the report as JSON (at, configFile, host, platform, version, worst, exitCode, counts,
results[name, status, evidence, todo, data]) for the cloud team.
Exit ${EXIT.ok}: every check passed or was skipped; ${EXIT.doctorWarnings}: warnings; ${EXIT.doctorFailures}: at least one failure.`;

export const doctorCommand: CliCommand = {
  name: 'doctor',
  synopsis: 'doctor [--config FILE] [--json]',
  summary:
    'Check everything that can be wrong (config, service, ports, disk, key, clock,\ncloud, sources, outbox); exit 0 all pass, 6 warnings, 7 failures.',
  help: DOCTOR_HELP,
  options: { json: { type: 'boolean' } },
  async run({ configFile, values }, io) {
    const ctx = createDoctorContext({ ...(configFile !== undefined ? { configFile } : {}), ...(io.env ? { env: io.env } : {}) });
    const report = await runDoctor(doctorChecks, ctx);
    io.out(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.exitCode;
  },
};
