/**
 * FHIR write-back (issue 15 item 7): a signed `fhir.write` cloud command creates or updates an
 * Appointment, VisionPrescription or DocumentReference on a configured FHIR server, with the
 * source's own SMART Backend Services key, so that no retry — the command processor's, or the
 * one after a restart — ever makes a second resource or overwrites someone else's change:
 *
 * - **create** is conditional (`If-None-Exist`, FHIR R4 §3.1.0.8) on an `identifier=system|value`
 *   the resource itself carries, so the retry's search finds what the first attempt made and the
 *   server answers 200 with it instead of a duplicate. A server whose CapabilityStatement does not
 *   declare `conditionalCreate` for the type is not written to.
 * - **update** is version-aware (`If-Match: W/"<versionId>"`, R4 §3.1.0.5.1). A 412 is read back:
 *   when the current version already holds what the command sends (the first attempt landed, its
 *   answer was lost) the command is done; otherwise it fails with `GW_FHIR_WRITE_CONFLICT` and
 *   nothing is overwritten. An update without a version is refused: it could overwrite.
 *
 * The request goes only to the configured base URL (the command names a source, never a URL), a
 * redirect is a failure rather than followed (the body is PHI), and what is reported is the
 * gateway's own text with the server's OperationOutcome codes, never its free text.
 *
 * Which vendor takes which write from a backend app is data (`VENDOR_WRITE_BACK`), checked with
 * the config (config/rules.ts) and again for each command.
 */
import type { FhirVendor, FhirWriteResourceName } from '../../config/fhir-schema.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import type { Clock } from '../../gateway/clock.ts';
import type { SecretStore } from '../contracts.ts';
import type { HttpClient, HttpResponse } from '../http/http-client.ts';
import { ApiError, type ApiErrorCode } from '../http/http-error.ts';
import { defaultScope, VENDOR_PROFILES } from './vendor-profiles.ts';

type FhirConfig = GatewayConfig['fhir'][number];

export const FhirWriteOperation = { create: 'create', update: 'update' } as const;
export type FhirWriteOperation = (typeof FhirWriteOperation)[keyof typeof FhirWriteOperation];

/** What a vendor lets a backend app write, per type, and why (shown with a refusal). */
export interface VendorWriteBack {
  permits: Partial<Record<FhirWriteResourceName, readonly FhirWriteOperation[]>>;
  note: string;
}

/**
 * Sources: Epic's R4 catalogue offers DocumentReference.Create (clinical notes) to backend apps,
 * books appointments through its own scheduling operations rather than a FHIR create, and lists
 * no VisionPrescription; Oracle Health Millennium's Appointment resource creates appointments and
 * changes their status by PATCH, and its DocumentReference writes and updates documents;
 * athenahealth's FHIR R4 API grants read scopes (its writes go through the athenaOne API); for
 * MEDITECH Expanse no write of these types is published for backend apps.
 */
export const VENDOR_WRITE_BACK: Record<FhirVendor, VendorWriteBack> = {
  epic: {
    permits: { DocumentReference: ['create'] },
    note: "Epic takes DocumentReference.Create from backend apps; Appointment is booked through Epic's own scheduling operations, and Epic has no VisionPrescription API.",
  },
  cerner: {
    permits: { Appointment: ['create'], DocumentReference: ['create', 'update'] },
    note: 'Oracle Health Millennium creates Appointments (their status changes by PATCH, which fhir.write does not send) and writes and updates DocumentReferences; it has no VisionPrescription API.',
  },
  athenahealth: { permits: {}, note: "athenahealth's FHIR R4 API grants read scopes only; its writes go through the athenaOne API." },
  meditech: { permits: {}, note: 'MEDITECH Expanse publishes no write of these types for backend apps.' },
  generic: {
    permits: { Appointment: ['create', 'update'], VisionPrescription: ['create', 'update'], DocumentReference: ['create', 'update'] },
    note: 'Any R4 server: what its CapabilityStatement declares (conditional create, update, versions) decides.',
  },
};

/** Whether the vendor lets a backend app do this write. */
export function vendorPermits(vendor: FhirVendor, type: string, op: FhirWriteOperation): boolean {
  return (VENDOR_WRITE_BACK[vendor].permits[type as FhirWriteResourceName] ?? []).includes(op);
}

