/**
 * An athenahealth athenaOne REST API for tests, built from the shapes adapters/api/profiles/
 * athenahealth.ts names (athenahealth's changed-data subscription and best-practice guides, the
 * athenaOne OpenAPI as republished, its token endpoint) — and the same guesses, marked there:
 *
 * - `POST /oauth2/v1/token`: client credentials, the client authenticated with HTTP Basic;
 *   answers `{ access_token, token_type, expires_in }` (`expires_in` as a string, as athenahealth
 *   writes it).
 * - `/v1/{practiceid}/…`: another practice id is 404; lists are `{ <entity>: [...], totalcount,
 *   next }` paged by `offset`/`limit` (default limit 10, as the guides' examples page).
 * - Changed-data feeds: `/patients/changed` and `/appointments/changed` answer 403 until
 *   `POST …/changed/subscription`; each change is a message, unprocessed until a read returns it
 *   (which marks it processed, at that read's time); `showprocessedstartdatetime`
 *   (`MM/DD/YYYY HH:mm:ss`, practice time) also returns messages processed since then.
 * - More than `perSecond` calls in a second are answered 429 with `Retry-After: 1`.
 */
import {
  basicCredentials,
  startSimServer,
  type SimContext,
  type SimFaults,
  type SimReply,
  type SimServer,
  wallToInstant,
} from './sim-server.ts';

type Row = Record<string, unknown>;

interface Message {
  seq: number;
  row: Row;
  processedAt?: number;
}

export interface AthenaSim extends SimServer {
  practiceId: string;
  clientId: string;
  clientSecret: string;
  departments: Row[];
  providers: Row[];
  /** Records a change to a patient (a message on the patients feed). */
  changePatient(row: Row): void;
  changeAppointment(row: Row): void;
  /** Every message of a feed, in order. */
  messages(feed: 'patients' | 'appointments'): Row[];
  subscribed: Set<string>;
}

export interface AthenaSimOptions {
  practiceId?: string;
  timezone?: string;
  perSecond?: number;
  faults?: SimFaults;
  departments?: Row[];
  providers?: Row[];
}

const FEEDS = ['patients', 'appointments'] as const;

/** `MM/DD/YYYY HH:mm:ss` in a zone → ms. */
function parseAthenaTime(text: string, timeZone: string): number {
  const m = /^(\d{2})\/(\d{2})\/(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) return Number.NaN;
  return wallToInstant(+m[3], +m[1], +m[2], +m[4], +m[5], +m[6], timeZone);
}

