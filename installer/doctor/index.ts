/**
 * `doctor`'s public surface: the check contract, the list of checks it runs, and the runner.
 * To add a check (a device certificate, say): a module in checks/ exporting a `DoctorCheck`, and
 * one entry in {@link doctorChecks}. Results appear in this list's order; the checks run at once.
 */
import type { DoctorCheck } from './check.ts';
import { configCheck } from './checks/config.ts';
import { serviceCheck } from './checks/service.ts';
import { gatewayProcessCheck } from './checks/gateway-process.ts';
import { portsCheck } from './checks/ports.ts';
import { dataFolderCheck, diskSpaceCheck } from './checks/data-folder.ts';
import { sealKeyCheck } from './checks/seal-key.ts';
import { clockCheck } from './checks/clock.ts';
import { cloudCheck } from './checks/cloud.ts';
import { sourcesCheck } from './checks/sources.ts';
import { outboxCheck } from './checks/outbox.ts';
import { deviceCertificateDoctorCheck } from './checks/device-certificate.ts';
import { agentsCheck } from './checks/agents.ts';

export type { CheckResult, CheckStatus, DoctorCheck, DoctorContext, ExecResult, GatewayProbe } from './check.ts';
export { accessProblem, DEFAULT_CHECK_TIMEOUT_MS, needsConfig, notChecked } from './check.ts';
export { createDoctorContext, type DoctorContextOptions } from './context.ts';
export { exitCodeOf, formatReport, runCheck, runDoctor, worstOf, type DoctorReport } from './run.ts';

export const doctorChecks: readonly DoctorCheck[] = [
  configCheck,
  serviceCheck,
  gatewayProcessCheck,
  portsCheck,
  dataFolderCheck,
  diskSpaceCheck,
  sealKeyCheck,
  clockCheck,
  deviceCertificateDoctorCheck,
  cloudCheck,
  sourcesCheck,
  outboxCheck,
  agentsCheck,
];
