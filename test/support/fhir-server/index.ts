/**
 * A FHIR R4 server for tests, in process on 127.0.0.1 (a free port), that behaves like a chosen
 * vendor's: base URL shape, SMART Backend Services tokens, CapabilityStatement, search and paging,
 * writes, Bulk Data export and faults. Built on node:http from the FHIR R4 RESTful API and search
 * rules, SMART App Launch 2.2 and the Bulk Data IG v2 (README.md says why no engine package).
 *
 * ```ts
 * const fhir = await startFhirServer({ vendor: 'cerner', resources: loadCorpus(['fhir/fhir-r4-examples']), clients: [{ clientId, jwks }] });
 * // fhir.baseUrl, fhir.tokenUrl; fhir.store.put(...) between polls; fhir.requests for assertions
 * await fhir.stop();
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBulk } from './bulk.ts';
import { capabilityStatement } from './capability.ts';
import { armDrop, createFaults } from './faults.ts';
import { FhirHttpError, queryRecord, sendJson, sendOutcome } from './http-util.ts';
import { create, history, read, remove, update, vread } from './rest.ts';
import { decodeGetpages, decodePosition, runSearch } from './search.ts';
import { createSmartAuth, type Interaction, type IssuedToken, scopesAllow, smartConfiguration } from './smart-auth.ts';
import { createFhirStore, type FhirStore } from './store.ts';
import type { BulkOptions, FaultOptions, FhirResource, RequestLog, SmartClient, SyntheticSource, VendorName } from './types.ts';
import { servesType, type VendorProfile, vendorProfile } from './vendors.ts';

export { loadCorpus } from './corpus-loader.ts';
export type { FhirStore } from './store.ts';
export { syntheticPatients } from './synthetic.ts';
export { createTestClientKeys, fetchAccessToken, requestToken, signClientAssertion, type TestClientKeys } from './test-client.ts';
export type { BulkOptions, FaultOptions, FhirResource, RequestLog, SmartClient, SyntheticSource, VendorName } from './types.ts';
export { type VendorProfile, vendorProfile } from './vendors.ts';

export interface FhirServerOptions {
  /** Whose behaviour to imitate; default 'generic'. */
  vendor?: VendorName;
  /** Cerner tenant id / athenahealth practice id in the base path; default the profile's. */
  tenant?: string;
  /** Overrides of the vendor profile (a test's variation: other search params, page sizes, export levels). */
  profile?: Partial<VendorProfile>;
  /** Resources stored at start (e.g. `loadCorpus([...])`); each gets versionId 1 and lastUpdated = the clock. */
  resources?: FhirResource[];
  /** Resource sets generated on the fly (e.g. `syntheticPatients(100_000)`). */
  synthetic?: SyntheticSource[];
  /** SMART Backend Services clients. */
  clients?: SmartClient[];
  /** Whether API requests need a bearer token; default true. */
  requireAuth?: boolean;
  /** Access-token lifetime; default 300 s. */
  tokenLifetimeSeconds?: number;
  /** CapabilityStatement.fhirVersion; default '4.0.1' (a test can serve '3.0.2' or '5.0.0'). */
  fhirVersion?: string;
  /** The clock (ms); default Date.now. `store.setNow` pins it. */
  clock?: () => number;
  faults?: FaultOptions;
  bulk?: BulkOptions;
  /** Unsupported search parameters: refused with 400 (default) or ignored; a request's `Prefer: handling=` wins. */
  unknownParams?: 'refuse' | 'ignore';
}

export interface FhirServer {
  /** The FHIR base URL, e.g. `http://127.0.0.1:PORT/r4/<tenant>`. */
  baseUrl: string;
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  tokenUrl: string;
  profile: VendorProfile;
  /** Every answered request, oldest first (no bodies, no header values). */
  requests: RequestLog[];
  /** The test-side mutation API: put, delete, count, setNow/advance. */
  store: FhirStore;
  /** Revokes every access token issued so far. */
  revokeTokens(): void;
  /** API requests so far (the ordinals faults count: under the base URL, the token endpoint not counted). */
  apiRequests(): number;
  /** Cuts the response of API request `ordinal` after part of it was sent (the write done, its answer lost). */
  dropConnectionAt(ordinal: number): void;
  stop(): Promise<void>;
}

