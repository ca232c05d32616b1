/**
 * Every rule `start` enforces, `check-config` enforces: each config below loaded (passed
 * check-config) before config/rules.ts and then failed at start, or ran wrongly. Each test loads
 * it through loadConfig, as both commands do, and pins the one problem: its path and what it says.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ConfigProblem } from '../../config/load.ts';

const pem = (type: 'ec' | 'rsa' | 'ed25519' | 'x25519', opts: Record<string, unknown> = {}) =>
  (
    generateKeyPairSync as (
      t: string,
      o: Record<string, unknown>,
    ) => {
      publicKey: { export(o: { type: string; format: string }): string | Buffer };
      privateKey: { export(o: { type: string; format: string }): string | Buffer };
    }
  )(type, opts);
const ecPublic = String(pem('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
const FP = `SHA256:${'A'.repeat(43)}`;

/** The problems a config (given as overrides over the defaults) is refused with. */
function refused(overrides: Record<string, unknown>, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    loadConfig({ env, overrides });
  } catch (e) {
    if (e instanceof ConfigError) {
      expect(e.code).toBe('GW_CONFIG_INVALID');
      return [...e.problems];
    }
    throw e;
  }
  throw new Error('the config loaded; expected it refused');
}

/** The one problem at `path`; fails when there are others, so a test pins exactly its rule. */
function only(problems: ConfigProblem[], path: string): ConfigProblem {
  expect(problems.map((p) => p.path)).toEqual([path]);
  expect(problems[0].todo, 'every rule says what to do').toBeTruthy();
  return problems[0];
}

const sqliteDb = {
  id: 'pms',
  engine: 'sqlite',
  file: '/srv/pms.db',
  streams: [{ name: 'patients', table: 'patient', key: 'id', records: [{ type: 'patient', fields: { 'name.family': 'last' } }] }],
};
const csvKinds = [{ name: 'patients', match: '^patients.*\\.csv$', records: [{ type: 'patient', fields: { 'name.family': 'last' } }] }];

