/**
 * A DrChrono v4 REST API for tests, built from DrChrono's OpenAPI description and tutorial (the
 * documents adapters/api/profiles/drchrono.ts names), with the same guesses marked there:
 *
 * - `POST /o/token/`: `grant_type=refresh_token` with `client_id` and `client_secret` in the form;
 *   answers a new access token (`expires_in` 172800, 48 hours) and a new refresh token — the one
 *   sent stops working (rotation); a used or unknown one is `400 invalid_grant`.
 * - Lists answer `{ data, next, previous }`, paged by an opaque `cursor` (`page_size`, default
 *   25); `next` is an absolute URL on the API's origin.
 * - `since` (practice-local `YYYY-MM-DDTHH:mm:ss`, inclusive) bounds `updated_at` on patients,
 *   appointments, line items and line item deletions (`created_at`); appointments refuse a read
 *   without `since`, `date`, `date_range` or `occurred_since` (400) and list deleted ones only with
 *   `show_archived=true`.
 * - More than `perSecond` calls in a second (DrChrono: 10) are 429 with `Retry-After: 1`.
 */
import {
  instantToWall,
  startSimServer,
  type SimContext,
  type SimFaults,
  type SimReply,
  type SimServer,
  wallToInstant,
} from './sim-server.ts';

type Row = Record<string, unknown>;

interface Kept {
  row: Row;
  /** When it last changed (sim clock): what `since` compares. */
  at: number;
}

export const DRCHRONO_ENTITIES = ['patients', 'appointments', 'doctors', 'offices', 'line_items', 'line_item_deletions'] as const;
export type DrchronoEntity = (typeof DRCHRONO_ENTITIES)[number];

export interface DrchronoSim extends SimServer {
  clientId: string;
  clientSecret: string;
  /** The refresh token that works now (the practice's authorization gave the first). */
  refreshToken(): string;
  /** Refresh tokens issued, the first included. */
  refreshTokens: string[];
  /** Puts a row (its `updated_at` is stamped with the sim clock, practice time). */
  put(entity: DrchronoEntity, row: Row): Row;
  /** Deletes a billing line item: it leaves `/api/line_items` and a deletion is logged. */
  deleteLineItem(id: number): void;
  rows(entity: DrchronoEntity): Row[];
}

export interface DrchronoSimOptions {
  timezone?: string;
  perSecond?: number;
  faults?: SimFaults;
}

const SINCE_ENTITIES = new Set<DrchronoEntity>(['patients', 'appointments', 'line_items', 'line_item_deletions']);

function parseSince(text: string, timeZone: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(text);
  if (!m) return Number.NaN;
  return wallToInstant(+m[1], +m[2], +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), timeZone);
}

export async function startDrchronoSim(o: DrchronoSimOptions = {}): Promise<DrchronoSim> {
  const timezone = o.timezone ?? 'America/Chicago';
  const clientId = 'ewml-drchrono-client';
  const clientSecret = 'drchrono-secret-test';
  const refreshTokens = ['drchrono-refresh-0'];
  let liveRefresh = refreshTokens[0];
  const store: Record<DrchronoEntity, Map<string, Kept>> = {
    patients: new Map(),
    appointments: new Map(),
    doctors: new Map(),
    offices: new Map(),
    line_items: new Map(),
    line_item_deletions: new Map(),
  };
  let sim: SimServer;

  const list = (ctx: SimContext, entity: DrchronoEntity): SimReply => {
    const q = ctx.query;
    if (entity === 'appointments' && !['since', 'date', 'date_range', 'occurred_since'].some((p) => q.has(p)))
      return { status: 400, body: { detail: 'Either since, occurred_since, date or date_range parameter must be specified' } };
    const since = q.get('since');
    const from = since && SINCE_ENTITIES.has(entity) ? parseSince(since, timezone) : undefined;
    if (since && Number.isNaN(from)) return { status: 400, body: { since: ['Enter a valid date/time.'] } };
    const size = Math.min(Number(q.get('page_size') ?? '25'), 250);
    const after = q.get('cursor') ? Number(Buffer.from(q.get('cursor')!, 'base64url').toString('utf8')) : -1;
    const all = [...store[entity].values()]
      .filter((k) => from === undefined || k.at >= from)
      .filter((k) => entity !== 'appointments' || q.get('show_archived') === 'true' || k.row.deleted_flag !== true)
      .sort((a, b) => sortKey(a.row) - sortKey(b.row));
    const rest = all.filter((k) => sortKey(k.row) > after);
    const page = rest.slice(0, size);
    let next: string | null = null;
    if (rest.length > size) {
      const n = new URLSearchParams(q);
      n.set('cursor', Buffer.from(String(sortKey(page.at(-1)!.row))).toString('base64url'));
      n.set('page_size', String(size));
      next = `${ctx.origin}${ctx.path}?${n.toString()}`;
    }
    return { status: 200, body: { data: page.map((k) => k.row), next, previous: null } };
  };

  sim = await startSimServer({
    perSecond: o.perSecond ?? 0,
    faults: o.faults,
    isToken: (method, path) => method === 'POST' && path === '/o/token/',
    token(ctx, tokens) {
      const form = new URLSearchParams(ctx.body);
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret)
        return { status: 401, body: { error: 'invalid_client' } };
      if (form.get('grant_type') !== 'refresh_token') return { status: 400, body: { error: 'unsupported_grant_type' } };
      if (form.get('refresh_token') !== liveRefresh) return { status: 400, body: { error: 'invalid_grant' } };
      liveRefresh = `drchrono-refresh-${refreshTokens.length}`;
      refreshTokens.push(liveRefresh);
      return {
        status: 200,
        body: {
          access_token: tokens.issue(),
          token_type: 'Bearer',
          expires_in: 172_800,
          refresh_token: liveRefresh,
          scope: 'patients:read calendar:read billing:read user:read',
        },
      };
    },
    api(ctx, authorized) {
      if (!authorized) return { status: 401, body: { detail: 'Authentication credentials were not provided.' } };
      const m = /^\/api\/([a-z_]+)$/.exec(ctx.path);
      const entity = m?.[1] as DrchronoEntity | undefined;
      if (ctx.method !== 'GET' || !entity || !(entity in store)) return { status: 404, body: { detail: 'Not found.' } };
      return list(ctx, entity);
    },
  });

  const put = (entity: DrchronoEntity, row: Row): Row => {
    const now = sim.clock.now();
    const stamped = { ...row, [entity === 'line_item_deletions' ? 'created_at' : 'updated_at']: instantToWall(now, timezone) };
    store[entity].set(String(sortKey(stamped)), { row: stamped, at: now });
    return stamped;
  };
  return {
    ...sim,
    clientId,
    clientSecret,
    refreshTokens,
    refreshToken: () => liveRefresh,
    put,
    deleteLineItem(id) {
      const k = store.line_items.get(String(id));
      store.line_items.delete(String(id));
      put('line_item_deletions', { billing_line_item_id: id, appointment_id: k?.row.appointment ?? null });
    },
    rows: (entity) => [...store[entity].values()].map((k) => k.row),
  };
}

