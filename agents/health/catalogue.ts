/**
 * The health monitor's diagnosis catalogue: every cause it can name, with its stable code, the
 * symptoms it is recognised by, the evidence a finding carries (PHI-free: ids, counts, times, error
 * codes), its severity, and its remedy — what the monitor does by itself (within a budget) and what
 * a person must do. docs/AGENTS.md is generated from this (`npm run docs`).
 */

export type HealthCode =
  | 'AGENT_HEALTH_DISK_FILLING'
  | 'AGENT_HEALTH_SOURCE_FAILING'
  | 'AGENT_HEALTH_SOURCE_SILENT'
  | 'AGENT_HEALTH_SINK_DOWN'
  | 'AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE'
  | 'AGENT_HEALTH_SOURCE_THROTTLED'
  | 'AGENT_HEALTH_DB_INDEX_MISSING'
  | 'AGENT_HEALTH_OUTBOX_STUCK'
  | 'AGENT_HEALTH_CERT_EXPIRING'
  | 'AGENT_HEALTH_CLOCK_JUMPED'
  | 'AGENT_HEALTH_MEMORY_HIGH'
  | 'AGENT_HEALTH_CPU_BUSY';

export interface Cause {
  title: string;
  /** What it is recognised by. */
  symptoms: string;
  /** The evidence fields a finding carries. */
  evidence: readonly string[];
  severity: string;
  /** What the monitor does by itself; undefined: nothing (it only reports). */
  automatic?: string;
  /** What a person must do. */
  person: string;
  /** How the finding clears. */
  clears: string;
}

