/**
 * The `apis[]` rules, loaded through loadConfig as `start` and `check-config` load: an entry with
 * its profile folded in must be complete, its URLs https (or http to loopback), its id its own;
 * a secret is never shown in a problem, and an offline check takes a `${env:…}` credential as given.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadConfigReport, type ConfigProblem } from '../../config/load.ts';

function refused(apis: unknown[], extra: Record<string, unknown> = {}): ConfigProblem[] {
  try {
    loadConfig({ env: {}, overrides: { apis, ...extra } });
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('the config loaded; expected it refused');
}

const drchrono = { id: 'drc', profile: 'drchrono', auth: { clientId: 'c', clientSecret: 's', refreshToken: 'r' } };

describe('apis[] rules', () => {
  it('loads a DrChrono entry that names only its credentials, the profile giving the rest', () => {
    const c = loadConfig({ env: {}, overrides: { apis: [drchrono] } });
    expect(c.apis[0]).toMatchObject({ id: 'drc', profile: 'drchrono', pollIntervalMs: 300_000, overlapSeconds: 300, entities: [] });
  });

  it('asks athenahealth for its practice id and client credentials', () => {
    const p = refused([{ id: 'ath', profile: 'athenahealth' }]);
    expect(p.map((x) => x.path).sort()).toEqual(['apis[0].auth.clientId', 'apis[0].auth.clientSecret', 'apis[0].variables.practiceId']);
    expect(p.every((x) => x.todo)).toBe(true);
  });

  it('asks a generic entity for what the profile cannot give, and a variable it uses', () => {
    const p = refused([
      {
        id: 'g',
        baseUrl: 'https://api.example.test',
        entities: [
          {
            name: 'patients',
            path: '/clinics/{clinic}/patients',
            rows: 'items',
            key: 'id',
            paging: { kind: 'cursor', param: 'cursor' },
            records: [],
          },
        ],
      },
    ]);
    expect(p.map((x) => x.path)).toEqual(['apis[0].entities[0].paging.field', 'apis[0].variables.clinic']);
  });

  it('refuses an http URL to another machine, and credentials in a URL', () => {
    const p = refused([
      { ...drchrono, baseUrl: 'http://pms.example.test', auth: { ...drchrono.auth, tokenUrl: 'https://u:p@auth.example.test/token' } },
    ]);
    expect(p.map((x) => [x.path, x.found])).toEqual([
      ['apis[0].baseUrl', 'a http:// URL to pms.example.test'],
      ['apis[0].auth.tokenUrl', 'a URL with a user or password in it'],
    ]);
  });

  it('refuses an id another source has', () => {
    const p = refused([drchrono, { ...drchrono }]);
    expect(p.map((x) => x.path)).toEqual(['apis[1].id']);
  });

  it('never shows a secret, and offline takes a reference as the credential', () => {
    const p = refused([{ ...drchrono, auth: { ...drchrono.auth, refreshToken: 42 } }]);
    expect(p[0].path).toBe('apis[0].auth.refreshToken');
    expect(p[0].found).toBe('(secret, not shown)');
    const r = loadConfigReport({
      env: {},
      offline: true,
      overrides: { apis: [{ ...drchrono, auth: { ...drchrono.auth, refreshToken: '${env:DRCHRONO_REFRESH}' } }] },
    });
    expect(r.unchecked).toEqual(['apis[0].auth.refreshToken']);
  });
});
