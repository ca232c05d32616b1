/**
 * An `apis[]` entry with its profile folded in: every entity complete, or the list of what is
 * missing. The config rules (config/api-rules.ts) and the source itself resolve the same way, so
 * a config that loads is one the source can run.
 *
 * An entry's `entities` empty takes the profile's; an entity named like a profile entity takes it
 * and overrides field by field (`paging` and `modifiedSince` member by member); any other is
 * defined whole.
 */
import type { ApiEntity, ApiProfile, ApiSourceConfig, Deletes, ResolvedApiSource } from './api-types.ts';
import { API_PROFILES } from './profiles/index.ts';

export interface ResolveProblem {
  /** Below the entry (`entities[0].path`, `auth.clientSecret`). */
  path: string;
  expected: string;
  found: string;
  todo: string;
}

type EntityConfig = ApiSourceConfig['entities'][number];

const VARIABLE = /\{([A-Za-z0-9_]+)\}/g;

/** The `{name}`s a template uses. */
export function variablesOf(template: string): string[] {
  return [...template.matchAll(VARIABLE)].map((m) => m[1]);
}

function mergeEntity(
  c: EntityConfig | undefined,
  p: ApiProfile['entities'][number] | undefined,
  size: { source?: number; profile: number },
): Partial<ApiEntity> {
  const paging = p?.paging || c?.paging ? { ...p?.paging, ...c?.paging } : undefined;
  const since = p?.modifiedSince || c?.modifiedSince ? { ...p?.modifiedSince, ...c?.modifiedSince } : undefined;
  return {
    name: c?.name ?? p?.name,
    path: c?.path ?? p?.path,
    method: c?.method ?? p?.method ?? 'GET',
    query: { ...p?.query, ...c?.query },
    rows: c?.rows ?? p?.rows,
    key: c?.key ?? p?.key,
    modifiedSince: since as ApiEntity['modifiedSince'],
    paging: paging as ApiEntity['paging'] | undefined,
    subscribe: c?.subscribe ?? p?.subscribe,
    pageSize: c?.pageSize ?? size.source ?? p?.pageSize ?? size.profile,
    intervalMinutes: c?.intervalMinutes ?? p?.intervalMinutes ?? 0,
    deletes: (c?.deletes as Deletes | undefined) ?? p?.deletes ?? { kind: 'none' },
    records: (c?.records as ApiEntity['records'] | undefined) ?? p?.records,
  };
}

/** What an entity lacks (paths below `entities[i]`). */
function entityProblems(e: Partial<ApiEntity>, at: string, names: Set<string>, add: (p: ResolveProblem) => void): void {
  const need = (field: string, what: string) =>
    add({ path: `${at}.${field}`, expected: what, found: 'nothing', todo: `give ${field} (the profile has no entity "${e.name}")` });
  if (!e.path) need('path', 'the request path below baseUrl');
  if (e.rows === undefined) need('rows', "the JSON path of the rows' array ('' when the body is the array)");
  if (!e.key) need('key', "the JSON path of a row's key");
  if (!e.records) need('records', 'what each row becomes (or [] for a deletions log)');
  const pg = e.paging;
  if (!pg) need('paging', 'how the rows are paged (kind: none when one page holds them)');
  else {
    const pagingNeeds: Record<string, Array<'param' | 'sizeParam' | 'field'>> = {
      none: [],
      offset: ['param', 'sizeParam'],
      page: ['param'],
      cursor: ['param', 'field'],
      next: ['field'],
    };
    for (const f of pagingNeeds[pg.kind] ?? [])
      if (!pg[f]) add({ path: `${at}.paging.${f}`, expected: `${f} for ${pg.kind} paging`, found: 'nothing', todo: `set paging.${f}` });
    if ((pg.overlapRows ?? 0) >= (e.pageSize ?? 1))
      add({
        path: `${at}.paging.overlapRows`,
        expected: `fewer rows than a page (${e.pageSize})`,
        found: String(pg.overlapRows),
        todo: 'lower overlapRows or raise pageSize: a page must move the read forward',
      });
  }
  const d = e.deletes;
  if (d?.kind === 'field' && (!d.field || !d.in?.length))
    add({
      path: `${at}.deletes`,
      expected: 'field and in, for field deletes',
      found: JSON.stringify(d),
      todo: 'name the deleted flag and its values',
    });
  if (d?.kind === 'tombstone' && (!d.target || !d.key || !names.has(d.target)))
    add({
      path: `${at}.deletes`,
      expected: 'target (another entity of this source) and key, for a deletions log',
      found: JSON.stringify(d),
      todo: `name the entity whose rows it deletes (one of ${[...names].join(', ')}) and the JSON path of their key`,
    });
}