export const HealthCatalogue: Readonly<Record<HealthCode, Cause>> = {
  AGENT_HEALTH_DISK_FILLING: {
    title: 'The data disk will reach its reserve soon at the current rate',
    symptoms:
      'Free space on the data volume (statfs of the data folder, sampled every `pollMs`) falls steadily: a least-squares line through the samples of the last `agents.health.disk.windowMs` (at least 3 samples over `minSpanMs`) reaches `outbox.diskReserveBytes`, where input is refused, within `warnHours`. Space freed (a rise of 1 MiB or more) starts the trend again.',
    evidence: ['freeBytes', 'reserveBytes', 'bytesPerHour', 'hoursLeft', 'samples', 'spanMinutes'],
    severity: 'warning; error within `errorHours` or once at or below the reserve',
    person:
      'Find what fills the data volume (the outbox grows when the cloud link is down: see AGENT_HEALTH_SINK_DOWN; other programs; logs) and free space, or move the data folder to a larger disk. Pruning is not done automatically yet.',
    clears: 'when the trend no longer reaches the reserve within `warnHours` × 1.25 (or space was freed).',
  },
  AGENT_HEALTH_SOURCE_FAILING: {
    title: 'A source fails to start, or its reads fail',
    symptoms:
      'A source adapter the supervisor could not start (state `failed`, with the code of its last attempt), or one running whose health is `down` with an error code (a database poll failing), for longer than `agents.health.source.failingAfterMs`.',
    evidence: ['source', 'state', 'error', 'failingSince', 'restarts (this hour)', 'restartsPerHour'],
    severity: 'error',
    automatic:
      'Restarts that one source (stop, start) — except after a refused login or a foreign host key (ERR_SSH_AUTH, ERR_SSH_HOST_KEY, 28P01, 28000, ER_ACCESS_DENIED_ERROR, ELOGIN, 530, GW_API_AUTH_FAILED), which it only reports, since the same login cannot succeed and repeated attempts can lock the account — at most `restartsPerHour` times in any hour, waiting `backoffInitialMs` after a restart that did not help, doubled each time up to `backoffMaxMs`; each restart is kept in the history with the state before and after.',
    person:
      'Once the budget is spent the finding says so; fix what the error code names: EADDRINUSE another program holds the port (free it or change the port); EACCES a port below 1024 or a file not readable; ECONNREFUSED/ETIMEDOUT/EHOSTUNREACH the PMS server or database is down or unreachable (start it, check the address and firewall); ENOTFOUND its host name does not resolve; 28P01/ER_ACCESS_DENIED_ERROR/ELOGIN/530 (FTP) the login was refused (the password was probably changed: update it in the config); 57014/ER_LOCK_WAIT_TIMEOUT/ER_QUERY_TIMEOUT/ETIMEOUT a query was cancelled at `statementTimeoutMs` (a lock held on a table the source reads, or a slow database: see pg_locks, SHOW PROCESSLIST or sp_who2); ERR_SSH_AUTH the SFTP server refused the login while its host key is still the pinned one (the password or key was changed on it); ERR_SSH_HOST_KEY the SFTP server’s host key is not the pinned one (check with the practice). Run `eyewear-gateway db check` for a database.',
    clears: 'when the source runs again (after a restart, its own retry, or a person’s fix).',
  },
  AGENT_HEALTH_SOURCE_SILENT: {
    title: 'A source has gone quiet against its usual rhythm',
    symptoms:
      'A running source listed in `agents.health.silence.sources` (default: the MLLP listener `hl7v2`) whose intakes (accepted, duplicate, ignored or rejected) came at a learned rhythm — the median gap between arrivals in the last `agents.health.silence.lookbackMs`, from at least `minGaps` gaps — has sent nothing for `factor` × that gap and at least `minSilenceMs`. It also learns the hours the source sends in, by local half hour (`gateway.timezone`) over the last 35 days: once an earlier day is known, quiet at a time it did not send at on earlier days (the same weekday once one is known, else any day) is its habit and raises nothing, so closing time and the night stay quiet. The first day after a start knows no earlier day, so its first evening can raise it once (cleared by the next message).',
    evidence: ['source', 'lastMessageAt', 'silentForMinutes', 'medianGapSeconds', 'gaps', 'openConnections (a listener)'],
    severity: 'warning',
    person:
      'Check the sending system: for an HL7 feed, the PMS’s interface engine (is its outbound queue stopped or backed up, did it lose its connection settings?). Open connections that stay open while nothing arrives point at the sender, not the network.',
    clears: 'with the next message from that source.',
  },
  AGENT_HEALTH_SINK_DOWN: {
    title: 'The cloud link (sink) is disconnected',
    symptoms:
      'The sink reports itself disconnected, with an error code (`lastError`: a failure was seen), for longer than `agents.health.sink.downAfterMs`; records wait in the outbox meanwhile (nothing is lost). An HTTPS sink that has had nothing to deliver is not "down": it has no connection to lose.',
    evidence: ['sink', 'lastError', 'downSince', 'undelivered', 'oldestAgeSeconds'],
    severity: 'error',
    person:
      'From the sink’s error code: ECONNREFUSED the broker or server is not listening at the configured URL (check `mqtt.url`/`https.url`); ENOTFOUND/EAI_AGAIN the name does not resolve (DNS, or no internet); ETIMEDOUT/EHOSTUNREACH/ENETUNREACH no route (the internet link or a firewall); a TLS or certificate code: see the sink’s `lastErrorAction` in `/status`; `Not authorized`/`Bad username or password`: the broker refused our login or certificate (re-enrol the gateway).',
    clears: 'when the sink is connected again.',
  },
  AGENT_HEALTH_OUTBOX_WRITER_UNSTABLE: {
    title: 'The outbox writer thread keeps dying',
    symptoms:
      'The outbox writer thread (which commits every record) died and was restarted at least `agents.health.outbox.writerRestartsPerHour` times within an hour (the outbox counts its restarts; the monitor notes when the count rises). Each death refuses input with a negative ACK until the new thread runs (senders resend; nothing committed is lost), so repeated deaths mean repeated refusals.',
    evidence: ['restartsInHour', 'writerRestarts (since open)', 'writer (running or restarting)'],
    severity: 'error',
    automatic: 'None beyond what the outbox does itself (it restarts its writer with back-off: GW_OUTBOX_IO).',
    person:
      'Look for what kills it: the system log for I/O errors on the data disk (`journalctl -k`, `dmesg`: a failing disk or a full one), memory pressure (the OOM killer), or the log line with GW_OUTBOX_IO and its cause. Replace the disk or move the data folder if the disk reports errors.',
    clears: 'when fewer than `writerRestartsPerHour` restarts fall within the last hour.',
  },
  AGENT_HEALTH_SOURCE_THROTTLED: {
    title: 'A server throttles the gateway (429 Too Many Requests)',
    symptoms:
      'A FHIR or vendor API source was answered 429 at least `agents.health.throttle.perHour` times in the last hour (its `throttled` count in `/status`). The gateway waits out each `Retry-After`, so nothing is lost, but its reads lag behind the PMS.',
    evidence: ['source', 'throttledInHour', 'throttled (since its start)', 'pollIntervalMs'],
    severity: 'warning',
    automatic:
      'Proposes a poll interval twice as long (`fhir[i].pollIntervalMs` or `apis[i].pollIntervalMs`), at most once a source a day, kept in the history; nothing is applied until a person or the cloud accepts it through the config reload.',
    person:
      'Accept the proposed interval (or set a longer one), or ask the vendor for a higher rate limit and set the source’s `rateLimit` to it; another program using the same API credentials shares the limit.',
    clears: 'when fewer than half of `perHour` 429 answers fall within the last hour.',
  },
  AGENT_HEALTH_DB_INDEX_MISSING: {
    title: 'A database stream’s watermark index is missing',
    symptoms:
      'The database source found, when it started (and looks again hourly), that a stream’s page query sorts its whole table — the plan shows a sort over a table of 10,000 rows or more — because no index covers its watermark and key (`<stream>.needsIndex` in `/status`). Every poll then reads the whole table: slow for the gateway and a load on the PMS’s database.',
    evidence: ['source', 'stream', 'table', 'columns', 'rows'],
    severity: 'warning',
    person:
      'Ask the PMS’s database administrator (or its vendor) to create the index named — a PMS upgrade can drop it — or point the stream at an indexed watermark column; `eyewear-gateway db check` shows the plan.',
    clears: 'when the source finds the stream reading by an index again (within the hour, or at its next start).',
  },
  AGENT_HEALTH_OUTBOX_STUCK: {
    title: 'Records wait in the outbox though the cloud link is up',
    symptoms:
      'Nothing has been delivered for `agents.health.outbox.stuckAfterMs` (by the monotonic clock: no delivery lane’s oldest record has left it — a record dead-lettered does not count — while records wait) while the sink reports itself connected (with the sink down, AGENT_HEALTH_SINK_DOWN names the cause instead): the cloud is not acknowledging what is sent, or answers “retry later” to each batch.',
    evidence: ['undelivered', 'waitingRetry', 'inFlight', 'oldestAgeSeconds', 'waitedSeconds', 'deadLetters', 'sink'],
    severity: 'warning; error past 4 × `stuckAfterMs`',
    person:
      'See the relay’s last error and the sink’s in `/status` (`eyewear-gateway status`): a cloud that answers 429/5xx is overloaded or in maintenance (it drains by itself when it answers again); acks that never come on MQTT point at the cloud side (tell the cloud team the gateway id and the oldest age). Nothing is lost while it waits.',
    clears:
      'with the next delivery (a lane’s oldest record leaves it), an empty outbox, or the sink down (its own finding). A long backlog that drains (a first load) is not stuck.',
  },
  AGENT_HEALTH_CERT_EXPIRING: {
    title: 'The device certificate is expiring, or no longer valid',
    symptoms:
      'The enrolled device certificate (gateway/identity/, shown by the MQTT sink) is expired, revoked or damaged; or it expires within `agents.health.certificate.warnDays` while its renewal (due at 2/3 of its lifetime) has not happened — the renewal failing (its last error is evidence) or overdue by `overdueMs`.',
    evidence: ['serial', 'state', 'notAfter', 'renewAt', 'daysLeft', 'lastRenewalError', 'code'],
    severity: 'warning; error within `errorDays` and once expired, revoked or damaged',
    automatic: 'None beyond what the identity does itself: it renews at 2/3 of the lifetime and retries a failed renewal every 10 minutes.',
    person:
      'Expired, revoked or damaged: re-enrol with a new one-time code (`eyewear-gateway enrol CODE --cloud URL --force`). Renewal failing: restore the link to the cloud’s enrolment endpoint (the last renewal error names what failed) before the certificate runs out; `eyewear-gateway doctor` checks the certificate too.',
    clears: 'when the certificate is valid and renewed (or not due), i.e. a renewal succeeded or a new enrolment replaced it.',
  },
  AGENT_HEALTH_CLOCK_JUMPED: {
    title: 'The system clock jumped',
    symptoms:
      'Between two polls the wall clock moved more than `agents.health.clock.jumpMs` away from the monotonic clock (which no one can set): a time service correcting a wrong clock, a person setting it, or — forward only — the machine asleep or a virtual machine paused (the monotonic clock stops meanwhile).',
    evidence: ['byMs', 'at', 'jumps (in the last showForMs)'],
    severity: 'warning',
    automatic:
      'Its own learned state is moved by the jump (the disk trend’s samples, the silence rhythm’s arrivals, failing-since and down-since times), so a jump raises no false silence or disk prediction.',
    person:
      'Check the time service (chrony or systemd-timesyncd on Linux, w32time on Windows) and the time zone; `eyewear-gateway doctor` compares the clock with the cloud’s. Signed cloud commands and tokens check time; database cursors overlap by `overlapSeconds`, so a jump back within that loses nothing.',
    clears: '`showForMs` of monotonic time after the last jump.',
  },
  AGENT_HEALTH_MEMORY_HIGH: {
    title: 'Memory is short: the gateway’s own, or the PC’s',
    symptoms:
      'Subject `gateway`: its resident memory (RSS, all its threads) above `agents.health.memory.rssWarnMiB` for `sustainPolls` polls in a row. Subject `host`: the PC’s available memory below `hostFreeWarnPercent` of its total for as long (the PMS and the gateway compete for it).',
    evidence: ['rssMiB', 'rssWarnMiB', 'freeMiB', 'totalMiB', 'freePercent', 'polls'],
    severity: 'warning',
    person:
      'Gateway: note what it was doing (a big import or backlog drain, in `/status`) and tell the cloud team with `GET /agents/health`; restarting the service gives the memory back. Host: close what else uses memory on the PC, or add memory; the gateway’s own share is the `gateway` figure.',
    clears: 'when the figure is back under its threshold with a 10% margin.',
  },
  AGENT_HEALTH_CPU_BUSY: {
    title: 'The CPU is busy: the gateway’s own use, or the PC’s load',
    symptoms:
      'Subject `gateway`: the gateway’s CPU time (all its threads) over the last poll above `agents.health.cpu.gatewayWarnPercent` of one core for `sustainPolls` polls in a row. Subject `host`: the 1-minute load average per core above `hostLoadPerCore` for as long (Linux; Windows reports no load average, so only the gateway’s own share is watched there).',
    evidence: ['gatewayPercentOfCore', 'loadPerCore', 'cores', 'polls'],
    severity: 'warning',
    person:
      'Gateway: a large first load or backlog is expected to take CPU for a while (its progress is in `/status`); if it lasts with nothing to import, tell the cloud team. Host: other programs load the PC; the PMS may answer slowly too.',
    clears: 'when the figure is back under its threshold with a 10% margin.',
  },
};

