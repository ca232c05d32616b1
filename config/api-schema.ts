/**
 * The `apis[]` section: a vendor's own REST API read as a polled source (adapters/api/). An entry
 * names a profile (athenahealth, DrChrono, or `generic`) and little else; the profile
 * (adapters/api/profiles/) supplies the base URL, the auth flow, the rate limits and the entities —
 * each a request template, its paging, where the rows are, the row key and the records mapped
 * declaratively like a database stream's — and any field here overrides it.
 *
 * The schema is made by a function of the record-mapping schema config/schema.ts already holds,
 * so the two sections share one definition of `records[]` without this file importing schema.ts
 * (which imports this one).
 */
import { Type, type TSchema } from '@sinclair/typebox';

export const ApiProfileName = ['generic', 'athenahealth', 'drchrono'] as const;
export type ApiProfileName = (typeof ApiProfileName)[number];

/** How an entity's modified-since parameter is written (`timezone` says in which zone the wall-clock forms are). */
export const SinceFormat = ['iso', 'datetime', 'date', 'MM/DD/YYYY', 'MM/DD/YYYY HH:mm:ss', 'epoch'] as const;
export type SinceFormat = (typeof SinceFormat)[number];

export const PagingKind = ['none', 'offset', 'page', 'cursor', 'next'] as const;
export type PagingKind = (typeof PagingKind)[number];

export const ApiAuthKind = ['none', 'client-credentials', 'refresh-token', 'api-key'] as const;
export type ApiAuthKind = (typeof ApiAuthKind)[number];

const opt = (description: string) => Type.Optional(Type.String({ description }));
const secret = (description: string) => Type.Optional(Type.String({ description, secret: true }));
const count = (description: string, minimum = 1) => Type.Optional(Type.Integer({ minimum, description }));

const modifiedSince = Type.Object(
  {
    param: Type.String({ minLength: 1, description: 'The query parameter (`since`, `showprocessedstartdatetime`).' }),
    format: Type.Union(
      SinceFormat.map((x) => Type.Literal(x)),
      {
        default: 'iso',
        description:
          '`iso` (UTC, with milliseconds), `datetime` (`YYYY-MM-DDTHH:mm:ss`), `date`, `MM/DD/YYYY`, `MM/DD/YYYY HH:mm:ss`, or `epoch` seconds.',
      },
    ),
    timezone: Type.Union([Type.Literal('utc'), Type.Literal('practice')], {
      default: 'utc',
      description: "The zone the wall-clock formats are written in: UTC, or the practice's (`gateway.timezone`).",
    }),
    initial: opt(
      'An ISO instant sent on the first run, for APIs that refuse a read without the parameter (DrChrono appointments); absent: the first run sends none.',
    ),
  },
  {
    additionalProperties: false,
    description:
      "The vendor's change signal: the instant the last run began (by the server's `Date`), less `overlapSeconds`, sent in this parameter. Without it every run reads the whole set (unchanged rows write nothing).",
  },
);

const paging = Type.Object(
  {
    kind: Type.Union(
      PagingKind.map((x) => Type.Literal(x)),
      {
        description:
          '`offset` (`param` = offset, `sizeParam` = limit), `page` (page numbers from `start`), `cursor` (the next cursor at `field` in the body, sent as `param`), `next` (a next link at `field`, or the `Link` header), `none` (one page).',
      },
    ),
    param: opt('The offset, page or cursor query parameter.'),
    sizeParam: opt('The page-size query parameter (`limit`, `page_size`).'),
    start: Type.Optional(Type.Integer({ minimum: 0, description: 'The first page number (page paging; default 1).' })),
    field: opt('JSON path of the next cursor or link in the body (`next`, `meta.next_cursor`); `link-header` reads the Link header.'),
    totalField: opt(
      'JSON path of the total count (`totalcount`), when the vendor gives one: shown as first-load progress, and ends offset paging.',
    ),
    overlapRows: count(
      'Offset and page paging: each page starts this many rows before the last one ended, so a row deleted meanwhile shifts nothing past the gateway.',
      0,
    ),
  },
  { additionalProperties: false, description: 'How the rows are paged.' },
);

const deletes = Type.Object(
  {
    kind: Type.Union([Type.Literal('none'), Type.Literal('field'), Type.Literal('tombstone')], {
      description:
        "`field`: a row whose `field` holds one of `in` is gone (DrChrono's `deleted_flag`); `tombstone`: this entity lists deletions of `target`, each naming its row at `key`; `none`: the vendor exposes no deletes.",
    }),
    field: opt('JSON path of the deleted flag.'),
    in: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { minItems: 1 })),
    target: opt('The entity whose rows a tombstone names.'),
    key: opt("JSON path of the deleted row's key in a tombstone."),
  },
  { additionalProperties: false, description: 'Deletes, where the vendor exposes them.' },
);

