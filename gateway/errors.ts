/**
 * The one catalogue of stable error codes. Code decides on `code` and `retry`, never on message
 * text. Every code is documented in docs/ERRORS.md (generated from this table by a test that fails
 * when the two drift apart).
 */

export const RetryClass = {
  /** Try again later; nothing was done. */
  transient: 'transient',
  /** Outcome unknown (e.g. a timeout after sending); retry, the receiver dedupes by id. */
  ambiguous: 'ambiguous',
  /** Retrying the same thing will fail the same way; dead-letter or fix config. */
  permanent: 'permanent',
} as const;
export type RetryClass = (typeof RetryClass)[keyof typeof RetryClass];

interface CodeInfo {
  readonly retry: RetryClass;
  readonly summary: string;
  readonly action: string;
}

/** Every error code the gateway raises. */
export const ErrorCodes = {
  GW_CONFIG_INVALID: {
    retry: 'permanent',
    summary: 'The configuration failed validation.',
    action: 'Fix every field listed (path, expected, found), then run `eyewear-gateway check-config FILE`.',
  },
  GW_RELOAD_UNAVAILABLE: {
    retry: 'permanent',
    summary:
      'This gateway cannot reload its config while running: it was not started from a config file (`eyewear-gateway start --config FILE`).',
    action: 'Restart the gateway to apply the new config, or start it with --config FILE so later changes can be reloaded.',
  },
  GW_CONFIG_UNREADABLE: {
    retry: 'permanent',
    summary: 'The configuration file (or a secret file it names) could not be read or parsed.',
    action: 'Check the path, permissions and YAML syntax.',
  },
  GW_SECRET_MISSING: {
    retry: 'permanent',
    summary: 'A `${env:NAME}` or `${file:PATH}` reference in the config could not be resolved.',
    action: 'Set the environment variable or create the file, readable by the service account.',
  },
  GW_OUTBOX_FULL: {
    retry: 'transient',
    summary: 'The outbox reached its byte cap; new input is refused until the relay drains it.',
    action: 'Check cloud connectivity (`eyewear-gateway status`); raise `outbox.maxBytes` only if the disk allows.',
  },
  GW_OUTBOX_IO: {
    retry: 'transient',
    summary: 'The outbox database could not be written.',
    action: 'Check free disk space and permissions of the data directory.',
  },
  GW_STORE_CORRUPT: {
    retry: 'permanent',
    summary: 'A sealed record could not be decrypted (wrong key or damaged data).',
    action: 'Restore the key file from backup; never delete the key while records are queued.',
  },
  GW_KEY_MISSING: {
    retry: 'permanent',
    summary:
      'The seal key is missing or damaged while the outbox still holds sealed records; the gateway will not start rather than make a new key that cannot open them.',
    action:
      'Restore `<dataDir>/keys/seal.key` from its backup (`eyewear-gateway keys import FILE`). Only if the queued records are knowingly given up: move the outbox aside and start again.',
  },
  GW_KEY_IMPORT: {
    retry: 'permanent',
    summary: 'A key backup could not be written or read: wrong passphrase, a damaged or foreign backup file, or a key already in place.',
    action: 'Check the passphrase and the file; `keys import` refuses to replace an existing key unless told with `--replace`.',
  },
  GW_OUTBOX_DAMAGED: {
    retry: 'permanent',
    summary:
      'The outbox file was found damaged at start (truncated, zeroed or failing its integrity check). It was moved aside, every readable row was salvaged into a fresh outbox, and the gateway started.',
    action:
      'Read the salvage counts in `/status` (`alerts.outboxSalvaged`) and the log; keep the moved-aside file for support; check the disk (SMART, file system). Acknowledge with `POST /alerts/outboxSalvaged/clear`.',
  },
  GW_DISK_LOW: {
    retry: 'transient',
    summary:
      'Free space on the data volume is below `outbox.diskReserveBytes`: new input is refused (negative ACK, polls pause) so the outbox can still commit its acks and deletes.',
    action: 'Free disk space on the data volume; intake resumes by itself once free space is above the reserve.',
  },
  GW_SINK_WRITE_FAILED: {
    retry: 'transient',
    summary:
      'The sink could not write a whole batch (disk full, short write, I/O error); nothing was reported delivered and nothing was deleted.',
    action: "Free disk space or fix the sink folder's permissions; delivery resumes with backoff.",
  },
  GW_RECORD_UNREADABLE: {
    retry: 'permanent',
    summary:
      'A queued row could not be opened (its authentication tag failed: damaged bytes or the wrong key). It was not sent; it is quarantined in dead letters with the reason.',
    action:
      'Check the disk; if the key was replaced, restore the original one (`eyewear-gateway keys import`) and replay the dead letters.',
  },
  GW_SENDER_LIMIT: {
    retry: 'transient',
    summary:
      'An MLLP connection was closed or refused by a sender limit: its unfinished frame held the most bytes when all unfinished frames together passed `hl7.maxPartialBytesTotal`, or a frame it began was not ended within `hl7.partialFrameTimeoutMs`, or it was closed to make room at `hl7.maxConnections` (it had sent no complete frame, or had been quiet longest), or it was refused there because every connection was busy.',
    action:
      'None for a healthy sender (it reconnects and resends what was not acknowledged). If it repeats, check the sender: a slow link may need a longer `hl7.partialFrameTimeoutMs`, many legitimate large messages a larger `hl7.maxPartialBytesTotal`, many senders a larger `hl7.maxConnections`.',
  },
  GW_PARSE_FAILED: {
    retry: 'permanent',
    summary: 'The input is not a well-formed message of its format.',
    action: 'The sender must fix the message; it is kept in dead letters with the reason.',
  },
  GW_MAP_FAILED: {
    retry: 'permanent',
    summary: 'The message parsed but could not be mapped to canonical records.',
    action: 'Fix the mapping profile, then replay the dead letter.',
  },
  GW_VALIDATION_FAILED: {
    retry: 'permanent',
    summary: 'A mapped record does not satisfy the canonical schema.',
    action: 'Fix the mapping or the source data, then replay the dead letter.',
  },
  GW_UNSUPPORTED_MESSAGE: {
    retry: 'permanent',
    summary: 'The message type or event is not one the gateway maps.',
    action: 'None needed unless the message should be mapped; it is counted as ignored.',
  },
  GW_CONTROL_ID_CONFLICT: {
    retry: 'permanent',
    summary: 'A message reused a control id (MSH-10) already seen with different content.',
    action: 'The sender must use a new MSH-10 for a new message; the conflicting message is in dead letters.',
  },
  GW_SEQUENCE_GAP: {
    retry: 'transient',
    summary: "A message's MSH-13 sequence number skipped ahead of the one expected (sequence number protocol); it was not taken.",
    action: 'None: the sender resends from the number in MSA-4.',
  },
  GW_FRAME_TOO_LARGE: {
    retry: 'permanent',
    summary: 'An MLLP frame exceeded `hl7.maxFrameBytes`; the connection was closed.',
    action: 'Raise the limit if such messages are legitimate.',
  },
  GW_SINK_UNREACHABLE: {
    retry: 'transient',
    summary: 'The sink (broker or endpoint) could not be reached.',
    action: 'Records stay queued; check network, DNS, TLS and credentials.',
  },
  GW_SINK_TIMEOUT: {
    retry: 'ambiguous',
    summary: 'The cloud did not acknowledge a batch in time.',
    action: 'The batch is resent; the cloud drops duplicates by record id.',
  },
  GW_SINK_RETRY_LATER: {
    retry: 'transient',
    summary: 'The cloud asked to retry later (HTTP 429 or 5xx).',
    action: 'None; delivery resumes with backoff.',
  },
  GW_SINK_AUTH: {
    retry: 'transient',
    summary:
      "The cloud refused the gateway's credentials or does not know this gateway (HTTP 401/403/404/407). A config problem, not a record problem: records stay queued.",
    action: 'Check `https.token`/`https.url` (or re-enrol the gateway); delivery resumes by itself once fixed.',
  },
  GW_SINK_REJECTED: {
    retry: 'permanent',
    summary: 'The cloud rejected a record permanently (HTTP 4xx or a reject ack).',
    action: 'The record is in dead letters with the reason; fix and replay.',
  },
  GW_COMMAND_REFUSED: {
    retry: 'permanent',
    summary:
      'A cloud command was refused: unsigned or wrongly signed, expired, for another gateway, replayed, or of an unknown type. It was audited and not carried out.',
    action: 'Check the pinned `cloud.commandPublicKey` and the gateway clock; the cloud must sign each command with a fresh id.',
  },
  GW_UPDATE_REFUSED: {
    retry: 'permanent',
    summary:
      'An update manifest or its download was refused: unsigned or below the signature threshold, expired, older than the installed version, for another platform, or the file does not match its SHA-256 or size. Nothing was installed.',
    action:
      'Check the pinned release keys and the gateway clock; the cloud team must publish a freshly signed manifest for this platform and version.',
  },
  GW_UPDATE_ROLLED_BACK: {
    retry: 'permanent',
    summary:
      'A new version did not pass its health gate (not ready, its sink not connected, it exited, hung or did not start) and the previous executable was put back by itself; the previous version runs. The reason is in `eyewear-gateway update status` and on up/status.',
    action:
      'Nothing at the practice. The cloud team reads the reason, fixes the release and publishes a newer version: this one is not tried again on this gateway.',
  },
  GW_ENROLMENT_CODE_REFUSED: {
    retry: 'permanent',
    summary:
      'The cloud refused the enrolment code: unknown (mistyped), already used, or expired. An enrolment code works once and only for a limited time. Nothing was written.',
    action: 'Ask the eyewear-ML cloud team for a new enrolment code, then run `eyewear-gateway enrol NEW-CODE --cloud URL` again.',
  },
  GW_ENROLMENT_FAILED: {
    retry: 'transient',
    summary:
      "Enrolment (or a certificate renewal) did not complete: the cloud's enrolment endpoint could not be reached (DNS, TCP, TLS), its certificate is not trusted, or it answered something unusable. Nothing was replaced.",
    action:
      "Check the --cloud URL and that this machine reaches it (firewall, proxy); if the cloud's TLS certificate comes from a private CA, pass that CA with --ca FILE; then run the command again. A running gateway retries a renewal by itself.",
  },
  GW_ALREADY_ENROLLED: {
    retry: 'permanent',
    summary: 'This data folder already holds a device identity (an enrolment); enrol does not replace it unless told.',
    action:
      'Keep the existing identity (`eyewear-gateway doctor` shows it), or run enrol again with --force to replace it, and ask the cloud team to revoke the old certificate.',
  },
  GW_DEVICE_CERT_EXPIRED: {
    retry: 'permanent',
    summary:
      "The gateway's device certificate has expired (it was not renewed in time: the gateway was off or could not reach the cloud), so the broker refuses the gateway. Records stay queued in the outbox.",
    action:
      'Re-enrol: ask the eyewear-ML cloud team for a new enrolment code, then run `eyewear-gateway enrol CODE --cloud URL --force` and restart the gateway.',
  },
  GW_DEVICE_CERT_REVOKED: {
    retry: 'permanent',
    summary:
      "The cloud revoked this gateway's device certificate (it refused the renewal), so the gateway will lose its connection to the broker. Records stay queued in the outbox.",
    action:
      'Ask the eyewear-ML cloud team why it was revoked and for a new enrolment code, then run `eyewear-gateway enrol CODE --cloud URL --force` and restart the gateway.',
  },
  GW_DEVICE_IDENTITY_DAMAGED: {
    retry: 'permanent',
    summary:
      "The device-identity folder (`<dataDir>/identity/`) is incomplete or damaged: a file is missing, unreadable, or does not match the others (the key is not the certificate's).",
    action:
      'Restore the data folder from its backup, or re-enrol: ask the cloud team for a new enrolment code and run `eyewear-gateway enrol CODE --cloud URL --force`.',
  },
  GW_ADMIN_UNAUTHORIZED: {
    retry: 'permanent',
    summary: 'The admin API request had no or a wrong bearer token.',
    action: 'Use the token in `<dataDir>/admin.token`.',
  },
  GW_CDS_TOKEN_REFUSED: {
    retry: 'permanent',
    summary:
      "A CDS Hooks request's JWT was refused (401): none sent, an issuer or `jku` not in `cdsHooks.issuers`, an algorithm other than RS256/RS384/ES256/ES384 (HS* never), a signature that does not verify, an `aud` other than the service URL, expired or valid longer than 5 minutes, no `iat`/`jti`, or a `jti` already used. Logged with the reason, counted in `/status`.",
    action:
      "Compare the EHR's CDS Hooks client settings with `cdsHooks.issuers` (iss, jku) and `cdsHooks.publicUrl` (aud is it plus `/cds-services/{id}`), and check both clocks. Many `replay` or `algorithm` refusals are not a misconfiguration: treat them as an attack on the port.",
  },
  GW_CDS_KEYS_UNAVAILABLE: {
    retry: 'transient',
    summary:
      "The EHR's JWK Set (its `jku`) could not be fetched or read, so a CDS Hooks request could not be checked; it was answered 503 and no card was shown.",
    action: 'Check that this machine reaches the jku URL (DNS, firewall, proxy); requests are checked again as soon as it answers.',
  },
  GW_CDS_BAD_REQUEST: {
    retry: 'permanent',
    summary:
      'A CDS Hooks call was not a CDS Hooks 2.0 request for that service (another hook, no `context.patientId`, not JSON, too large): answered 400.',
    action: "Check the EHR's CDS Hooks client: each service's hook is in `GET /cds-services`.",
  },
  GW_CDS_UNAVAILABLE: {
    retry: 'transient',
    summary: 'The CDS service could not answer a verified request (its read model could not be read): answered 500, no card shown.',
    action: "Read the log line's cause; check the data folder's free space and permissions. The next request is tried afresh.",
  },
  GW_NOT_FOUND: { retry: 'permanent', summary: 'The requested item does not exist.', action: 'Check the id.' },
  GW_SOURCE_UNREACHABLE: {
    retry: 'transient',
    summary: 'A polled source (a PMS database, a FHIR server) could not be reached or a query failed; reads pause, nothing is skipped.',
    action: 'Check the database host, port, credentials and `eyewear-gateway db check`; polling resumes by itself from the stored cursor.',
  },
  GW_API_AUTH_FAILED: {
    retry: 'permanent',
    summary:
      "A FHIR or vendor API refused the gateway's credentials: the token endpoint refused the signed client assertion, or a request with a fresh token got 401/403.",
    action:
      'Check clientId, that the public key from `eyewear-gateway fhir jwks` is registered with the vendor (or served at jwksUrl), keyAlg, and the scopes; then `eyewear-gateway fhir check`. For an `apis[]` source: the client id and secret or API key, and `eyewear-gateway api check`; a refused refresh token (`invalid_grant`) needs the practice to authorize the gateway again (the new token in auth.refreshToken).',
  },
  GW_API_REFUSED: {
    retry: 'permanent',
    summary:
      'A FHIR or vendor API refused a request (a 4xx other than 401/403/429), or answered with something that is not what FHIR says it must be.',
    action:
      "The server's OperationOutcome codes are in the log and `/status`; check baseUrl and the resources configured, then `eyewear-gateway fhir check`.",
  },
  GW_API_QUOTA_EXHAUSTED: {
    retry: 'transient',
    summary: "The source's daily call cap (its vendor's published limit, or rateLimit.perDay) is spent; reads wait for the next UTC day.",
    action:
      'Nothing is lost: reading resumes from the cursor. Raise rateLimit.perDay only if the vendor allows it, or read fewer resources.',
  },
  GW_FHIR_NOT_R4: {
    retry: 'permanent',
    summary: 'The FHIR server at baseUrl is not FHIR R4 (4.0.x): its CapabilityStatement names another version.',
    action: "Point baseUrl at the server's R4 endpoint (vendors publish DSTU2, STU3 and R4 at different URLs).",
  },
  GW_FHIR_BULK_FAILED: {
    retry: 'transient',
    summary:
      'A Bulk Data export failed: the kick-off was refused, the job was lost or failed on the server, or it ran past bulk.maxWaitMinutes.',
    action:
      'It is tried again on the next cycle from the same _since; nothing committed is lost. If it keeps failing, set bulk.mode to never to page through searches instead.',
  },
  GW_FHIR_WRITE_CONFLICT: {
    retry: 'permanent',
    summary:
      "A `fhir.write` update was refused by the FHIR server with 412: the resource changed on the server since the version the command named in `ifMatch` (or is gone), and the gateway's read-back found other content there. Nothing was overwritten; the command is reported failed.",
    action: 'The cloud reads the current version, decides again with it, and sends a new command with that version in `ifMatch`.',
  },
  GW_SOURCE_FOLDER_MISSING: {
    retry: 'transient',
    summary:
      "A file source's folder does not exist (an unmounted share, a typo in `files[].dir`): the source is unhealthy and does not create it, so files are never written into an empty mount point; it starts reading by itself once the folder appears.",
    action: 'Mount the share (or create the folder, or fix `files[].dir`); nothing else is needed.',
  },
  GW_DATA_DIR_IN_USE: {
    retry: 'permanent',
    summary:
      "Another gateway process holds the data folder's lease (`<dataDir>/gateway.lock`): two gateways on one folder would send and delete the same records, so this one did not start.",
    action:
      'Stop the other gateway (the message names its pid and host), or give this one its own `gateway.dataDir`. Only if that pid is no gateway (a reused pid on Windows) or the host named no longer runs one on this folder: delete the lease file.',
  },
  GW_START_FAILED: {
    retry: 'transient',
    summary:
      'A component failed to start; the others keep running. A listener that cannot bind its port (EADDRINUSE: in use; EACCES: not allowed; EADDRNOTAVAIL: no such address here) shows in the start banner, `/ready` and `status`; when no source and no admin API could start, `start` exits 1.',
    action:
      'Read the cause: free the port or change `hl7.port` / `admin.port` (or the host); for other causes (unreachable host) fix what the log names. The component is retried.',
  },
  GW_INSTALL_REFUSED: {
    retry: 'permanent',
    summary:
      '`install` or `uninstall` refused before changing anything: not run as root (Linux) or from an elevated prompt (Windows), systemd not running, no executable to install (run from the TypeScript sources), a config it cannot install, or `--purge` not confirmed. The message says which.',
    action:
      'Do what the message says: `sudo eyewear-gateway install` (Linux) or an elevated "Run as administrator" prompt (Windows); build the executable (`npm run build:binary`) or pass `--exec FILE`; `install --print` shows and `install --root DIR` stages the files without installing.',
  },
  GW_INSTALL_FAILED: {
    retry: 'transient',
    summary:
      'A step of `install` or `uninstall` failed: the steps listed before it were done, the ones after it were not. The message names the step and what the program it ran said.',
    action:
      'Fix the cause the message names (for a service that did not start: `journalctl -u eyewear-gateway -n 50`), then run the same command again: every step is safe to repeat.',
  },
  GW_USAGE: { retry: 'permanent', summary: 'The command line was not understood.', action: 'Run with `--help`.' },
} as const satisfies Record<string, CodeInfo>;
export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code; wrap the underlying error as `cause`. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly retry: RetryClass;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown>; retry?: RetryClass }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.retry = options?.retry ?? ErrorCodes[code].retry;
    this.details = options?.details;
  }
}

export function isGatewayError(e: unknown, code?: ErrorCode): e is GatewayError {
  return e instanceof GatewayError && (code === undefined || e.code === code);
}

/** Markdown for docs/ERRORS.md: one row per code. */
export function renderErrorCatalogue(): string {
  const rows = Object.entries(ErrorCodes).map(([code, info]) => `| \`${code}\` | ${info.retry} | ${info.summary} | ${info.action} |`);
  return [
    '# Error codes',
    '',
    'Generated from `gateway/errors.ts` (`npm run docs` regenerates it; a test fails when it drifts).',
    '',
    '| code | retry class | meaning | what to do |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