export async function startAthenaSim(o: AthenaSimOptions = {}): Promise<AthenaSim> {
  const practiceId = o.practiceId ?? '195900';
  const timezone = o.timezone ?? 'America/New_York';
  const clientId = 'ewml-athena-client';
  const clientSecret = 'athena-secret-test';
  const departments = o.departments ?? [];
  const providers = o.providers ?? [];
  const feeds: Record<(typeof FEEDS)[number], Message[]> = { patients: [], appointments: [] };
  const subscribed = new Set<string>();
  let seq = 0;
  let sim: SimServer;

  const list = (ctx: SimContext, name: string, all: Row[]): SimReply => {
    const offset = Number(ctx.query.get('offset') ?? '0');
    const limit = Number(ctx.query.get('limit') ?? '10');
    const page = all.slice(offset, offset + limit);
    const body: Row = { [name]: page, totalcount: all.length };
    if (offset + limit < all.length) {
      const next = new URLSearchParams(ctx.query);
      next.set('offset', String(offset + limit));
      next.set('limit', String(limit));
      body.next = `${ctx.path}?${next.toString()}`;
    }
    return { status: 200, body };
  };

  const feed = (ctx: SimContext, name: (typeof FEEDS)[number]): SimReply => {
    if (!subscribed.has(name))
      return { status: 403, body: { error: 'Changed messages require setup (subscription) that has not been done.' } };
    const since = ctx.query.get('showprocessedstartdatetime');
    const from = since ? parseAthenaTime(since, timezone) : undefined;
    if (since && Number.isNaN(from)) return { status: 400, body: { error: 'Invalid showprocessedstartdatetime.' } };
    const set = feeds[name].filter((m) => m.processedAt === undefined || (from !== undefined && m.processedAt >= from));
    const reply = list(
      ctx,
      name,
      set.map((m) => m.row),
    );
    const offset = Number(ctx.query.get('offset') ?? '0');
    const limit = Number(ctx.query.get('limit') ?? '10');
    const now = sim.clock.now();
    for (const m of set.slice(offset, offset + limit)) m.processedAt ??= now;
    return reply;
  };

  sim = await startSimServer({
    perSecond: o.perSecond ?? 0,
    faults: o.faults,
    isToken: (method, path) => method === 'POST' && path === '/oauth2/v1/token',
    token(ctx, tokens) {
      const c = basicCredentials(ctx.headers.authorization);
      const form = new URLSearchParams(ctx.body);
      if (!c || c.id !== clientId || c.secret !== clientSecret) return { status: 401, body: { error: 'invalid_client' } };
      if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
      return {
        status: 200,
        body: { access_token: tokens.issue(), token_type: 'Bearer', expires_in: '3600', scope: form.get('scope') ?? '' },
      };
    },
    api(ctx, authorized) {
      if (!authorized) return { status: 401, body: { error: 'Invalid or expired token' } };
      const m = /^\/v1\/([^/]+)\/(.+)$/.exec(ctx.path);
      if (!m) return { status: 404, body: { error: 'Not found' } };
      if (m[1] !== practiceId) return { status: 404, body: { error: 'Invalid practice.' } };
      const rest = m[2];
      if (ctx.method === 'GET' && rest === 'departments') return list(ctx, 'departments', departments);
      if (ctx.method === 'GET' && rest === 'providers') return list(ctx, 'providers', providers);
      for (const f of FEEDS) {
        if (ctx.method === 'GET' && rest === `${f}/changed`) return feed(ctx, f);
        if (ctx.method === 'POST' && rest === `${f}/changed/subscription`) {
          subscribed.add(f);
          return { status: 200, body: { success: true } };
        }
      }
      return { status: 404, body: { error: 'Not found' } };
    },
  });
  return {
    ...sim,
    practiceId,
    clientId,
    clientSecret,
    departments,
    providers,
    subscribed,
    changePatient: (row) => void feeds.patients.push({ seq: ++seq, row }),
    changeAppointment: (row) => void feeds.appointments.push({ seq: ++seq, row }),
    messages: (f) => feeds[f].map((x) => x.row),
  };
}

const FAMILY = ['Okafor', 'Lindqvist', 'Tanaka', 'Moreau', 'Castillo', 'Novak', 'Haddad', 'Brennan'];
const GIVEN = ['Ada', 'Bram', 'Chioma', 'Dario', 'Elif', 'Farid', 'Greta', 'Hiro'];
const pad = (n: number) => String(n).padStart(2, '0');

/** A synthetic athenaOne patient (the OpenAPI's Patient fields), all strings as athenahealth sends them. */
export function athenaPatient(n: number, over: Row = {}): Row {
  return {
    patientid: String(1000 + n),
    firstname: GIVEN[n % GIVEN.length],
    lastname: FAMILY[(n * 3) % FAMILY.length],
    dob: `${pad((n % 12) + 1)}/${pad((n % 27) + 1)}/${1950 + (n % 50)}`,
    sex: n % 2 ? 'F' : 'M',
    address1: `${100 + n} Test Street`,
    city: 'Springfield',
    state: 'MA',
    zip: '01101',
    mobilephone: `555010${String(n % 10000).padStart(4, '0')}`,
    departmentid: '1',
    ...over,
  };
}

/** A synthetic booked appointment (`f`), on a date `n` days after 2026-03-02. */
export function athenaAppointment(n: number, patient: number, over: Row = {}): Row {
  const day = new Date(Date.UTC(2026, 2, 2 + (n % 40)));
  return {
    appointmentid: String(5000 + n),
    appointmentstatus: 'f',
    date: `${pad(day.getUTCMonth() + 1)}/${pad(day.getUTCDate())}/${day.getUTCFullYear()}`,
    starttime: `${pad(8 + (n % 9))}:${n % 2 ? '30' : '00'}`,
    duration: '30',
    patientid: String(1000 + patient),
    providerid: String(70 + (n % 3)),
    departmentid: '1',
    appointmenttypeid: '62',
    appointmenttype: 'Eye exam',
    ...over,
  };
}

export const athenaDepartment = (n: number): Row => ({
  departmentid: String(n),
  name: `Vision Center ${n}`,
  address: `${n} Main Street`,
  city: 'Springfield',
  state: 'MA',
  zip: '01101',
  phone: '5550100000',
});

export const athenaProvider = (n: number): Row => ({
  providerid: String(70 + n),
  firstname: GIVEN[n % GIVEN.length],
  lastname: FAMILY[n % FAMILY.length],
  npi: String(1234567890 + n),
  providertype: 'OD',
});
