/**
 * The config rules the schema's shape cannot say: fields that need each other, values that must
 * parse (PEM keys, URLs, time zones, cron schedules, regular expressions), ids that must be unique,
 * ports that must not collide. `loadConfig` runs them after schema validation, so `start` and
 * `check-config` refuse the same configs, each problem with the field's path, what was expected,
 * what was found and what to do — before anything starts, instead of a bare error from deep inside
 * a source or sink at start.
 *
 * Each rule mirrors a check that a component makes when it starts (named beside the rule), so the
 * component's own check stays as a last line and never fires for a config that loaded.
 */
import { createPublicKey } from 'node:crypto';
import cron from 'node-cron';
import { cdsHooksRules } from './cds-hooks-rules.ts';
import { apiRules } from './api-rules.ts';
import { fhirRules } from './fhir-rules.ts';
import { VENDOR_WRITE_BACK, vendorPermits } from '../adapters/fhir/write-back.ts';
import type { ConfigProblem } from './load.ts';
import type { DatabaseConfig, FilesConfig, FtpsConfig, GatewayConfig, SftpConfig } from './schema.ts';

export interface RuleOptions {
  /** `check-config --offline`: values that still hold a `${env:…}`/`${file:…}` reference are not checked. */
  readonly offline?: boolean;
}

/** A `${env:NAME}` or `${file:PATH}` reference left in place (offline check). */
export const isReference = (v: unknown): v is string => typeof v === 'string' && /\$\{(env|file):[^}]+\}/.test(v);

/** The MLLP listener's adapter id (adapters/hl7v2/mllp-listener.ts); a source may not take it. */
const HL7_ADAPTER_ID = 'hl7v2';

/** EC curves the cloud envelope can encrypt to (gateway/crypto/cloud-envelope.ts NODE_CURVE). */
const CLOUD_CURVES = ['P-256', 'P-384', 'P-521'];