/** docs/AGENTS.md: the catalogue as a table and one section per cause. */
export function renderHealthCatalogue(): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const rows = Object.entries(HealthCatalogue).map(
    ([code, c]) =>
      `| \`${code}\` | ${esc(c.title)} | ${esc(c.severity)} | ${c.automatic?.startsWith('Restarts') ? 'restart, within a budget' : c.automatic?.startsWith('Its own') ? 'its own learned state moved; a person' : c.automatic?.startsWith('Proposes') ? 'a proposed config change; a person accepts it' : 'a person'} |`,
  );
  const sections = Object.entries(HealthCatalogue).map(([code, c]) =>
    [
      `### \`${code}\``,
      '',
      `**${c.title}.** Severity: ${c.severity}.`,
      '',
      `- **Symptoms:** ${c.symptoms}`,
      `- **Evidence:** ${c.evidence.map((e) => `\`${e}\``).join(', ')}`,
      `- **Automatic remedy:** ${c.automatic ?? 'none: the monitor only reports it.'}`,
      `- **What a person must do:** ${c.person}`,
      `- **Clears:** ${c.clears}`,
      '',
    ].join('\n'),
  );
  return [
    '# Agents: diagnosis catalogue',
    '',
    '<!-- generated from agents/health/catalogue.ts by `npm run docs`; do not edit by hand -->',
    '',
    'The health monitor (`agents/health/`, config `agents.health`) names each cause it finds with a stable code. A finding has a severity, its code, a subject (a source id, the sink kind, `disk`) and the time it was first seen; it is published once (`agent.finding` on the bus, the log, `/status` `agents.active`, `GET /agents/health`), updated silently while it lasts (published again only when its severity changes), and cleared by itself when the cause is gone (`agent.finding.cleared`). Evidence is PHI-free: ids, counts, times and error codes.',
    '',
    '| Code | Cause | Severity | Remedy |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    ...sections,
  ].join('\n');
}