/** Folds the profile into the entry; `source` is set only when nothing is missing. */
export function resolveApiSource(c: ApiSourceConfig): { source?: ResolvedApiSource; problems: ResolveProblem[] } {
  const problems: ResolveProblem[] = [];
  const add = (p: ResolveProblem) => problems.push(p);
  const profile = API_PROFILES[c.profile];
  const baseUrl = (c.baseUrl ?? profile.baseUrl ?? '').replace(/\/+$/, '');
  if (!baseUrl) add({ path: 'baseUrl', expected: "the API's base URL", found: 'nothing', todo: 'set baseUrl (https://…)' });
  const configured = c.entities.length ? c.entities : profile.entities.map((p) => ({ name: p.name }) as EntityConfig);
  const names = new Set(configured.map((e) => e.name));
  const seen = new Set<string>();
  const entities: ApiEntity[] = [];
  configured.forEach((ec, i) => {
    const at = `entities[${i}]`;
    if (seen.has(ec.name))
      add({
        path: `${at}.name`,
        expected: 'a name no other entity of this source has',
        found: ec.name,
        todo: 'give each entity its own name',
      });
    seen.add(ec.name);
    const e = mergeEntity(
      ec,
      profile.entities.find((p) => p.name === ec.name),
      { source: c.pageSize, profile: profile.pageSize },
    );
    entityProblems(e, at, names, add);
    const templates = [e.path ?? '', e.subscribe ?? '', ...Object.values(e.query ?? {})];
    for (const v of templates.flatMap(variablesOf))
      if (!(v in c.variables) && !problems.some((p) => p.path === `variables.${v}`))
        add({ path: `variables.${v}`, expected: `a value for {${v}} (used by ${ec.name})`, found: 'nothing', todo: `set variables.${v}` });
    entities.push(e as ApiEntity);
  });
  for (const v of profile.variables)
    if (!(v in c.variables) && !problems.some((p) => p.path === `variables.${v}`))
      add({
        path: `variables.${v}`,
        expected: `a value for ${v} (${profile.label} needs it)`,
        found: 'nothing',
        todo: `set variables.${v}`,
      });

  const kind = c.auth.kind ?? profile.auth.kind;
  const auth = {
    kind,
    tokenUrl: c.auth.tokenUrl ?? profile.auth.tokenUrl,
    clientId: c.auth.clientId,
    clientSecret: c.auth.clientSecret,
    clientAuth: c.auth.clientAuth ?? profile.auth.clientAuth ?? 'basic',
    scope: c.auth.scope ?? profile.auth.scope,
    refreshToken: c.auth.refreshToken,
    header: c.auth.header ?? profile.auth.header ?? 'authorization',
    prefix: c.auth.prefix ?? profile.auth.prefix ?? '',
    key: c.auth.key,
  };
  if (auth.tokenUrl?.startsWith('/') && baseUrl) auth.tokenUrl = `${new URL(baseUrl).origin}${auth.tokenUrl}`;
  const needs: Record<string, Array<'tokenUrl' | 'clientId' | 'clientSecret' | 'refreshToken' | 'key'>> = {
    none: [],
    'client-credentials': ['tokenUrl', 'clientId', 'clientSecret'],
    'refresh-token': ['tokenUrl', 'clientId', 'clientSecret', 'refreshToken'],
    'api-key': ['key'],
  };
  for (const f of needs[kind] ?? [])
    if (!auth[f])
      add({
        path: `auth.${f}`,
        expected: `${f} for ${kind} auth`,
        found: 'nothing',
        todo:
          f === 'clientSecret' || f === 'refreshToken' || f === 'key' ? `set auth.${f} to \${env:NAME} or \${file:PATH}` : `set auth.${f}`,
      });
  if (problems.length) return { problems };
  return {
    problems,
    source: {
      id: c.id,
      profile,
      profileName: c.profile,
      baseUrl,
      variables: c.variables,
      system: c.system || `${profile.system}:${c.id}`,
      auth,
      rateLimit: {
        perSecond: c.rateLimit.perSecond ?? profile.rateLimit.perSecond ?? 0,
        perMinute: c.rateLimit.perMinute ?? profile.rateLimit.perMinute ?? 0,
        perHour: c.rateLimit.perHour ?? profile.rateLimit.perHour ?? 0,
        perDay: c.rateLimit.perDay ?? profile.rateLimit.perDay ?? 0,
      },
      pollIntervalMs: c.pollIntervalMs,
      overlapSeconds: c.overlapSeconds,
      timeoutMs: c.timeoutMs,
      entities,
    },
  };
}