/** `SHA256:` and 43 characters of unpadded base64, as `ssh-keygen -lf` prints a host key fingerprint. */
const SSH_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** A SHA-256 certificate fingerprint: 64 hex digits, with or without colons, optionally `sha256:` first. */
const CERT_FINGERPRINT = /^(sha256:)?([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/i;

/** Every rule problem of a validated, defaulted config; empty when it may start. */
export function checkRules(c: GatewayConfig, opts: RuleOptions = {}): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const add = (path: string, expected: string, found: string, todo: string) => out.push({ path, expected, found, todo });
  const skip = (v: unknown) => opts.offline === true && isReference(v);

  folderRules(c, add);
  idRules(c, add);
  portRules(c, add);
  timezoneRule(c.gateway.timezone, add);
  cloudRules(c, add, skip);
  urlRules(c, add);
  cdsHooksRules(c, add, skip);
  fhirRules(c, add);
  apiRules(c, add);
  c.databases.forEach((d, i) => databaseRules(d, `databases[${i}]`, add));
  c.files.forEach((f, i) => fileRules(f, `files[${i}]`, add));
  c.fhir.forEach((f, i) => fhirWriteBackRules(f, `fhir[${i}]`, add));
  c.fileOutputs.forEach((t, i) => {
    if (t.kind === 'sftp') sftpRules(t.sftp, `fileOutputs[${i}].sftp`, add, false);
    if (t.kind === 'ftps') ftpsRules(t.ftps, `fileOutputs[${i}].ftps`, add, false);
  });
  return out;
}

type Add = (path: string, expected: string, found: string, todo: string) => void;

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** Version 2 reads HL7 folders as `files[]` (config/migrate.ts moves a version 1 file's `folders[]` there). */
function folderRules(c: GatewayConfig, add: Add): void {
  if (c.folders.length > 0)
    add(
      'folders',
      'no entries (config version 2 reads HL7 folders as files[] entries with profile hl7v2)',
      `${c.folders.length} entr${c.folders.length === 1 ? 'y' : 'ies'}`,
      'run `eyewear-gateway migrate-config FILE`, or remove `version: 2` so the file is read as version 1 and migrated on load',
    );
}

/** Source ids name adapters in status, logs, cursors and dead letters: one id, one source. */
function idRules(c: GatewayConfig, add: Add): void {
  const seen = new Map<string, string>([[HL7_ADAPTER_ID, 'the HL7 listener']]);
  const lists: Array<[string, ReadonlyArray<{ id: string }>]> = [
    ['databases', c.databases],
    ['files', c.files],
    ['fhir', c.fhir],
    ['apis', c.apis],
  ];
  for (const [name, list] of lists) {
    list.forEach((e, i) => {
      const path = `${name}[${i}].id`;
      const first = seen.get(e.id);
      if (first) add(path, `an id no other source has (${first} has "${e.id}")`, show(e.id), 'give each source its own id');
      else seen.set(e.id, path);
    });
  }
  const targets = new Map<string, string>();
  c.fileOutputs.forEach((t, i) => {
    const path = `fileOutputs[${i}].id`;
    const first = targets.get(t.id);
    if (first)
      add(
        path,
        `an id no other file output has (${first} has "${t.id}")`,
        show(t.id),
        'give each file output its own id: file.write commands pick the target by it',
      );
    else targets.set(t.id, path);
  });
}

/** Two listeners on one port: the second cannot bind (gateway start). 0 is an ephemeral port, never a clash. */
function portRules(c: GatewayConfig, add: Add): void {
  if (!c.hl7.enabled || !c.admin.enabled || c.hl7.port === 0 || c.hl7.port !== c.admin.port) return;
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  if (c.hl7.host === c.admin.host || wildcard(c.hl7.host) || wildcard(c.admin.host)) {
    add(
      'hl7.port',
      `a port other than admin.port (${c.admin.port}) on ${c.hl7.host}`,
      String(c.hl7.port),
      'move the MLLP listener or the admin API to another port (defaults: 2575 and 8480)',
    );
  }
}

/** Source times without an offset are read in this zone (gateway resolveTimezone; Intl is the zone database). */
function timezoneRule(tz: string, add: Add): void {
  if (tz === '') return;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    add(
      'gateway.timezone',
      'an IANA time zone (e.g. America/Chicago, Europe/Berlin, UTC)',
      show(tz),
      "use the practice's zone from the IANA list, or leave it empty for the machine's zone",
    );
  }
}

/** The cloud envelope (createCloudEnvelope) and the command verifier (createCommandVerifier) parse these at start. */
function cloudRules(c: GatewayConfig, add: Add, skip: (v: unknown) => boolean): void {
  const pk = c.cloud.publicKey;
  if (c.relay.sink !== 'file' && !pk) {
    add(
      'cloud.publicKey',
      `the cloud public key (PEM) when relay.sink is ${c.relay.sink}`,
      'nothing',
      'set cloud.publicKey: ${file:/path/cloud-public.pem} (the key the eyewear-ML cloud gave at enrolment)',
    );
  }
  if (pk && !skip(pk)) {
    const k = publicKeyOf(pk);
    if (!k.ok)
      add(
        'cloud.publicKey',
        'a PEM public key (-----BEGIN PUBLIC KEY-----), EC P-256/P-384/P-521 or RSA',
        k.found,
        "point it at the cloud's public key file: cloud.publicKey: ${file:/path/cloud-public.pem}",
      );
    else if (k.type === 'ec' ? !CLOUD_CURVES.includes(k.curve) : k.type !== 'rsa')
      add(
        'cloud.publicKey',
        'an EC (P-256, P-384, P-521) or RSA public key',
        k.type === 'ec' ? `an EC key on ${k.curve}` : `a ${k.type} key`,
        'use the encryption key the cloud gave at enrolment (not its command key)',
      );
  }
  const ck = c.cloud.commandPublicKey;
  if (ck && !skip(ck)) {
    const k = publicKeyOf(ck);
    if (!k.ok)
      add(
        'cloud.commandPublicKey',
        'a PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)',
        k.found,
        "point it at the cloud's command key file: cloud.commandPublicKey: ${file:/path/cloud-command.pem}",
      );
    else if (k.type !== 'ed25519')
      add(
        'cloud.commandPublicKey',
        'an Ed25519 public key',
        `a ${k.type} key`,
        'use the command-signing key the cloud gave at enrolment (not its encryption key)',
      );
  }
  const rks = c.cloud.releaseKeys;
  rks.forEach((rk, i) => {
    if (skip(rk)) return;
    const k = publicKeyOf(rk);
    if (!k.ok || k.type !== 'ed25519')
      add(
        `cloud.releaseKeys[${i}]`,
        'a PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)',
        k.ok ? `an ${k.type} key` : k.found,
        "point it at the cloud's release key file: - ${file:/path/release-1.pem}",
      );
  });
  if (c.cloud.releaseKeyThreshold > rks.length && rks.length > 0)
    add(
      'cloud.releaseKeyThreshold',
      `at most the number of release keys (${rks.length})`,
      String(c.cloud.releaseKeyThreshold),
      'pin as many release keys as the threshold asks, or lower the threshold',
    );
}

function publicKeyOf(pem: string): { ok: true; type: string; curve: string } | { ok: false; found: string } {
  try {
    const key = createPublicKey(pem);
    const type = String(key.asymmetricKeyType);
    const curve = type === 'ec' ? String(key.export({ format: 'jwk' }).crv) : '';
    return { ok: true, type, curve };
  } catch {
    // never the text itself: a private key pasted here by mistake must not reach the screen
    return {
      ok: false,
      found: pem.includes('PRIVATE KEY')
        ? 'a private key (give the public key only)'
        : pem.includes('-----BEGIN')
          ? 'a PEM block that does not parse as a public key'
          : `text that is not PEM (${pem.length} characters)`,
    };
  }
}

/** The sinks build their endpoint from these (https-sink: `new URL`; mqtt-sink: mqtt.connect). */
function urlRules(c: GatewayConfig, add: Add): void {
  const check = (path: string, v: string, protocols: string[], todo: string) => {
    // a URL may carry a user and password: never shown
    const shown = show(v.replace(/\/\/[^/@]*@/, '//(credentials not shown)@'));
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      add(path, `a URL (${protocols.map((p) => `${p}//`).join(' or ')}host…)`, shown, todo);
      return;
    }
    if (!protocols.includes(u.protocol)) add(path, `a URL starting ${protocols.map((p) => `${p}//`).join(' or ')}`, shown, todo);
  };
  check('https.url', c.https.url, ['https:', 'http:'], 'use the cloud ingest URL, https://… (http:// only on a test bench)');
  check('mqtt.url', c.mqtt.url, ['mqtts:', 'mqtt:', 'wss:', 'ws:'], 'use the broker URL, mqtts://host:8883 (mqtt:// only on a test bench)');
}

/** adapters/sql: createDatabaseSource (streams), sql-driver (sqlite file, engine), sql-query (table or one SELECT). */
function databaseRules(d: DatabaseConfig, at: string, add: Add): void {
  if (d.engine === 'sqlite') {
    if (!d.file) add(`${at}.file`, 'the SQLite database file (engine sqlite)', 'nothing', 'set file: to the path of the PMS database file');
  } else {
    if (!d.host)
      add(`${at}.host`, `the ${d.engine} server's address`, show(d.host), 'set host: to the database server (name or IP address)');
    if (!d.user)
      add(
        `${at}.user`,
        `a read-only ${d.engine} user`,
        show(d.user),
        'set user: to a user that may read the PMS tables (and password: ${env:NAME})',
      );
  }
  if (d.profile === 'generic' && d.streams.length === 0)
    add(
      `${at}.streams`,
      'at least one stream (profile generic reads only the streams given)',
      '[]',
      'add streams: (table, key and records each), or set profile: practice-studio',
    );
  const names = new Map<string, number>();
  d.streams.forEach((s, j) => {
    const sp = `${at}.streams[${j}]`;
    if (names.has(s.name))
      add(
        `${sp}.name`,
        `a name no other stream of ${d.id} has (streams[${names.get(s.name)}] has it)`,
        show(s.name),
        "give each stream its own name: it keys the stream's cursor",
      );
    else names.set(s.name, j);
    if (!s.table && !s.query)
      add(`${sp}.table`, 'a table, or a query', 'neither', 'set table: (schema.table allowed) or query: (one SELECT)');
    if (s.query && s.query.includes(';'))
      add(
        `${sp}.query`,
        'one SELECT statement, without ;',
        'a ;',
        'remove the ; (and any second statement): the query is wrapped as a subquery',
      );
  });
  // a deletion log names the stream whose rows it deletes; a generic database's streams are all given here
  if (d.profile === 'generic') {
    d.streams.forEach((s, j) => {
      for (const [table, target] of Object.entries(s.tombstone?.targets ?? {})) {
        if (!names.has(target))
          add(
            `${at}.streams[${j}].tombstone.targets.${table}`,
            `the name of a stream of ${d.id} (${[...names.keys()].join(', ')})`,
            show(target),
            'name the stream whose rows this deletion log removes',
          );
      }
    });
  }
  if (d.realtime === 'listen' && d.engine !== 'postgres')
    add(
      `${at}.realtime`,
      '"off" (real time is PostgreSQL LISTEN/NOTIFY)',
      show(d.realtime),
      `set realtime: off; ${d.engine} is polled every pollIntervalMs`,
    );
  if (d.writeBack.enabled && Object.keys(d.writeBack.statements).length === 0)
    add(
      `${at}.writeBack.statements`,
      'at least one statement when write-back is enabled',
      '{}',
      'name the statements db.write commands may run, or set writeBack.enabled: false',
    );
}

/** adapters/fhir/write-back.ts checkFhirWrite: the types named are ones the vendor lets a backend app write. */
function fhirWriteBackRules(f: GatewayConfig['fhir'][number], at: string, add: Add): void {
  if (!f.writeBack.enabled) return;
  if (f.writeBack.resources.length === 0)
    add(
      `${at}.writeBack.resources`,
      'at least one resource type when write-back is enabled',
      '[]',
      'name the types fhir.write commands may create or update, or set writeBack.enabled: false',
    );
  const permits = VENDOR_WRITE_BACK[f.vendor];
  const refused = f.writeBack.resources.filter((r) => !vendorPermits(f.vendor, r, 'create') && !vendorPermits(f.vendor, r, 'update'));
  if (refused.length > 0)
    add(
      `${at}.writeBack.resources`,
      `types this vendor takes writes of: ${Object.keys(permits.permits).join(', ') || 'none'}`,
      refused.join(', '),
      `${permits.note} Remove ${refused.join(', ')}.`,
    );
}

/** adapters/file: profileOf (kinds), remote-source (cron), remote-folder (pinned host key / certificate). */
function fileRules(f: FilesConfig, at: string, add: Add): void {
  if (f.profile === 'generic' && f.kinds.length === 0)
    add(
      `${at}.kinds`,
      'at least one kind (profile generic reads only the kinds given)',
      '[]',
      'add kinds: (name, match, records each), or pick a built-in profile',
    );
  encodingRule(f.csv.encoding, `${at}.csv.encoding`, add);
  f.kinds.forEach((k, j) => {
    try {
      new RegExp(k.match, 'i');
    } catch {
      add(
        `${at}.kinds[${j}].match`,
        'a regular expression on the file name',
        show(k.match),
        'fix the expression (e.g. ^patients.*\\.csv$)',
      );
    }
    if (k.csv?.encoding !== undefined) encodingRule(k.csv.encoding, `${at}.kinds[${j}].csv.encoding`, add);
  });
  if (f.source === 'sftp') sftpRules(f.sftp, `${at}.sftp`, add, true);
  if (f.source === 'ftps') ftpsRules(f.ftps, `${at}.ftps`, add, true);
}

/** adapters/file/file-formats.ts decodes with TextDecoder: an encoding it does not know sends every file to error/. */
function encodingRule(encoding: string, path: string, add: Add): void {
  try {
    new TextDecoder(encoding);
  } catch {
    add(
      path,
      'a text encoding (utf-8, windows-1252, iso-8859-1, utf-16le …)',
      show(encoding),
      'use the encoding the PMS exports in (the WHATWG Encoding names)',
    );
  }
}

function scheduleRule(schedule: string, path: string, add: Add): void {
  if (!cron.validate(schedule))
    add(
      path,
      'a cron schedule (5 fields, or 6 with seconds first), e.g. */30 * * * * *',
      show(schedule),
      'fix the schedule (node-cron syntax)',
    );
}

function sftpRules(s: SftpConfig, at: string, add: Add, polled: boolean): void {
  if (!s.hostKeySha256)
    add(
      `${at}.hostKeySha256`,
      "the server's pinned host key fingerprint (SHA256:…)",
      'nothing',
      'run `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server (or `ssh-keyscan HOST | ssh-keygen -lf -`) and paste the SHA256:… value',
    );
  else if (!SSH_FINGERPRINT.test(s.hostKeySha256))
    add(
      `${at}.hostKeySha256`,
      'a fingerprint as ssh-keygen -lf prints it: SHA256: and 43 characters',
      show(s.hostKeySha256),
      'copy the SHA256:… value exactly, without the key type or comment',
    );
  if (polled) scheduleRule(s.schedule, `${at}.schedule`, add);
}

function ftpsRules(s: FtpsConfig, at: string, add: Add, polled: boolean): void {
  if (!s.ca && !s.certSha256)
    add(
      `${at}.certSha256`,
      'ca (the CA of the server certificate) or certSha256 (its pinned fingerprint)',
      'neither',
      'run `openssl s_client -starttls ftp -connect HOST:21 | openssl x509 -noout -fingerprint -sha256` and paste the fingerprint',
    );
  else if (s.certSha256 && !CERT_FINGERPRINT.test(s.certSha256))
    add(
      `${at}.certSha256`,
      'a SHA-256 fingerprint (64 hex digits, colons allowed)',
      show(s.certSha256),
      'copy the fingerprint openssl x509 -fingerprint -sha256 prints',
    );
  if (polled) scheduleRule(s.schedule, `${at}.schedule`, add);
}