/**
 * The write scopes of the types written back, in the vendor's style: v2 `system/<Type>.cru`
 * (create, update, and read for the look after a 412), v1 `system/<Type>.read` and `.write`.
 */
export function writeBackScopes(style: 'v1' | 'v2', types: readonly string[]): string[] {
  return types.flatMap((t) => (style === 'v2' ? [`system/${t}.cru`] : [`system/${t}.read`, `system/${t}.write`]));
}

/** The write-back connection's scope: the source's (configured or the profile's) and the write scopes it lacks. */
export function writeBackScope(c: Pick<FhirConfig, 'vendor' | 'scope' | 'resources' | 'writeBack'>): string {
  const profile = VENDOR_PROFILES[c.vendor];
  const base = (c.scope || defaultScope(profile, c.resources)).split(/\s+/).filter(Boolean);
  const extra = writeBackScopes(profile.scopeStyle, c.writeBack.resources).filter((s) => !base.includes(s));
  return [...base, ...extra].join(' ');
}

/** A write that must not be tried again as it is (a bad command, a 4xx, a version conflict): `failed`. */
export class FhirWriteRefused extends Error {
  readonly code: ApiErrorCode | 'GW_FHIR_WRITE_CONFLICT' | 'GW_COMMAND_REFUSED';
  constructor(code: FhirWriteRefused['code'], message: string) {
    super(message);
    this.name = 'FhirWriteRefused';
    this.code = code;
  }
}

/** A checked `fhir.write` command. */
export interface FhirWriteRequest {
  resourceType: FhirWriteResourceName;
  operation: FhirWriteOperation;
  resource: Record<string, unknown>;
  /** create: the `If-None-Exist` query, as sent. */
  conditional?: string;
  /** update: the version the command was based on. */
  ifMatch?: string;
}

/** What the server holds after a write that is done. */
export interface FhirWriteResult {
  /** `created` (201), `existed` (If-None-Exist matched: 200), `updated`, `unchanged` (a 412 whose current version is what was sent). */
  outcome: 'created' | 'existed' | 'updated' | 'unchanged';
  /** `<Type>/<id>` on the server. */
  resource: string;
  versionId?: string;
}

/** FHIR R4 `id` and `meta.versionId` (§2.24.0.1): 1–64 of A–Z a–z 0–9 - . */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** A search parameter name, with a modifier (`identifier:of-type`) or a chain (`patient.identifier`). */
const PARAM_NAME = /^_?[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z][A-Za-z0-9-]*)*(?::[A-Za-z][A-Za-z0-9-]*)?$/;
/** Parameters that shape a result rather than select: meaningless, or worse, in a condition. */
const NOT_CRITERIA = new Set(['_count', '_sort', '_include', '_revinclude', '_summary', '_elements', '_contained', '_total', '_format']);
const MAX_RESOURCE_BYTES = 1024 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `identifier` criteria of a condition, decoded (`system|value`). */
function identifierCriteria(query: string): string[] {
  return [...new URLSearchParams(query)].filter(([k]) => k === 'identifier').flatMap(([, v]) => v.split(','));
}

function carriesIdentifier(resource: Record<string, unknown>, token: string): boolean {
  const bar = token.indexOf('|');
  if (bar <= 0 || bar === token.length - 1) return false;
  const system = token.slice(0, bar);
  const value = token.slice(bar + 1);
  const ids = Array.isArray(resource.identifier) ? resource.identifier : [];
  return ids.some((i) => isObject(i) && i.system === system && i.value === value);
}

/** Why a condition cannot make a create safe to retry, or undefined when it can. */
function conditionProblem(query: string, resource: Record<string, unknown>): string | undefined {
  if (query.length > 2048) return '`conditional` is longer than 2048 characters';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\s\x00-\x1f\x7f#]/.test(query) || query.startsWith('?'))
    return '`conditional` must be a query string (name=value&…), encoded, without `?`';
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    let decoded: string;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      return `\`conditional\`: "${name.slice(0, 40)}" is not percent-encoded properly`;
    }
    if (eq <= 0 || eq === part.length - 1 || !PARAM_NAME.test(decoded)) return `\`conditional\`: "${part.slice(0, 40)}" is not name=value`;
    if (NOT_CRITERIA.has(decoded)) return `\`conditional\`: ${decoded} selects nothing`;
  }
  let tokens: string[];
  try {
    tokens = identifierCriteria(query);
  } catch {
    return '`conditional` is not a query string';
  }
  if (!tokens.some((t) => carriesIdentifier(resource, t)))
    return '`conditional` must name an identifier=system|value that the resource carries (resource.identifier), so a retry finds what the first attempt created';
  return undefined;
}

