/** Environment overrides follow the schema's names: SCREAMING_SNAKE of each camelCase segment, or the camelCase itself. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envNameOf } from '../../config/env-overrides.ts';
import { ConfigError, loadConfig } from '../../config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'ewml-env-'));

function refusedBy(env: Record<string, string>, file?: string): ConfigError {
  try {
    loadConfig({ env, file });
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('environment overrides', () => {
  it('EWML__GATEWAY__DATA_DIR sets gateway.dataDir', () => {
    expect(loadConfig({ env: { EWML__GATEWAY__DATA_DIR: '/var/lib/ewml' } }).gateway.dataDir).toBe('/var/lib/ewml');
  });

  it('the camelCase spelling works too: EWML__gateway__dataDir', () => {
    expect(loadConfig({ env: { EWML__gateway__dataDir: '/srv/ewml' } }).gateway.dataDir).toBe('/srv/ewml');
  });

  it("converts by the field's type: an id of digits stays text, a port is a number, a flag a boolean", () => {
    const c = loadConfig({
      env: { EWML__GATEWAY__ID: '0001', EWML__HL7__PORT: '2600', EWML__ADMIN__ENABLED: 'false', EWML__OUTBOX__DISK_RESERVE_BYTES: '0' },
    });
    expect(c.gateway.id).toBe('0001');
    expect(c.hl7.port).toBe(2600);
    expect(c.admin.enabled).toBe(false);
    expect(c.outbox.diskReserveBytes).toBe(0);
  });

  it("a list entry is named by its index: EWML__DATABASES__0__PASSWORD sets the first database's password", () => {
    const f = join(dir, 'db.yaml');
    writeFileSync(
      f,
      'databases:\n  - id: pms\n    engine: sqlite\n    file: /srv/pms.db\n    streams:\n      - name: p\n        table: patient\n        key: id\n        records: [{ type: patient, fields: { name.family: last } }]\n',
    );
    const c = loadConfig({ file: f, env: { EWML__DATABASES__0__PASSWORD: 'pw', EWML__DATABASES__0__POLL_INTERVAL_MS: '750' } });
    expect(c.databases[0].password).toBe('pw');
    expect(c.databases[0].pollIntervalMs).toBe(750);
    const e = refusedBy({ EWML__DATABASES__3__PASSWORD: 'pw' }, f);
    expect(e.problems).toEqual([
      expect.objectContaining({ path: 'environment EWML__DATABASES__3__PASSWORD', found: 'databases has no entry 3 (it has 1)' }),
    ]);
  });

  it('a variable that names no field stops the load, naming the variable and never its value', () => {
    const e = refusedBy({ EWML__HL7__PROT: 's3cret-ish', EWML__NOPE: 'x' });
    expect(e.code).toBe('GW_CONFIG_INVALID');
    expect(e.problems.map((p) => [p.path, p.found])).toEqual([
      ['environment EWML__HL7__PROT', 'no field "PROT" in hl7'],
      ['environment EWML__NOPE', 'no field "NOPE" at the top level'],
    ]);
    expect(JSON.stringify(e.problems)).not.toContain('s3cret-ish');
  });

  it("the name of a field's variable is the documented mapping", () => {
    expect(envNameOf('gateway.dataDir')).toBe('EWML__GATEWAY__DATA_DIR');
    expect(envNameOf('files[0].sftp.hostKeySha256')).toBe('EWML__FILES__0__SFTP__HOST_KEY_SHA256');
    expect(envNameOf('relay.maxInFlight')).toBe('EWML__RELAY__MAX_IN_FLIGHT');
  });
});
