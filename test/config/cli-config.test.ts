/** The config commands as a user runs them (a child process): check-config [--offline], migrate-config, and unseal of several files. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ewml-cli-cfg-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/eyewear-gateway.js'), ...args], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('config commands', () => {
  it('check-config --offline passes the shipped example, listing what it did not check; online it names the missing secrets', () => {
    const ex = join(root, 'config/examples/practice-mqtt.yaml');
    const off = cli('check-config', ex, '--offline');
    expect(off.code).toBe(0);
    expect(off.out).toContain(`${ex}: valid offline (sink mqtt, MLLP 0.0.0.0:2575, admin 127.0.0.1:8480, 0 other source(s))`);
    expect(off.out).toContain(
      'not checked offline (they hold ${env:…}/${file:…} references): mqtt.ca, mqtt.cert, mqtt.key, cloud.publicKey',
    );
    const on = cli('check-config', ex);
    expect(on.code).toBe(3);
    expect(on.err).toContain('GW_SECRET_MISSING');
    expect(on.err).toContain('check-config --offline');
  });

  it('check-config refuses what start would refuse, with the path and what to do', () => {
    const r = cli(
      'check-config',
      file('bad-rules.yaml', 'gateway:\n  timezone: Mars/Olympus\nhttps:\n  url: ftp://x\nhl7:\n  port: 8480\n'),
    );
    expect(r.code).toBe(3);
    expect(r.err).toContain(
      '  - gateway.timezone: expected an IANA time zone (e.g. America/Chicago, Europe/Berlin, UTC); found "Mars/Olympus"\n    what to do: ',
    );
    expect(r.err).toContain('  - https.url: expected a URL starting https:// or http://; found "ftp://x"');
    expect(r.err).toContain('  - hl7.port: expected a port other than admin.port (8480) on 127.0.0.1; found 8480');
  });

  it('migrate-config upgrades a version 1 file with a backup; check-config then passes without a warning', () => {
    const f = file('v1.yaml', 'folders:\n  - id: drop\n    dir: /srv/drop\n');
    const before = cli('check-config', f);
    expect(before.code).toBe(0);
    expect(before.err).toContain('warning version: version 1, upgraded in memory');
    const m = cli('migrate-config', f);
    expect(m.code).toBe(0);
    expect(m.out).toContain(`${f}: version 1 → 2; the old file is ${f}.v1.bak`);
    expect(readFileSync(`${f}.v1.bak`, 'utf8')).toBe('folders:\n  - id: drop\n    dir: /srv/drop\n');
    const after = cli('check-config', f);
    expect(after.code).toBe(0);
    expect(after.err).toBe('');
    expect(after.out).toContain('1 other source(s)');
    expect(cli('migrate-config', f).out).toContain('already version 2; nothing to do');
  });

  it('unseal takes several files and prints every record of each, in order', () => {
    const data = join(dir, 'data');
    mkdirSync(join(data, 'keys'), { recursive: true });
    const key = randomBytes(32);
    writeFileSync(join(data, 'keys', 'seal.key'), key);
    const sealer = createRecordSealer(key);
    const day = (name: string, ids: string[]) =>
      file(
        name,
        ids
          .map((id) =>
            JSON.stringify({ id, type: 'patient', sealed: sealer.seal(id, JSON.stringify({ id, n: id.length })).toString('base64') }),
          )
          .join('\n') + '\n',
      );
    const a = day('records-2026-01-01.ndjson', ['r1', 'r2']);
    const b = day('records-2026-01-02.ndjson', ['r3', 'r4', 'r5']);
    const cfg = file('unseal.yaml', `gateway:\n  dataDir: ${data}\n`);
    const r = cli('unseal', a, b, '--config', cfg);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(
      r.out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    ).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    // a damaged line and a missing file are named; the rest is still printed
    const damaged = file('records-2026-01-03.ndjson', `${readFileSync(a, 'utf8')}{"id":"x","sealed":"AAAA"}\n`);
    const bad = cli('unseal', damaged, join(dir, 'nope.ndjson'), b, '--config', cfg);
    expect(bad.code).toBe(1);
    expect(bad.out.trim().split('\n')).toHaveLength(5);
    expect(bad.err).toContain(`${damaged}: 1 line(s) could not be opened (line 3)`);
    expect(bad.err).toContain(`${join(dir, 'nope.ndjson')}: cannot read (ENOENT)`);
  });
});

describe('check-config refuses what start refuses (the cases found by hand)', () => {
  const cases: Array<[string, string, string]> = [
    ['a database with no host, user or streams', 'databases:\n  - id: pms\n    engine: postgres\n    host: ""\n', 'databases[0].host'],
    ['a cloud public key that is not a PEM', 'relay:\n  sink: https\ncloud:\n  publicKey: not a pem\n', 'cloud.publicKey'],
    ['an https URL that is not https', 'https:\n  url: ftp://x\n', 'https.url'],
    ['a time zone that does not exist', 'gateway:\n  timezone: Mars/Olympus\n', 'gateway.timezone'],
    [
      'two files[] with the same id',
      'files:\n  - id: a\n    dir: /x\n    profile: hl7v2\n  - id: a\n    dir: /y\n    profile: hl7v2\n',
      'files[1].id',
    ],
    ['hl7.port equal to admin.port', 'hl7:\n  port: 9000\nadmin:\n  port: 9000\n', 'hl7.port'],
    [
      'an SFTP schedule that does not parse',
      'files:\n  - id: s\n    source: sftp\n    dir: /x\n    profile: hl7v2\n    sftp:\n      hostKeySha256: "SHA256:abc"\n      schedule: every tuesday\n',
      'files[0].sftp.schedule',
    ],
    [
      'an SFTP source without a pinned host key',
      'files:\n  - id: s\n    source: sftp\n    dir: /x\n    profile: hl7v2\n',
      'files[0].sftp.hostKeySha256',
    ],
  ];
  for (const [what, yaml, path] of cases) {
    it(`${what}: exit 3 naming ${path}`, () => {
      const r = cli('check-config', file(`rule-${path.replace(/[^a-z0-9]/gi, '_')}.yaml`, `version: 2\n${yaml}`));
      expect(r.code).toBe(3);
      expect(r.err).toContain(`  - ${path}:`);
    });
  }
});