/**
 * Checks a `fhir.write` command against the source's write-back settings and its vendor: the
 * command's own text, before anything is sent. A string is the refusal.
 */
export function checkFhirWrite(
  cmd: Record<string, unknown>,
  c: Pick<FhirConfig, 'id' | 'vendor' | 'writeBack'>,
): FhirWriteRequest | string {
  const type = cmd.resourceType;
  const op = cmd.operation;
  if (typeof type !== 'string' || !type) return '`resourceType` is missing';
  if (op !== 'create' && op !== 'update') return '`operation` must be create or update';
  if (!(c.writeBack.resources as readonly string[]).includes(type))
    return `${type} is not written back to ${c.id} (fhir[].writeBack.resources: ${c.writeBack.resources.join(', ') || 'none'})`;
  if (!vendorPermits(c.vendor, type, op))
    return `${VENDOR_PROFILES[c.vendor].label} does not take ${op} of ${type}: ${VENDOR_WRITE_BACK[c.vendor].note}`;
  const resource = cmd.resource;
  if (!isObject(resource)) return '`resource` must be a FHIR resource (an object)';
  if (resource.resourceType !== type) return `resource.resourceType is ${String(resource.resourceType)}, not ${type}`;
  if (Buffer.byteLength(JSON.stringify(resource)) > MAX_RESOURCE_BYTES) return `the resource is larger than ${MAX_RESOURCE_BYTES} bytes`;
  if (op === 'create') {
    if (resource.id !== undefined) return 'a create carries no resource.id (the server assigns it); to change a resource, update it';
    if (cmd.ifMatch !== undefined) return '`ifMatch` belongs to an update';
    if (typeof cmd.conditional !== 'string' || !cmd.conditional)
      return 'a create needs `conditional` (the If-None-Exist search, e.g. identifier=system|value) so a retry never duplicates it';
    const problem = conditionProblem(cmd.conditional, resource);
    if (problem) return problem;
    return { resourceType: type as FhirWriteResourceName, operation: op, resource, conditional: cmd.conditional };
  }
  if (cmd.conditional !== undefined) return '`conditional` belongs to a create';
  if (typeof resource.id !== 'string' || !FHIR_ID.test(resource.id)) return 'an update needs resource.id (a FHIR id)';
  if (typeof cmd.ifMatch !== 'string' || !FHIR_ID.test(cmd.ifMatch))
    return 'an update needs `ifMatch`, the versionId it was based on, so it never overwrites a change made since';
  return { resourceType: type as FhirWriteResourceName, operation: op, resource, ifMatch: cmd.ifMatch };
}

/** What the server's CapabilityStatement says about writing one type (R4 CapabilityStatement.rest.resource). */
interface WriteCapability {
  interactions: string[];
  conditionalCreate: boolean;
  versioning?: string;
}

function writeCapabilities(body: unknown): Map<string, WriteCapability> {
  const out = new Map<string, WriteCapability>();
  const rests = isObject(body) && Array.isArray(body.rest) ? body.rest : [];
  for (const rest of rests) {
    if (!isObject(rest) || (rest.mode !== undefined && rest.mode !== 'server') || !Array.isArray(rest.resource)) continue;
    for (const r of rest.resource) {
      if (!isObject(r) || typeof r.type !== 'string') continue;
      out.set(r.type, {
        interactions: (Array.isArray(r.interaction) ? r.interaction : []).map((i) => (isObject(i) ? String(i.code) : '')),
        conditionalCreate: r.conditionalCreate === true,
        versioning: typeof r.versioning === 'string' ? r.versioning : undefined,
      });
    }
  }
  return out;
}

/** Why this server cannot take the write safely, or undefined. */
function capabilityProblem(caps: Map<string, WriteCapability>, req: FhirWriteRequest): string | undefined {
  const cap = caps.get(req.resourceType);
  if (!cap) return `the server's CapabilityStatement does not list ${req.resourceType}`;
  if (!cap.interactions.includes(req.operation))
    return `the server's CapabilityStatement does not offer ${req.operation} on ${req.resourceType}`;
  if (req.operation === 'create' && !cap.conditionalCreate)
    return `the server does not declare conditional create (If-None-Exist) on ${req.resourceType}: a retry could duplicate it`;
  if (req.operation === 'update' && cap.versioning === 'no-version')
    return `the server keeps no versions of ${req.resourceType}, so If-Match cannot protect an update`;
  return undefined;
}

