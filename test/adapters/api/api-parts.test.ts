/**
 * The API source's parts on their own: the request template (variables, modified-since formats in
 * a zone), paging positions, the rows of a page and their records (nested fields, deletes by flag
 * and by deletions log), a profile folded into an entry, and the rotating refresh token's store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiRowMapper, flattenRow, pageRows, streamOf } from '../../../adapters/api/api-rows.ts';
import type { ApiEntity, ApiSourceConfig } from '../../../adapters/api/api-types.ts';
import { createRotatingSecret } from '../../../adapters/api/auth/rotating-secret.ts';
import { createTokenAuth } from '../../../adapters/api/auth/token-endpoint.ts';
import { firstPosition, nextPosition, pageParams } from '../../../adapters/api/paging.ts';
import { buildUrl, followable, formatSince, linkHeaderNext } from '../../../adapters/api/request-template.ts';
import { resolveApiSource } from '../../../adapters/api/resolve.ts';
import { validateConfig } from '../../../config/load.ts';
import { createManualClock } from '../../../gateway/clock.ts';
import { openSealKey } from '../../../gateway/crypto/key-custody.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createSecretStore } from '../../../gateway/crypto/secret-store.ts';

const entry = (over: Record<string, unknown>): ApiSourceConfig => {
  const v = validateConfig({ apis: [{ id: 'x', ...over }] });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.config.apis[0];
};

describe('the request template', () => {
  it('fills variables URL-encoded, so a value cannot change the path', () => {
    const url = buildUrl({
      baseUrl: 'https://api.example.test/base',
      path: '/v1/{practiceId}/patients',
      query: { departmentid: '{dept}', fixed: 'a b' },
      variables: { practiceId: '19/59', dept: '7' },
      page: { offset: '10', limit: '5' },
    });
    expect(url).toBe('https://api.example.test/base/v1/19%2F59/patients?departmentid=7&fixed=a+b&offset=10&limit=5');
  });

  it('writes the modified-since instant in each format, wall-clock formats in the zone asked', () => {
    const t = Date.UTC(2026, 6, 4, 3, 5, 9, 750); // 2026-07-03 23:05:09 in New York (EDT)
    expect(formatSince(t, 'iso', 'America/New_York')).toBe('2026-07-04T03:05:09.750Z');
    expect(formatSince(t, 'epoch', 'UTC')).toBe(String(Math.floor(t / 1000)));
    expect(formatSince(t, 'datetime', 'America/New_York')).toBe('2026-07-03T23:05:09');
    expect(formatSince(t, 'date', 'America/New_York')).toBe('2026-07-03');
    expect(formatSince(t, 'MM/DD/YYYY', 'UTC')).toBe('07/04/2026');
    expect(formatSince(t, 'MM/DD/YYYY HH:mm:ss', 'America/New_York')).toBe('07/03/2026 23:05:09');
  });

  it('follows next links only on the API origin, relative ones resolved against it', () => {
    expect(followable('/v1/1/patients?offset=5', 'https://api.example.test/v1')).toBe('https://api.example.test/v1/1/patients?offset=5');
    expect(() => followable('https://elsewhere.test/api/patients', 'https://api.example.test')).toThrow(/another origin/);
    expect(linkHeaderNext('<https://a.test/p?page=2>; rel="next", <https://a.test/p?page=9>; rel="last"')).toBe('https://a.test/p?page=2');
    expect(linkHeaderNext('<https://a.test/p?page=1>; rel="prev"')).toBeUndefined();
  });
});

describe('paging', () => {
  const seen = (body: unknown, rows: number, pageSize = 5, readBefore = 0) => ({
    body,
    headers: new Headers(),
    rows,
    pageSize,
    readBefore,
    baseUrl: 'https://api.example.test',
  });

  it('moves an offset by the rows read, less the overlap, and ends on a short page or at the total', () => {
    const p = { kind: 'offset' as const, param: 'offset', sizeParam: 'limit', totalField: 'totalcount', overlapRows: 1 };
    expect(pageParams(p, firstPosition(p), 5)).toEqual({ limit: '5', offset: '0' });
    expect(nextPosition(p, { offset: 0 }, seen({ totalcount: 12 }, 5))).toEqual({ offset: 4 });
    expect(nextPosition(p, { offset: 8 }, seen({ totalcount: 13 }, 5))).toBeUndefined();
    expect(nextPosition(p, { offset: 0 }, seen({}, 3))).toBeUndefined();
  });

  it('counts pages from the start given and ends when the rows read reach the total', () => {
    const p = { kind: 'page' as const, param: 'page', start: 1, totalField: 'meta.total' };
    expect(nextPosition(p, { page: 1 }, seen({ meta: { total: 10 } }, 5))).toEqual({ page: 2 });
    expect(nextPosition(p, { page: 2 }, seen({ meta: { total: 10 } }, 5, 5, 5))).toBeUndefined();
  });

  it('takes the next cursor from the body and refuses one that does not move', () => {
    const p = { kind: 'cursor' as const, param: 'cursor', field: 'meta.next' };
    expect(nextPosition(p, {}, seen({ meta: { next: 'abc' } }, 5))).toEqual({ cursor: 'abc' });
    expect(nextPosition(p, { cursor: 'abc' }, seen({ meta: { next: null } }, 5))).toBeUndefined();
    expect(() => nextPosition(p, { cursor: 'abc' }, seen({ meta: { next: 'abc' } }, 5))).toThrow(/same cursor/);
  });
});

describe('rows and records', () => {
  const e = (over: Partial<ApiEntity>): ApiEntity => ({
    name: 'appointments',
    path: '/a',
    method: 'GET',
    query: {},
    rows: 'data',
    key: 'id',
    paging: { kind: 'none' },
    pageSize: 10,
    intervalMinutes: 0,
    deletes: { kind: 'none' },
    records: [
      {
        type: 'appointment',
        patient: { system: 'V', id: 'patient.id' },
        fields: {
          status: { value: 'booked' },
          start: { column: 'when', transform: 'datetime' },
          'visitType.code': 'kind.code',
          'location.code': 'rooms.0',
        },
      },
    ],
    ...over,
  });
  const mapper = (entities: ApiEntity[]) => createApiRowMapper({ sourceId: 's', system: 'V:s', entities, timezone: 'UTC', now: () => 0 });

  it('reads nested members by dotted path', () => {
    expect(flattenRow({ a: { b: [1, { c: 'x' }] }, d: 2 })).toEqual({ a: { b: [1, { c: 'x' }] }, 'a.b.0': 1, 'a.b.1.c': 'x', d: 2 });
    const ent = e({});
    const [row] = pageRows('s', ent, [{ id: 7, patient: { id: 'p1' }, when: '2026-01-02 10:00', kind: { code: 'EX' }, rooms: ['R2'] }]);
    const m = mapper([ent]).map(streamOf('s', 'appointments'), row);
    expect(m.issues).toEqual([]);
    expect(m.records[0]).toMatchObject({
      op: 'upsert',
      partitionKey: 'patient:V|p1',
      source: { sourceId: 'appointments/7', adapter: 'api' },
      data: { patient: { system: 'V', value: 'p1' }, start: '2026-01-02T10:00:00Z', visitType: { code: 'EX' }, location: { code: 'R2' } },
    });
  });

  it('keeps a row without its key, or that is not an object, as unreadable: dead-lettered with the reason, not dropped', () => {
    const ent = e({});
    const rows = pageRows('s', ent, [{ name: 'no key' }, 'text']);
    expect(rows).toHaveLength(2);
    const m = mapper([ent]);
    expect(m.map('s/appointments', rows[0]).issues[0].message).toBe('appointments: no key at id');
    expect(m.map('s/appointments', rows[1]).issues[0].message).toBe('appointments: not a JSON object');
  });

  it('maps a flagged row to deletes in its patient partition, and a deletions log row to deletes of its target', () => {
    const appts = e({ deletes: { kind: 'field', field: 'deleted', in: [true] } });
    const log = e({ name: 'gone', key: 'log_id', records: [], deletes: { kind: 'tombstone', target: 'appointments', key: 'appt' } });
    const m = mapper([appts, log]);
    const [flagged] = pageRows('s', appts, [{ id: 8, deleted: true, patient: { id: 'p2' } }]);
    const d = m.map('s/appointments', flagged);
    expect(d.records).toHaveLength(1);
    expect(d.records[0]).toMatchObject({
      op: 'delete',
      type: 'appointment',
      partitionKey: 'patient:V|p2',
      source: { sourceId: 'appointments/8' },
    });
    const rows = pageRows('s', log, [{ log_id: 1, appt: 9 }]);
    expect(rows.map((r) => [r.pk, r.stream])).toEqual([
      ['1', undefined],
      ['9', 's/appointments'],
    ]);
    expect(m.map('s/gone', rows[0]).records).toEqual([]);
    expect(m.map('s/gone', rows[1]).records[0]).toMatchObject({ op: 'delete', source: { sourceId: 'appointments/9' } });
  });
});

describe('a profile folded into an entry', () => {
  it('takes the profile entities, the auth and the limits, and overrides what the entry gives', () => {
    const { source, problems } = resolveApiSource(
      entry({
        profile: 'athenahealth',
        variables: { practiceId: '1' },
        auth: { clientId: 'c', clientSecret: 's' },
        rateLimit: { perSecond: 3 },
        entities: [{ name: 'patients', pageSize: 50, paging: { kind: 'offset', overlapRows: 2 } }, { name: 'providers' }],
      }),
    );
    expect(problems).toEqual([]);
    expect(source!.entities.map((x) => x.name)).toEqual(['patients', 'providers']);
    expect(source!.entities[0]).toMatchObject({
      pageSize: 50,
      paging: { kind: 'offset', param: 'offset', sizeParam: 'limit', overlapRows: 2 },
      subscribe: '/v1/{practiceId}/patients/changed/subscription',
    });
    expect(source!.auth).toMatchObject({
      kind: 'client-credentials',
      tokenUrl: 'https://api.platform.athenahealth.com/oauth2/v1/token',
      clientAuth: 'basic',
    });
    expect(source!.rateLimit).toEqual({ perSecond: 3, perMinute: 0, perHour: 0, perDay: 50_000 });
    expect(source!.system).toBe('ATHENAHEALTH:x');
  });

  it('names every missing piece: the variable, the credentials, and what a new entity lacks', () => {
    const { source, problems } = resolveApiSource(entry({ profile: 'athenahealth', entities: [{ name: 'claims' }] }));
    expect(source).toBeUndefined();
    expect(problems.map((p) => p.path).sort()).toEqual([
      'auth.clientId',
      'auth.clientSecret',
      'entities[0].key',
      'entities[0].paging',
      'entities[0].path',
      'entities[0].records',
      'entities[0].rows',
      'variables.practiceId',
    ]);
  });
});

describe('the rotating refresh token', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const store = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-api-rot-'));
    dirs.push(dir);
    const custody = openSealKey({ keyFile: join(dir, 'keys', 'seal.key'), outboxFiles: [] });
    return { dir, open: () => createSecretStore(dir, 'drc', createRecordSealer(custody.key)) };
  };

  it('uses the configured token until a rotation, then the newest stored one, across reopenings', () => {
    const s = store();
    const a = createRotatingSecret(s.open(), 'rt', 'first');
    expect([a.current(), a.generation()]).toEqual(['first', 0]);
    a.rotate('second');
    a.rotate('second');
    a.rotate('third');
    expect([a.current(), a.generation()]).toEqual(['third', 2]);
    const b = createRotatingSecret(s.open(), 'rt', 'first');
    expect([b.current(), b.generation()]).toEqual(['third', 2]);
  });

  it('lets a new configured token (a new authorization) win over the stored line, and keeps numbering past it', () => {
    const s = store();
    createRotatingSecret(s.open(), 'rt', 'first').rotate('second');
    const again = createRotatingSecret(s.open(), 'rt', 'reauthorized');
    expect([again.current(), again.generation()]).toEqual(['reauthorized', 0]);
    again.rotate('next');
    expect(again.generation()).toBe(2);
    expect(createRotatingSecret(s.open(), 'rt', 'reauthorized').current()).toBe('next');
  });

  it('finds a generation written before a crash kept its pointer from being updated', () => {
    const s = store();
    const st = s.open();
    createRotatingSecret(st, 'rt', 'first').rotate('second');
    st.writePublic('rt.gen', '0');
    expect(createRotatingSecret(s.open(), 'rt', 'first').current()).toBe('second');
  });
});

describe('the token cache', () => {
  it('renews before expiry (never later than half-way), shares one request, and renews at once after invalidate', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    let n = 0;
    const auth = createTokenAuth(async () => ({ accessToken: `t${++n}`, expiresIn: 40 }), clock);
    const [a, b] = await Promise.all([auth.header(), auth.header()]);
    expect([a, b, n]).toEqual(['Bearer t1', 'Bearer t1', 1]);
    clock.advance(19_000);
    expect(await auth.header()).toBe('Bearer t1');
    clock.advance(1000);
    expect(await auth.header()).toBe('Bearer t2');
    auth.invalidate();
    expect(await auth.header()).toBe('Bearer t3');
    expect(auth.expiresAt()).toBe(clock.now() + 40_000);
  });
});