export async function startFhirServer(opts: FhirServerOptions = {}): Promise<FhirServer> {
  const profile = vendorProfile(opts.vendor ?? 'generic', opts.profile);
  const tenant = opts.tenant ?? profile.defaultTenant;
  const basePath = profile.basePath(tenant);
  const tokenPath = profile.tokenPath(tenant);
  const store = createFhirStore({ clock: opts.clock });
  for (const r of opts.resources ?? []) store.put(r);
  for (const s of opts.synthetic ?? []) store.addSynthetic(s);
  const requests: RequestLog[] = [];
  const requireAuth = opts.requireAuth ?? true;
  const faults = createFaults({ ...opts.faults, rateLimit: opts.faults?.rateLimit ?? profile.rateLimit }, store.now);

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const baseUrl = `${origin}${basePath}`;
  const tokenUrl = `${origin}${tokenPath}`;
  const auth = createSmartAuth({
    clients: opts.clients ?? [],
    tokenUrl,
    clock: store.now,
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 300,
  });
  const bulk = createBulk({
    store,
    profile,
    baseUrl,
    requiresAccessToken: requireAuth,
    options: { pollsBeforeReady: 1, retryAfterSeconds: 1, maxResourcesPerFile: 10_000, ...opts.bulk },
  });
  const rest = { store, profile, baseUrl };

  const handleApi = async (req: IncomingMessage, res: ServerResponse, url: URL, rel: string) => {
    const method = req.method ?? 'GET';
    if (method === 'GET' && rel === '/metadata') {
      const fhirVersion = opts.fhirVersion ?? '4.0.1';
      sendJson(res, 200, capabilityStatement({ profile, store, baseUrl, tokenUrl, fhirVersion, now: store.now() }));
      return;
    }
    if (method === 'GET' && rel === '/.well-known/smart-configuration') {
      sendJson(res, 200, smartConfiguration(tokenUrl), {}, 'application/json');
      return;
    }
    let token: IssuedToken | undefined;
    if (requireAuth) {
      token = auth.check(req.headers.authorization);
      if (!token) {
        throw new FhirHttpError(401, 'login', 'a valid bearer token is required', {
          'WWW-Authenticate': 'Bearer realm="fhir", error="invalid_token"',
        });
      }
    }
    const need = (type: string, i: Interaction) => {
      if (!servesType(profile, type)) throw new FhirHttpError(404, 'not-supported', `resource type ${type} is not supported`);
      if (token && !scopesAllow(token.scopes, type, i)) throw new FhirHttpError(403, 'forbidden', `scope does not allow ${i} on ${type}`);
    };
    const handling = preferHandling(req) ?? (opts.unknownParams === 'ignore' ? 'lenient' : 'strict');
    const parts = rel.split('/').slice(1).map(decodeURIComponent);
    const [a, b, c, d] = parts;
    const n = rel === '' ? 0 : parts.length;

    if (method === 'GET' && n === 0) {
      const pages = url.searchParams.get('_getpages');
      if (pages === null) throw new FhirHttpError(400, 'not-supported', 'system-level search is not supported');
      const { type, params, after } = decodeGetpages(pages);
      need(type, 'search');
      sendJson(res, 200, runSearch({ store, profile, baseUrl, type, params, after, selfUrl: url.href, handling }));
      return;
    }
    if (method === 'GET' && (rel === '/$export' || rel === '/Patient/$export' || (n === 3 && a === 'Group' && c === '$export'))) {
      bulk.kickOff(req, res, n === 1 ? 'system' : a === 'Group' ? 'group' : 'patient', b, url, token?.scopes);
      return;
    }
    if (a === 'bulkstatus' && n === 2 && (method === 'GET' || method === 'DELETE')) return bulk.status(res, b, method);
    if (a === 'bulkfiles' && n === 3 && method === 'GET') return bulk.download(res, b, c);

    if (!/^[A-Z][A-Za-z]+$/.test(a ?? '')) throw new FhirHttpError(404, 'not-found', 'unknown path');
    if (method === 'GET' && n === 1) {
      need(a, 'search');
      const { params, after } = pagingOf(profile, url.searchParams);
      sendJson(res, 200, runSearch({ store, profile, baseUrl, type: a, params, after, selfUrl: url.href, handling }));
    } else if (method === 'GET' && n === 2 && b === '_history') {
      need(a, 'read');
      history(rest, res, a, undefined, url.searchParams);
    } else if (method === 'GET' && n === 2) {
      need(a, 'read');
      read(rest, res, a, b);
    } else if (method === 'GET' && n === 3 && c === '_history') {
      need(a, 'read');
      history(rest, res, a, b, url.searchParams);
    } else if (method === 'GET' && n === 4 && c === '_history') {
      need(a, 'read');
      vread(rest, res, a, b, d);
    } else if (method === 'POST' && n === 1) {
      need(a, 'create');
      await create(rest, req, res, a);
    } else if (method === 'PUT' && n === 2) {
      need(a, 'update');
      await update(rest, req, res, a, b);
    } else if (method === 'DELETE' && n === 2) {
      need(a, 'delete');
      remove(rest, res, a, b);
    } else {
      throw new FhirHttpError(405, 'not-supported', `${method} is not supported here`);
    }
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', origin);
    const entry: RequestLog = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryRecord(url.searchParams),
      status: 0,
      hadToken: /^Bearer\s/i.test(req.headers.authorization ?? ''),
      at: store.now(),
    };
    res.on('close', () => {
      entry.status = res.statusCode;
      requests.push(entry);
    });
    const inBase = url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
    const run = async () => {
      if (url.pathname === tokenPath && req.method === 'POST') return auth.handleToken(req, res);
      if (!inBase) throw new FhirHttpError(404, 'not-found', 'not a FHIR endpoint');
      const fault = faults.next();
      if (fault?.kind === 'status') throw new FhirHttpError(fault.status, fault.code, fault.text, fault.headers);
      if (fault?.kind === 'drop') armDrop(res, () => (entry.dropped = true));
      await handleApi(req, res, url, url.pathname.slice(basePath.length));
    };
    run().catch((e: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (e instanceof FhirHttpError) return sendOutcome(res, e.status, e.code, e.message, e.headers);
      sendOutcome(res, 500, 'exception', 'internal error in the FHIR test server');
    });
  });

  return {
    baseUrl,
    origin,
    tokenUrl,
    profile,
    requests,
    store,
    revokeTokens: auth.revokeTokens,
    apiRequests: () => faults.count(),
    dropConnectionAt: (ordinal) => faults.dropAt(ordinal),
    stop: async () => {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** `Prefer: handling=strict|lenient` (FHIR R4 §3.1.1.2.2). */
function preferHandling(req: IncomingMessage): 'strict' | 'lenient' | undefined {
  const m = /handling\s*=\s*(strict|lenient)/i.exec(String(req.headers.prefer ?? ''));
  return m ? (m[1].toLowerCase() as 'strict' | 'lenient') : undefined;
}

/** Takes the profile's paging parameters out of a type search's query: Cerner's `-pageContext`, athenahealth's `cursor`. */
function pagingOf(profile: VendorProfile, q: URLSearchParams): { params: [string, string][]; after?: [number, string] } {
  const names = profile.paging === 'page-context' ? ['-pageContext', '-pageDirection'] : profile.paging === 'cursor' ? ['cursor'] : [];
  const params = [...q].filter(([k]) => !names.includes(k));
  const token = profile.paging === 'page-context' ? q.get('-pageContext') : profile.paging === 'cursor' ? q.get('cursor') : null;
  if (profile.paging === 'page-context' && token !== null && q.get('-pageDirection') !== 'NEXT') {
    throw new FhirHttpError(400, 'not-supported', '-pageDirection must be NEXT');
  }
  return { params, after: token === null ? undefined : decodePosition(token) };
}