/** The `apis[]` entry schema, built around the shared record-mapping schema. */
export function apiSourceSchema<M extends TSchema>(recordMapping: M) {
  const entity = Type.Object(
    {
      name: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_-]+$', description: 'Entity name (cursor key, status, record source ids).' }),
      path: opt('Request path below `baseUrl`, with `{variable}`s (`/v1/{practiceId}/patients`).'),
      method: Type.Optional(Type.Union([Type.Literal('GET'), Type.Literal('POST')], { description: 'Default GET.' })),
      query: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Query parameters, with `{variable}`s.' })),
      rows: opt("JSON path of the rows' array in the body (`data`, `patients`; empty: the body is the array)."),
      key: opt("JSON path of a row's key (`id`, `patientid`)."),
      modifiedSince: Type.Optional(modifiedSince),
      paging: Type.Optional(paging),
      subscribe: opt("A path POSTed once before the entity is first read (athenahealth's changed-data subscriptions)."),
      pageSize: count('Rows asked per page (no more than the vendor serves in one).'),
      intervalMinutes: count('Read at most this often (directories that change seldom); default every poll.', 0),
      deletes: Type.Optional(deletes),
      records: Type.Optional(
        Type.Array(recordMapping, {
          description: 'What each row becomes (as `databases[].streams[].records`; nested fields by dotted path).',
        }),
      ),
    },
    { additionalProperties: false },
  );
  return Type.Object(
    {
      id: Type.String({
        minLength: 1,
        pattern: '^(?!\\.+$)[A-Za-z0-9._-]+$',
        description: 'Adapter id (logs, status, cursors, its sealed tokens).',
      }),
      profile: Type.Union(
        ApiProfileName.map((x) => Type.Literal(x)),
        {
          default: 'generic',
          description:
            '`athenahealth`, `drchrono`, or `generic` (everything given here). It supplies every setting below that is not given.',
        },
      ),
      baseUrl: opt("The API's origin and base path (https; http only to this machine's loopback). Default: the profile's."),
      variables: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_]+$' }), Type.String(), {
        default: {},
        description: 'Values for `{name}` in paths and queries (athenahealth: `practiceId`).',
      }),
      system: Type.String({ default: '', description: '`source.system` of the records (default: the profile and id, `DRCHRONO:main`).' }),
      auth: Type.Object(
        {
          kind: Type.Optional(
            Type.Union(
              ApiAuthKind.map((x) => Type.Literal(x)),
              {
                description:
                  "`client-credentials` (OAuth 2.0), `refresh-token` (authorization code with refresh: DrChrono), `api-key` (a header), `none`. Default: the profile's.",
              },
            ),
          ),
          tokenUrl: opt("The OAuth token endpoint (default: the profile's)."),
          clientId: opt('The OAuth client id the vendor issued.'),
          clientSecret: secret('The OAuth client secret. Secret: `${env:NAME}` or `${file:PATH}`.'),
          clientAuth: Type.Optional(
            Type.Union([Type.Literal('basic'), Type.Literal('body')], {
              description: "How the client authenticates at the token endpoint: HTTP Basic, or in the form (default: the profile's).",
            }),
          ),
          scope: opt("Scopes to ask for (default: the profile's)."),
          refreshToken: secret(
            "The refresh token from the practice's authorization (refresh-token). Secret. Used until the vendor rotates it; from then on the rotated one, sealed in the data folder, wins — a new value here (a new authorization) starts again from it.",
          ),
          header: opt('API key: the header it goes in (default `Authorization`).'),
          prefix: opt('API key: text before the key (`Bearer `, `Token `).'),
          key: secret('API key. Secret.'),
        },
        { additionalProperties: false, default: {}, description: 'How the gateway proves itself to the API.' },
      ),
      rateLimit: Type.Object(
        {
          perSecond: count("Calls per second at most (default: the profile's)."),
          perMinute: count("Calls per minute at most (default: the profile's)."),
          perHour: count("Calls per hour at most (default: the profile's)."),
          perDay: count("Calls per UTC day at most (default: the profile's)."),
        },
        { additionalProperties: false, default: {}, description: 'The gateway keeps under these itself.' },
      ),
      pollIntervalMs: Type.Integer({ minimum: 1000, default: 300_000, description: 'How often the entities are read for changes.' }),
      overlapSeconds: Type.Integer({
        minimum: 0,
        default: 300,
        description:
          "Each incremental read starts this long before the last run began (late commits, the server's clock); unchanged rows write nothing.",
      }),
      pageSize: count("Rows per page for every entity (default: each entity's, else the profile's)."),
      timeoutMs: Type.Integer({ minimum: 1000, default: 60_000, description: 'One request, until its headers arrive.' }),
      entities: Type.Array(entity, {
        default: [],
        description:
          "The entities to read. Empty: the profile's. An entry named like a profile entity takes it and overrides what it gives; others are defined whole (`path`, `rows`, `key`, `records`).",
      }),
    },
    { additionalProperties: false },
  );
}