/** A row's place in its list: its id (a deletion's: the deleted item's). */
function sortKey(r: Row): number {
  return Number(r.id ?? r.billing_line_item_id);
}

const FAMILY = ['Abara', 'Bergstrom', 'Chen', 'Duval', 'Esposito', 'Fischer', 'Guerrero', 'Holm'];
const GIVEN = ['Amara', 'Bjorn', 'Cai', 'Delphine', 'Enzo', 'Freya', 'Gael', 'Hana'];
const pad = (n: number) => String(n).padStart(2, '0');

/** A synthetic DrChrono patient (the OpenAPI's Patient fields). */
export function drchronoPatient(n: number, over: Row = {}): Row {
  return {
    id: 10_000 + n,
    chart_id: `CH${String(n).padStart(5, '0')}`,
    first_name: GIVEN[n % GIVEN.length],
    middle_name: '',
    last_name: FAMILY[(n * 5) % FAMILY.length],
    date_of_birth: `${1940 + (n % 60)}-${pad((n % 12) + 1)}-${pad((n % 28) + 1)}`,
    gender: n % 3 === 0 ? 'Female' : n % 3 === 1 ? 'Male' : 'Other',
    address: `${200 + n} Sample Avenue`,
    city: 'Riverton',
    state: 'IL',
    zip_code: '60601',
    cell_phone: `(555) 020-${String(n % 10000).padStart(4, '0')}`,
    email: `patient${n}@example.test`,
    patient_status: 'A',
    doctor: 300,
    ...over,
  };
}

/** A synthetic appointment `n` for patient `patient` (a break when `over` says `appt_is_break: true`). */
export function drchronoAppointment(n: number, patient: number, over: Row = {}): Row {
  const day = new Date(Date.UTC(2026, 4, 4 + (n % 30)));
  return {
    id: String(800_000 + n),
    patient: 10_000 + patient,
    doctor: 300,
    office: 40,
    exam_room: 1,
    scheduled_time: `${day.toISOString().slice(0, 10)}T${pad(9 + (n % 8))}:${n % 2 ? '30' : '00'}:00`,
    duration: 30,
    status: n % 5 === 0 ? 'Complete' : n % 7 === 0 ? 'Cancelled' : 'Confirmed',
    profile: 11,
    reason: 'Annual eye exam',
    appt_is_break: false,
    deleted_flag: false,
    ...over,
  };
}

export function drchronoLineItem(n: number, patient: number, over: Row = {}): Row {
  return {
    id: 60_000 + n,
    patient: String(10_000 + patient),
    doctor: '300',
    appointment: 800_000 + n,
    code: n % 2 ? '92004' : '92015',
    description: n % 2 ? 'Eye exam, new patient' : 'Refraction',
    procedure_type: 'C',
    billed: 120 + n,
    quantity: 1,
    service_date: '2026-05-04',
    billing_status: 'Bill Insurance',
    ...over,
  };
}

export const drchronoDoctor = (n: number): Row => ({
  id: 300 + n,
  first_name: GIVEN[n % GIVEN.length],
  last_name: FAMILY[n % FAMILY.length],
  npi_number: String(1987654320 + n),
  specialty: 'Optometrist',
  is_account_suspended: false,
  email: `doctor${n}@example.test`,
});

export const drchronoOffice = (n: number): Row => ({
  id: 40 + n,
  name: `Riverton Eye Care ${n}`,
  address: `${n} Lake Street`,
  city: 'Riverton',
  state: 'IL',
  zip_code: '60601',
  phone_number: '(555) 030-0000',
  archived: false,
});
