/**
 * The generic profile: a PMS's own SQLite tables mapped with a SELECT and column mappings in
 * config. Bad rows go to dead letters while the rest (and the cursor) move on; deletes without a
 * deletion log are found by key-set comparison; `db check` flags a page query that sorts a large table.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/load.ts';
import { runCommand, type CliIo } from '../../../cli/index.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { waitFor } from '../../support/net.ts';
import { startHttpReferenceCloud, type HttpReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const keys = makeCloudKeys();
const dir = mkdtempSync(join(tmpdir(), 'ewml-sqlite-src-'));
const file = join(dir, 'optical.db');
let pms: DatabaseSync;
let cloud: HttpReferenceCloud;
let h: Harness;

const stream = {
  name: 'patients',
  query: 'SELECT id, mrn, last, first, dob, sex, modified FROM pat WHERE active = 1',
  key: 'id',
  watermark: { column: 'modified', kind: 'timestamp' },
  deletes: 'keyset',
  records: [
    {
      type: 'patient',
      patient: { system: 'OPT', id: 'mrn' },
      fields: {
        'identifiers[0].system': { value: 'OPT' },
        'identifiers[0].value': 'mrn',
        'name.family': { column: 'last', transform: 'trim' },
        'name.given[0]': 'first',
        birthDate: { column: 'dob', transform: 'date', dateFormat: 'MM/DD/YYYY' },
        sex: { column: 'sex', codes: { 1: 'male', 2: 'female' }, default: 'unknown' },
      },
    },
  ],
};

const now = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
const patients = () =>
  [...cloud.store.records.values()].filter((r) => r.type === 'patient') as Array<
    CanonicalRecord<{ name?: { family?: string }; birthDate?: string; sex?: string }>
  >;

beforeAll(async () => {
  pms = new DatabaseSync(file);
  pms.exec(
    `PRAGMA journal_mode = WAL; CREATE TABLE pat (id INTEGER PRIMARY KEY, mrn TEXT NOT NULL, last TEXT, first TEXT, dob TEXT, sex INTEGER, active INTEGER NOT NULL DEFAULT 1, modified TEXT NOT NULL DEFAULT (${now}))`,
  );
  const ins = pms.prepare('INSERT INTO pat (mrn, last, first, dob, sex) VALUES (?, ?, ?, ?, ?)');
  for (let i = 1; i <= 50; i++)
    ins.run(`M${1000 + i}`, ` Synth${i} `, 'Test', i === 13 ? '13/45/2001' : `0${(i % 9) + 1}/1${i % 10}/19${50 + (i % 40)}`, i % 3);
  cloud = await startHttpReferenceCloud({ privateKey: keys.privateKey });
  h = await startHarness(
    {
      hl7: { enabled: false },
      relay: { sink: 'https' },
      https: { url: cloud.url },
      cloud: { publicKey: keys.publicPem },
      databases: [
        {
          id: 'optical',
          engine: 'sqlite',
          file,
          streams: [
            stream,
            { name: 'typo', table: 'pat', key: 'id', records: [{ type: 'patient', fields: { 'identifiers[0].value': 'mrn_typo' } }] },
          ],
          pollIntervalMs: 100,
          overlapSeconds: 1,
          keysetIntervalMinutes: 0,
        },
      ] as never,
    },
    { logLevel: 'info' },
  );
}, 30_000);

afterAll(async () => {
  await h?.stop();
  await cloud?.stop();
  pms?.close();
});

describe('generic profile on SQLite', () => {
  it('maps with the configured transforms and code table; a bad row is dead-lettered and the rest goes on', async () => {
    await waitFor(() => patients().length >= 49, 20_000, '49 patients');
    const p1 = patients().find((r) => r.source.sourceId === 'patients/1')!;
    expect(p1.data).toMatchObject({ name: { family: 'Synth1' }, birthDate: '1951-02-11', sex: 'male' });
    expect(patients().find((r) => r.source.sourceId === 'patients/3')!.data.sex).toBe('unknown');
    const dead = h.gw.parts.outbox.listDeadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ code: 'GW_MAP_FAILED', format: 'sql:optical', location: 'optical/patients#13' });
    expect(dead[0].reason).toContain('birthDate is not a date');
    pms.prepare('INSERT INTO pat (mrn, last, first, dob, sex) VALUES (?, ?, ?, ?, ?)').run('M2000', 'Newrow', 'Test', '01/02/1990', 2);
    await waitFor(() => patients().some((r) => r.source.sourceId === 'patients/51'), 10_000, 'a row added after the bad one');
  });

  it('checks each stream against the database before reading it: a stream that does not fit is not read, the others are', () => {
    const health = h.gw.parts.adapters.find((a) => a.id === 'optical')!.health();
    expect(health.status).toBe('degraded');
    expect(health.detail).toMatchObject({ 'typo.error': 'no column(s) mrn_typo' });
    expect(h.logs.some((l) => l.includes('"stream":"typo"') && l.includes('stream not read'))).toBe(true);
    expect(h.gw.parts.outbox.listDeadLetters().filter((d) => (d.location ?? '').includes('typo'))).toEqual([]);
  });

  it('takes the corrected row as a new version once the PMS fixes it', async () => {
    pms.exec(`UPDATE pat SET dob = '03/04/2001', modified = ${now} WHERE id = 13`);
    await waitFor(() => patients().some((r) => r.source.sourceId === 'patients/13'), 10_000, 'the fixed row');
    expect(patients().find((r) => r.source.sourceId === 'patients/13')!.data.birthDate).toBe('2001-03-04');
  });

  it('finds deleted rows (and rows the query no longer selects) by key-set comparison', async () => {
    pms.exec('DELETE FROM pat WHERE id = 20');
    pms.exec(`UPDATE pat SET active = 0, modified = ${now} WHERE id = 21`);
    await waitFor(
      () =>
        ['patients/20', 'patients/21'].every((s) =>
          [...cloud.store.records.values()].some((r) => r.source.sourceId === s && r.op === 'delete'),
        ),
      10_000,
      'two deletes',
    );
    const before = cloud.store.records.size;
    await new Promise((r) => setTimeout(r, 800));
    expect(cloud.store.records.size).toBe(before); // each delete once
  });

  it('db check flags a large table whose page query would sort it every time', async () => {
    pms.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, mrn TEXT, changed TEXT)');
    pms.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000) INSERT INTO big (mrn, changed) SELECT 'M' || i, ${now} FROM n`,
    );
    const cfg = join(dir, 'check.yaml');
    writeFileSync(
      cfg,
      JSON.stringify({
        databases: [
          {
            id: 'optical',
            engine: 'sqlite',
            file,
            streams: [
              stream,
              {
                name: 'big',
                table: 'big',
                key: 'id',
                watermark: { column: 'changed', kind: 'timestamp' },
                records: [{ type: 'patient', fields: { 'identifiers[0].system': { value: 'OPT' }, 'identifiers[0].value': 'mrn' } }],
              },
              { name: 'typo', table: 'pat', key: 'id', records: [{ type: 'patient', fields: { 'identifiers[0].value': 'mrn_typo' } }] },
            ],
          },
        ],
      }),
    );
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s), readFile: () => '', loadConfig: (f) => loadConfig({ file: f }) };
    expect(await runCommand(['db', 'check', '--config', cfg], io)).toBe(5);
    const text = out.join('\n');
    expect(text).toMatch(/patients\s+ok\s+49 rows/);
    expect(text).toMatch(/big\s+ok\s+12000 rows; plan: .*WARNING: each page sorts the table — create an index on \(changed, id\)/);
    expect(err.join('\n')).toContain('typo: no column(s) mrn_typo');
    pms.exec('CREATE INDEX big_sync ON big (changed, id)');
    out.length = 0;
    await runCommand(['db', 'check', '--config', cfg], io);
    expect(out.join('\n')).not.toMatch(/big.*WARNING/);
  });
});