describe('config rules (start and check-config refuse the same configs)', () => {
  it('a database server source needs a host', () => {
    const p = only(
      refused({ databases: [{ ...sqliteDb, engine: 'postgres', file: undefined, host: '', user: 'reader' }] }),
      'databases[0].host',
    );
    expect(p.found).toBe('""');
  });

  it('a database server source needs a user', () => {
    const p = only(refused({ databases: [{ ...sqliteDb, engine: 'mariadb', file: undefined, host: 'db.lan' }] }), 'databases[0].user');
    expect(p.expected).toBe('a read-only mariadb user');
  });

  it('a generic database source needs streams', () => {
    const p = only(refused({ databases: [{ ...sqliteDb, streams: [] }] }), 'databases[0].streams');
    expect(p.found).toBe('[]');
  });

  it('a sqlite source needs its file', () => {
    only(refused({ databases: [{ ...sqliteDb, file: undefined }] }), 'databases[0].file');
  });

  it('a stream needs a table or a query, and a query is one statement', () => {
    only(
      refused({ databases: [{ ...sqliteDb, streams: [{ ...sqliteDb.streams[0], table: undefined }] }] }),
      'databases[0].streams[0].table',
    );
    only(
      refused({
        databases: [{ ...sqliteDb, streams: [{ ...sqliteDb.streams[0], table: undefined, query: 'SELECT * FROM a; DROP TABLE a' }] }],
      }),
      'databases[0].streams[0].query',
    );
  });

  it('two streams of one database may not share a name (it keys the cursor)', () => {
    only(
      refused({ databases: [{ ...sqliteDb, streams: [sqliteDb.streams[0], { ...sqliteDb.streams[0], table: 'patient2' }] }] }),
      'databases[0].streams[1].name',
    );
  });

  it('real time is PostgreSQL only', () => {
    only(refused({ databases: [{ ...sqliteDb, realtime: 'listen' }] }), 'databases[0].realtime');
  });

  it('write-back enabled needs statements', () => {
    only(refused({ databases: [{ ...sqliteDb, writeBack: { enabled: true } }] }), 'databases[0].writeBack.statements');
  });

  it('FHIR write-back enabled needs resource types, each one the vendor takes writes of', () => {
    const fhir = (vendor: string, resources: string[]) => ({
      fhir: [
        {
          id: 'ehr',
          vendor,
          baseUrl: 'https://ehr.example/fhir/r4',
          clientId: 'c',
          resources: ['Patient'],
          bulk: { groupId: 'g' },
          writeBack: { enabled: true, resources },
        },
      ],
    });
    only(refused(fhir('generic', [])), 'fhir[0].writeBack.resources');
    const p = only(refused(fhir('epic', ['Appointment', 'DocumentReference', 'VisionPrescription'])), 'fhir[0].writeBack.resources');
    expect(p.expected).toBe('types this vendor takes writes of: DocumentReference');
    expect(p.found).toBe('Appointment, VisionPrescription');
    expect(() => loadConfig({ env: {}, overrides: fhir('epic', ['DocumentReference']) })).not.toThrow();
  });

  it('cloud.publicKey must be a PEM public key (not a bare OpenSSL error at start)', () => {
    const p = only(refused({ relay: { sink: 'https' }, cloud: { publicKey: 'not a pem' } }), 'cloud.publicKey');
    expect(p.found).toBe('text that is not PEM (9 characters)');
  });

  it('a private key given as cloud.publicKey is refused without being shown', () => {
    const priv = String(pem('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }));
    const p = only(
      refused({ relay: { sink: 'mqtt' }, cloud: { publicKey: priv.replace('EC PRIVATE', 'BROKEN PRIVATE') } }),
      'cloud.publicKey',
    );
    expect(p.found).toBe('a private key (give the public key only)');
  });

  it('cloud.publicKey must be EC or RSA (what the envelope encrypts to)', () => {
    const ed = String(pem('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    expect(only(refused({ relay: { sink: 'mqtt' }, cloud: { publicKey: ed } }), 'cloud.publicKey').found).toBe('a ed25519 key');
  });

  it('the mqtt and https sinks need cloud.publicKey', () => {
    only(refused({ relay: { sink: 'https' } }), 'cloud.publicKey');
  });

  it('cloud.commandPublicKey must be an Ed25519 public key', () => {
    expect(only(refused({ cloud: { commandPublicKey: ecPublic } }), 'cloud.commandPublicKey').found).toBe('a ec key');
    only(refused({ cloud: { commandPublicKey: 'nope' } }), 'cloud.commandPublicKey');
  });

  it('https.url must be an http(s) URL', () => {
    const p = only(refused({ https: { url: 'ftp://x' } }), 'https.url');
    expect(p.found).toBe('"ftp://x"');
    only(refused({ https: { url: 'not a url' } }), 'https.url');
  });

  it('mqtt.url must be an MQTT URL, and a password in it is not shown', () => {
    only(refused({ mqtt: { url: 'https://broker:8883' } }), 'mqtt.url');
    expect(only(refused({ mqtt: { url: 'ftp://gw:hunter2@broker' } }), 'mqtt.url').found).toBe('"ftp://(credentials not shown)@broker"');
  });

  it('gateway.timezone must be an IANA zone', () => {
    const p = only(refused({ gateway: { timezone: 'Mars/Olympus' } }), 'gateway.timezone');
    expect(p.found).toBe('"Mars/Olympus"');
    expect(loadConfig({ env: {}, overrides: { gateway: { timezone: 'America/Chicago' } } }).gateway.timezone).toBe('America/Chicago');
  });

  it('two files[] entries may not share an id', () => {
    const p = only(
      refused({
        files: [
          { id: 'exp', dir: '/a', profile: 'optical-csv' },
          { id: 'exp', dir: '/b', profile: 'optical-csv' },
        ],
      }),
      'files[1].id',
    );
    expect(p.expected).toContain('files[0].id');
  });

  it("a source may not take another source's id, nor the HL7 listener's", () => {
    only(refused({ databases: [sqliteDb], files: [{ id: 'pms', dir: '/a', profile: 'optical-csv' }] }), 'files[0].id');
    only(refused({ files: [{ id: 'hl7v2', dir: '/a', profile: 'optical-csv' }] }), 'files[0].id');
  });

  it('two fileOutputs[] may not share an id', () => {
    only(
      refused({
        fileOutputs: [
          { id: 'o', dir: '/a' },
          { id: 'o', dir: '/b' },
        ],
      }),
      'fileOutputs[1].id',
    );
  });

  it('hl7.port may not equal admin.port (0 is ephemeral and never clashes)', () => {
    const p = only(refused({ hl7: { port: 8480 } }), 'hl7.port');
    expect(p.found).toBe('8480');
    expect(loadConfig({ env: {}, overrides: { hl7: { port: 0 }, admin: { port: 0 } } }).hl7.port).toBe(0);
    expect(loadConfig({ env: {}, overrides: { hl7: { port: 8480 }, admin: { enabled: false } } }).hl7.port).toBe(8480);
  });

  it("a remote source's cron schedule must parse", () => {
    const p = only(
      refused({
        files: [{ id: 'r', source: 'sftp', dir: '/out', profile: 'optical-csv', sftp: { hostKeySha256: FP, schedule: 'every 5 minutes' } }],
      }),
      'files[0].sftp.schedule',
    );
    expect(p.found).toBe('"every 5 minutes"');
    only(
      refused({
        files: [
          {
            id: 'r',
            source: 'ftps',
            dir: '/out',
            profile: 'optical-csv',
            ftps: { certSha256: 'AA:'.repeat(31) + 'AA', schedule: '61 * * * *' },
          },
        ],
      }),
      'files[0].ftps.schedule',
    );
  });

  it('an SFTP source needs a pinned host key, as ssh-keygen -lf prints it', () => {
    only(refused({ files: [{ id: 'r', source: 'sftp', dir: '/out', profile: 'optical-csv' }] }), 'files[0].sftp.hostKeySha256');
    only(
      refused({
        files: [{ id: 'r', source: 'sftp', dir: '/out', profile: 'optical-csv', sftp: { hostKeySha256: '256 SHA256:abc host (ED25519)' } }],
      }),
      'files[0].sftp.hostKeySha256',
    );
    only(refused({ fileOutputs: [{ id: 'o', kind: 'sftp', dir: '/in' }] }), 'fileOutputs[0].sftp.hostKeySha256');
  });

  it('an FTPS source needs ca or a pinned certificate fingerprint', () => {
    only(refused({ files: [{ id: 'r', source: 'ftps', dir: '/out', profile: 'optical-csv' }] }), 'files[0].ftps.certSha256');
  });

  it('a generic files[] profile needs kinds', () => {
    only(refused({ files: [{ id: 'exp', dir: '/a' }] }), 'files[0].kinds');
  });

  it("a kind's match must be a regular expression", () => {
    only(refused({ files: [{ id: 'exp', dir: '/a', kinds: [{ ...csvKinds[0], match: '(unclosed' }] }] }), 'files[0].kinds[0].match');
  });

  it('a CSV encoding must be one the decoder knows (else every file goes to error/)', () => {
    only(
      refused({ files: [{ id: 'exp', dir: '/a', profile: 'optical-csv', csv: { encoding: 'ebcdic-martian' } }] }),
      'files[0].csv.encoding',
    );
    only(
      refused({ files: [{ id: 'exp', dir: '/a', kinds: [{ ...csvKinds[0], csv: { encoding: 'nope' } }] }] }),
      'files[0].kinds[0].csv.encoding',
    );
  });

  it("a deletion log's targets name streams of the same database", () => {
    const log = {
      name: 'deleted',
      table: 'deletions',
      key: 'id',
      records: [],
      tombstone: { keyColumn: 'row_id', tableColumn: 'tbl', targets: { patient: 'patients', appt: 'appointments' } },
    };
    const p = only(
      refused({ databases: [{ ...sqliteDb, streams: [sqliteDb.streams[0], log] }] }),
      'databases[0].streams[1].tombstone.targets.appt',
    );
    expect(p.found).toBe('"appointments"');
  });

  it('a config that breaks several rules lists them all', () => {
    const problems = refused({ gateway: { timezone: 'Mars/Olympus' }, https: { url: 'ftp://x' }, hl7: { port: 8480 } });
    expect(problems.map((p) => p.path).sort()).toEqual(['gateway.timezone', 'hl7.port', 'https.url']);
  });

  it('a config that breaks none loads', () => {
    const c = loadConfig({
      env: {},
      overrides: {
        relay: { sink: 'https' },
        cloud: { publicKey: ecPublic },
        databases: [sqliteDb],
        files: [
          { id: 'exp', dir: '/a', kinds: csvKinds },
          { id: 'r', source: 'sftp', dir: '/out', profile: 'optical-csv', sftp: { hostKeySha256: FP } },
        ],
      },
    });
    expect(c.files.map((f) => f.id)).toEqual(['exp', 'r']);
  });
});
