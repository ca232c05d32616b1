/**
 * The row codecs (a dead-lettered database row or file row, replayed after a mapping fix) against
 * the SourceCodec contract, with synthetic rows of recognisable values.
 */
import type { SourceCodec } from '../../adapters/contracts.ts';
import { createFileRowCodec } from '../../adapters/file/index.ts';
import { createSqlRowCodec } from '../../adapters/sql/index.ts';
import { createSqlSource, type SqlStreamConfig } from '../../adapters/sql/sql-source.ts';
import { createManualClock } from '../../gateway/clock.ts';
import { validateConfig } from '../../config/load.ts';
import { sourceCodecContract } from './source-codec-contract.ts';

const phi = { mrn: 'MRN5518802', family: 'Thistlewood', given: 'Oriel', birth: '1971-03-09', phone: '555-0199' };
const clock = createManualClock(Date.UTC(2026, 11, 2, 9));

const stream: SqlStreamConfig = {
  name: 'patients',
  table: 'pat',
  key: 'id',
  records: [
    {
      type: 'patient',
      patient: { system: 'CONTRACT', id: 'mrn' },
      fields: {
        'identifiers[0].system': { value: 'CONTRACT' },
        'identifiers[0].value': 'mrn',
        'name.family': 'last',
        'name.given[0]': 'first',
        birthDate: 'dob',
        'phones[0].value': 'phone',
      },
    },
  ] as SqlStreamConfig['records'],
};
const sql = createSqlSource({
  id: 'codec-db',
  system: 'CONTRACT',
  connection: { engine: 'sqlite', file: '/nonexistent/never-opened.db' },
  streams: [stream],
  pageSize: 10,
  pollIntervalMs: 1000,
  overlapSeconds: 0,
  keysetIntervalMinutes: 60,
  realtime: 'off',
  channel: 'unused',
  clock,
  timezone: 'UTC',
});
const sqlRow = (pk: string, mrn: string) =>
  JSON.stringify({
    stream: 'codec-db/patients',
    pk,
    data: { id: Number(pk), mrn, last: phi.family, first: phi.given, dob: phi.birth, phone: phi.phone },
  });

sourceCodecContract({
  name: 'SQL row codec',
  codec: createSqlRowCodec(sql) as SourceCodec<unknown>,
  samples: [sqlRow('1', phi.mrn), sqlRow('2', 'MRN5518803')],
  phi: Object.values(phi),
  garbage: [
    '{"stream":"codec-db/patients","pk":1,"data":{}}',
    '{"stream":"codec-db/patients","pk":"1"}',
    '{"stream":"codec-db/patients","pk":"1","data":"x"}',
  ],
  dedupes: false,
});

const files = validateConfig({ files: [{ id: 'ecw', dir: '/nonexistent/export', profile: 'eclinicalworks' }] });
if (!files.ok) throw new Error(`test config invalid: ${JSON.stringify(files.problems)}`);
const fileRow = (n: number, id: string) =>
  JSON.stringify({
    stream: 'ecw/patients',
    pk: `patients#${n}`,
    data: {
      PatientID: id,
      AccountNo: `A-${id}`,
      LastName: phi.family,
      FirstName: phi.given,
      DOB: '03/09/1971',
      Sex: 'female',
      HomePhone: phi.phone,
      Email: 'oriel.t@example.test',
    },
  });

sourceCodecContract({
  name: 'file row codec (eClinicalWorks export)',
  codec: createFileRowCodec(files.config.files[0], { timezone: 'UTC', now: () => clock.now() }) as SourceCodec<unknown>,
  samples: [fileRow(1, phi.mrn), fileRow(2, 'MRN5518803')],
  phi: [...Object.values(phi), '03/09/1971', 'oriel.t@example.test'],
  garbage: ['{"stream":"ecw/patients","pk":"patients#1","data":null}', '{"pk":"patients#1","data":{}}'],
  dedupes: false,
});