/** The content of a resource, without what the server sets (meta, narrative), keys sorted: to tell "what we sent" from a change. */
function content(r: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : isObject(v)
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sort(v[k])]),
          )
        : v;
  if (!isObject(r)) return JSON.stringify(r);
  const { meta: _meta, text: _text, ...rest } = r;
  return JSON.stringify(sort(rest));
}

/** `W/"3"` → `3`. */
const etagVersion = (etag: string | null) => (etag ? /^(?:W\/)?"([^"]+)"$/.exec(etag.trim())?.[1] : undefined);

/** The id and version a write answered with: Location (`…/<Type>/<id>/_history/<vid>`), then the body, then the ETag. */
function locate(res: HttpResponse, body: unknown, type: string): { id?: string; versionId?: string } {
  const loc = res.headers.get('location') ?? res.headers.get('content-location');
  const m = loc
    ? new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/([A-Za-z0-9\\-.]{1,64}))?/?$`).exec(loc.split('?')[0])
    : null;
  const b = isObject(body) ? body : {};
  const meta = isObject(b.meta) ? b.meta : {};
  const id = m?.[1] ?? (typeof b.id === 'string' && FHIR_ID.test(b.id) ? b.id : undefined);
  const versionId = m?.[2] ?? (typeof meta.versionId === 'string' ? meta.versionId : undefined) ?? etagVersion(res.headers.get('etag'));
  return { id, versionId: versionId && FHIR_ID.test(versionId) ? versionId : undefined };
}

export interface FhirWriteBack {
  readonly sourceId: string;
  /** Checks a command (a string is the refusal). */
  check(cmd: Record<string, unknown>): FhirWriteRequest | string;
  /**
   * Carries out a checked write. Throws `FhirWriteRefused` when trying again cannot help, any
   * other error when it may (the server unreachable, 429/5xx past the client's own retries).
   */
  write(req: FhirWriteRequest, signal?: AbortSignal): Promise<FhirWriteResult>;
}

/** An authenticated client to the server and its CapabilityStatement. */
export interface FhirWriteConnection {
  http: HttpClient;
  capabilities: unknown;
}

export interface FhirWriteBackOptions {
  config: FhirConfig;
  clock: Clock;
  secrets: SecretStore;
  fetch?: typeof fetch;
  /** Test seam: how the connection is made (default: the FHIR source's own `connect`, with the write scopes). */
  connect?: (signal?: AbortSignal) => Promise<FhirWriteConnection>;
}

/** A source's write-back: one connection, made with the first write and kept (the token renews itself). */
export function createFhirWriteBack(o: FhirWriteBackOptions): FhirWriteBack {
  const c = o.config;
  const baseUrl = c.baseUrl.replace(/\/+$/, '');
  let conn: Promise<{ http: HttpClient; caps: Map<string, WriteCapability> }> | undefined;

  async function open(signal?: AbortSignal) {
    if (o.connect) {
      const x = await o.connect(signal);
      return { http: x.http, caps: writeCapabilities(x.capabilities) };
    }
    // imported with the first write: a gateway that never writes back never loads the SMART client
    const { fhirSourceFrom } = await import('./index.ts');
    const source = fhirSourceFrom({ ...c, scope: writeBackScope(c) }, { clock: o.clock, secrets: o.secrets, fetch: o.fetch });
    const x = await source.connect(signal);
    // the source keeps only what reading needs of /metadata; a write needs conditionalCreate and versioning too
    return { http: x.http, caps: writeCapabilities(await x.http.getJson(`${baseUrl}/metadata`, signal)) };
  }

  function connection(signal?: AbortSignal) {
    conn ??= open(signal).catch((e: unknown) => {
      conn = undefined; // the next attempt connects afresh
      throw e;
    });
    return conn;
  }

  /** An ApiError in the gateway's own words (code, status, OperationOutcome codes): permanent ones as FhirWriteRefused, the rest to be retried. */
  function failure(e: unknown, what: string): Error {
    if (!(e instanceof ApiError)) return e instanceof Error ? e : new Error(String(e));
    const facts = [e.status, e.detail.outcome && `outcome ${e.detail.outcome}`].filter(Boolean).join('; ');
    const message = `${e.code}: ${what}${facts ? ` (${facts})` : ''}`;
    return e.retry === 'permanent' ? new FhirWriteRefused(e.code, message) : new Error(message, { cause: e });
  }

  async function create(http: HttpClient, req: FhirWriteRequest, signal?: AbortSignal): Promise<FhirWriteResult> {
    const type = req.resourceType;
    const res = await http.request({
      method: 'POST',
      url: `${baseUrl}/${type}`,
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', 'if-none-exist': req.conditional! },
      body: JSON.stringify(req.resource),
      accept: [412],
      redirect: 'manual',
      signal,
    });
    if (res.status === 412) {
      await res
        .stream()
        .cancel()
        .catch(() => undefined);
      throw new FhirWriteRefused(
        'GW_API_REFUSED',
        `GW_API_REFUSED: If-None-Exist matches more than one ${type} on the server (412); nothing created`,
      );
    }
    const body = await res.json();
    const at = locate(res, body, type);
    if (!at.id)
      throw new FhirWriteRefused('GW_API_REFUSED', `GW_API_REFUSED: the server answered ${res.status} to a ${type} create without its id`);
    return { outcome: res.status === 201 ? 'created' : 'existed', resource: `${type}/${at.id}`, versionId: at.versionId };
  }

  async function update(http: HttpClient, req: FhirWriteRequest, signal?: AbortSignal): Promise<FhirWriteResult> {
    const type = req.resourceType;
    const id = String(req.resource.id);
    const url = `${baseUrl}/${type}/${encodeURIComponent(id)}`;
    const res = await http.request({
      method: 'PUT',
      url,
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', 'if-match': `W/"${req.ifMatch}"` },
      body: JSON.stringify(req.resource),
      accept: [412],
      redirect: 'manual',
      signal,
    });
    if (res.status !== 412) {
      const at = locate(res, await res.json(), type);
      return { outcome: res.status === 201 ? 'created' : 'updated', resource: `${type}/${id}`, versionId: at.versionId };
    }
    await res
      .stream()
      .cancel()
      .catch(() => undefined);
    // 412: changed since ifMatch — or this command's own earlier attempt landed and its answer was lost
    let now: { versionId?: string; same: boolean } | 'gone' | undefined;
    try {
      const cur = await http.request({ url, headers: { accept: 'application/fhir+json' }, accept: [404, 410], redirect: 'manual', signal });
      if (cur.status === 404 || cur.status === 410) {
        await cur
          .stream()
          .cancel()
          .catch(() => undefined);
        now = 'gone';
      } else {
        const body = await cur.json();
        now = { versionId: locate(cur, body, type).versionId, same: content(body) === content(req.resource) };
      }
    } catch {
      now = undefined; // not readable (no read scope, say): the conflict stands
    }
    if (now !== undefined && now !== 'gone' && now.same)
      return { outcome: 'unchanged', resource: `${type}/${id}`, versionId: now.versionId };
    const since = `${type}/${id} changed on the server since version ${req.ifMatch}`;
    throw new FhirWriteRefused(
      'GW_FHIR_WRITE_CONFLICT',
      now === 'gone'
        ? `GW_FHIR_WRITE_CONFLICT: ${type}/${id} is not on the server (deleted since version ${req.ifMatch}, or never there); not written`
        : `GW_FHIR_WRITE_CONFLICT: ${since}${now?.versionId ? ` (now version ${now.versionId})` : ''}; not overwritten`,
    );
  }

  return {
    sourceId: c.id,
    check: (cmd) => checkFhirWrite(cmd, c),
    async write(req, signal) {
      const what = `${req.operation} of ${req.resourceType} on ${c.id}`;
      let x: Awaited<ReturnType<typeof connection>>;
      try {
        x = await connection(signal);
      } catch (e) {
        throw failure(e, `connecting for the ${what}`);
      }
      const problem = capabilityProblem(x.caps, req);
      if (problem) throw new FhirWriteRefused('GW_API_REFUSED', `GW_API_REFUSED: ${problem}`);
      try {
        return req.operation === 'create' ? await create(x.http, req, signal) : await update(x.http, req, signal);
      } catch (e) {
        if (e instanceof FhirWriteRefused) throw e;
        throw failure(e, what);
      }
    },
  };
}
