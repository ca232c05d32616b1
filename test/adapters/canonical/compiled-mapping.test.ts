/**
 * Compiled mappings (issue 14) give exactly the output of the mapping code they replaced: the
 * frozen copy in legacy-field-mapping.ts is run beside them on thousands of synthetic rows with
 * empty, blank, invalid and odd values, over every built-in file and SQL mapping and a few made up
 * to reach every branch (templates, codes, scale, transform lists, array holes, constants, paths
 * the compiled path leaves to the generic one). Compared as `util.inspect` text, which shows key
 * order, array holes, types and nested values, so "exactly" includes the order JSON will have.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  buildData,
  columnsOf,
  compileMapping,
  toDate,
  type FieldSpec,
  type RecordMapping,
} from '../../../adapters/canonical/field-mapping.ts';
import { recordsFromRow, type RowMapOptions } from '../../../adapters/canonical/map-row.ts';
import { FILE_PROFILES } from '../../../adapters/file/file-profiles.ts';
import { practiceStudioStreams } from '../../../adapters/sql/profiles/practice-studio.ts';
import { legacyBuildData, legacyRecordsFromRow, toDate as legacyToDate } from './legacy-field-mapping.ts';

const builtIn: Array<[string, RecordMapping]> = [
  ...Object.values(FILE_PROFILES).flatMap((p) =>
    p.kinds.flatMap((k) => k.records.map((r, i) => [`${p.name}/${k.name}#${i}`, r] as [string, RecordMapping])),
  ),
  ...practiceStudioStreams('ps').flatMap((s) =>
    (s.records as RecordMapping[]).map((r, i) => [`practice-studio/${s.name}#${i}`, r] as [string, RecordMapping]),
  ),
];

const madeUp: Array<[string, RecordMapping]> = [
  [
    'every branch',
    {
      type: 'patient',
      sourceIdSuffix: '#p',
      patient: { system: 'SYN', id: { template: '{a}-{b}' } },
      occurredAt: { column: 'j', transform: 'datetime' },
      fields: {
        'identifiers[0].system': { value: 'X' },
        'identifiers[0].value': 'a',
        'identifiers[1].system': { value: 'Y' },
        'identifiers[1].value': 'b',
        'identifiers[2].value': { column: 'c', transform: ['trim', 'upper'] },
        'name.given[0]': 'd',
        'name.given[1]': 'e',
        'name.family': { template: '{d} {e}-{f}' },
        'telecom[0].use': { value: 'home' },
        'telecom[0].value': { column: 'f', codes: { ABC: 'abc', '12.5': 'twelve', X: 0, N: false }, default: 'none' },
        amount: { column: 'g', transform: 'number', scale: 0.01 },
        count: { column: 'h', transform: 'integer' },
        flag: { column: 'i', transform: 'boolean' },
        at: { column: 'j', transform: 'datetime', dateFormat: 'MM/DD/YYYY' },
        dob: { column: 'j', transform: 'date', dateFormat: 'MM/DD/YYYY' },
        status: { value: 'active' },
        'deep.a[0].b[1].c': 'a',
        'deep.a[0].x': 'b',
        'deep.k.use': { value: 'k' },
        scaleNoNumber: { column: 'a', scale: 2 },
        nothing: { transform: 'trim' },
        raw: { column: 'k', transform: 'string' },
        lowered: { column: 'k', transform: 'lower' },
        dio: { column: 'g', transform: 'diopter' },
        untrimmed: { column: 'a', transform: [] },
        dflt: { column: 'zz', default: 7 },
        any: 'k',
      },
    },
  ],
  ['a prototype name in a path', { type: 'patient', fields: { 'a.constructor': 'a', 'x.toString': 'b', y: 'c' } }],
  ['an array name on an object', { type: 'patient', fields: { 'a.length': 'a', 'keys[0]': 'b', values: 'c' } }],
  ['array and object at one path', { type: 'patient', fields: { 'list[0]': 'a', 'list.x': 'b', z: 'c' } }],
  ['a value and a container at one path', { type: 'patient', fields: { 'name.given[0]': 'b', name: 'a' } }],
  ['an index with a leading zero', { type: 'patient', fields: { 'n[01]': 'a', 'n[0]': 'b' } }],
  ['when', { type: 'appointment', when: { column: 'i', in: ['yes', 1, true] }, fields: { 'x[3]': 'a', 'x[1]': 'b', 'y.z': { value: 1 } } }],
  [
    'spectacle rx',
    {
      type: 'spectacle-rx',
      fields: {
        'right.sphere': { column: 'g', transform: 'diopter' },
        'right.cylinder': { column: 'h', transform: 'number' },
        'right.axis': { column: 'c', transform: 'integer' },
        'left.sphere': { column: 'a', transform: 'diopter' },
        'left.add': { column: 'b', transform: 'number' },
      },
    },
  ],
];

/** A small seeded generator: the same rows every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMON: unknown[] = [
  undefined,
  null,
  '',
  '   ',
  'abc',
  ' ABC ',
  'x',
  'X',
  'N',
  ' 12.5 ',
  '12,5',
  '-2.25',
  '+1.00',
  '-2.13',
  '0',
  '1',
  '180',
  '190',
  'M',
  'f',
  'yes',
  'no',
  'maybe',
  '03/04/1975',
  '13/40/1975',
  '1975-03-04',
  '19750304',
  '2026-11-25 15:50:26',
  '2026-11-25T15:50:26.123456+00',
  '11/25/2026 9:05 PM',
  'Test, 5',
  'BU',
  'bi',
  3,
  -1.75,
  0,
  2.5,
  90,
  true,
  false,
  'P123',
  'p1@example.test',
  '555-0100',
];
const RARE: unknown[] = [
  new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
  Buffer.from('ab'),
  { nested: '' },
  { nested: 'v' },
  ['', 'x'],
  [],
  {},
  12n,
];

function columnsOfMapping(m: RecordMapping): string[] {
  const specs: FieldSpec[] = [...Object.values(m.fields), ...(m.patient ? [m.patient.id] : []), ...(m.occurredAt ? [m.occurredAt] : [])];
  return [
    ...new Set([...specs.flatMap(columnsOf), ...(m.when ? [m.when.column] : []), 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']),
  ];
}

function rowsFor(m: RecordMapping, n: number, seed: number): Array<Record<string, unknown>> {
  const r = rng(seed);
  const cols = columnsOfMapping(m);
  const rows: Array<Record<string, unknown>> = [];
  for (let i = 0; i < n; i++) {
    const row: Record<string, unknown> = {};
    const odd = r() < 0.05; // one row in twenty carries a Date/Buffer/object somewhere (the generic path)
    for (const c of cols) {
      const v = odd && r() < 0.3 ? RARE[Math.floor(r() * RARE.length)] : COMMON[Math.floor(r() * COMMON.length)];
      if (v !== undefined) row[c] = v;
    }
    rows.push(row);
  }
  return rows;
}

const show = (v: unknown) =>
  inspect(v, { depth: Infinity, sorted: false, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity });
const outcome = (f: () => unknown) => {
  try {
    return show(f());
  } catch (e) {
    return `threw ${(e as Error).name}: ${(e as Error).message}`;
  }
};

const opts = (where: string): RowMapOptions => ({
  idParts: ['file', 'syn', where],
  system: 'SYN',
  adapter: 'file',
  sourceId: `${where}/1`,
  partition: `syn:${where}:1`,
  rowHash: 'h',
  where,
  timezone: 'America/Chicago',
  now: () => Date.UTC(2026, 11, 2),
});

describe('compiled mappings give the old output exactly', () => {
  it('compiles every built-in mapping (none falls back to the generic path)', () => {
    expect(builtIn.length).toBeGreaterThan(10);
    expect(builtIn.filter(([, m]) => !compileMapping(m).compiled).map(([n]) => n)).toEqual([]);
  });

  it('leaves the made-up odd mappings to the generic path, and compiles the others', () => {
    expect(madeUp.map(([n, m]) => [n, compileMapping(m).compiled])).toEqual([
      ['every branch', true],
      ['a prototype name in a path', false],
      ['an array name on an object', true],
      ['array and object at one path', false],
      ['a value and a container at one path', false],
      ['an index with a leading zero', false],
      ['when', true],
      ['spectacle rx', true],
    ]);
  });

  for (const [name, m] of [...builtIn, ...madeUp]) {
    it(`${name}: buildData and recordsFromRow on 1,000 rows`, () => {
      let differ = 0;
      const first: string[] = [];
      for (const [i, row] of rowsFor(m, 1000, name.length * 7919 + 13).entries()) {
        for (const tz of i % 3 ? ['UTC'] : ['Europe/Berlin']) {
          const a = outcome(() => legacyBuildData(row, m, tz));
          const b = outcome(() => buildData(row, m, tz));
          const ms = i % 2 ? [m] : [m, m, m];
          const ra = outcome(() => legacyRecordsFromRow(row, ms, opts(name)));
          const rb = outcome(() => recordsFromRow(row, ms, opts(name)));
          if (a !== b || ra !== rb) {
            differ++;
            if (first.length < 2) first.push(`row ${i}: old ${a} / new ${b}; records old ${ra} / new ${rb}`);
          }
        }
      }
      // synthetic values only: printing the first differences is safe and says what to fix
      expect(first, `compiled output differs from the old on ${differ} rows`).toEqual([]);
    });
  }

  it('reads dates by hand exactly as the regular expressions did', () => {
    const r = rng(99);
    const pieces = [
      '1',
      '12',
      '123',
      '1975',
      '19750304',
      '197503041',
      '0',
      '00',
      '13',
      '31',
      '2',
      '29',
      '2024',
      '/',
      '.',
      '-',
      ' ',
      'T',
      ':',
      'x',
      '٣',
      '',
    ];
    const formats = [undefined, '', 'YYYYMMDD', 'MM/DD/YYYY', 'DD/MM/YYYY', 'DD.MM.YYYY', 'YYYY/MM/DD', 'DD-MM-YYYY', 'toString'];
    const texts = [
      '1975-03-04',
      '1975-03-04T10:00',
      '1975-3-4',
      '03/04/1975',
      '3/4/1975 9:05 PM',
      '31.12.1999',
      '1999/12/31',
      '1999/1/2x',
      '20240229',
      '20230229',
      '  19750304  ',
      '12/31/99',
    ];
    for (let i = 0; i < 20_000; i++) {
      let t = '';
      const k = 1 + Math.floor(r() * 6);
      for (let j = 0; j < k; j++) t += pieces[Math.floor(r() * pieces.length)];
      texts.push(t);
    }
    const differ: string[] = [];
    for (const t of texts)
      for (const f of formats) {
        const a = outcome(() => legacyToDate(t, f));
        const b = outcome(() => toDate(t, f));
        if (a !== b && differ.length < 5) differ.push(`${JSON.stringify(t)} ${f}: old ${a}, new ${b}`);
      }
    expect(differ).toEqual([]);
  });

  it('recompiles when a mapping is given new fields', () => {
    const m: RecordMapping = { type: 'patient', fields: { a: 'a' } };
    expect(buildData({ a: 'x', b: 'y' }, m).data).toEqual({ a: 'x' });
    m.fields = { b: 'b' };
    expect(buildData({ a: 'x', b: 'y' }, m).data).toEqual({ b: 'y' });
  });
});
