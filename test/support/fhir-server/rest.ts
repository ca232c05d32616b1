/**
 * The instance-level interactions (FHIR R4 RESTful API §3.1.0): read (410 Gone for a deleted
 * resource, §3.1.0.2), vread, type and instance history (a deletion is an entry whose
 * request.method is DELETE and that has no resource, §3.1.0.3.3), create with `If-None-Exist`
 * (conditional create, §3.1.0.8: one match answers 200 with it instead of a duplicate, several
 * answer 412), update with `If-Match` (version-aware update, §3.1.0.5.1: 412 when the version is
 * not the current one; update-as-create for an unknown id) and delete. The server, not the
 * client, sets id on create and meta.versionId/meta.lastUpdated on every write.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FhirHttpError, parseResourceBody, readBody, sendJson } from './http-util.ts';
import { findMatches } from './search.ts';
import { FHIR_ID, type FhirStore, type StoredVersion } from './store.ts';
import type { FhirResource } from './types.ts';
import type { VendorProfile } from './vendors.ts';

export interface RestContext {
  store: FhirStore;
  profile: VendorProfile;
  baseUrl: string;
}

/** ETag and Last-Modified of a version (R4 §3.1.0.1.4: `ETag: W/"<versionId>"`). */
function versionHeaders(v: { versionId: number | string; lastUpdatedMs: number }): Record<string, string> {
  return { ETag: `W/"${v.versionId}"`, 'Last-Modified': new Date(v.lastUpdatedMs).toUTCString() };
}

function headersOf(r: FhirResource): Record<string, string> {
  return versionHeaders({ versionId: String(r.meta?.versionId), lastUpdatedMs: Date.parse(String(r.meta?.lastUpdated)) });
}

export function read(c: RestContext, res: ServerResponse, type: string, id: string): void {
  const v = c.store.current(type, id);
  if (!v) throw new FhirHttpError(404, 'not-found', `${type}/${id} is not known`);
  if (!v.resource) throw new FhirHttpError(410, 'deleted', `${type}/${id} was deleted`);
  sendJson(res, 200, v.resource, versionHeaders(v));
}

export function vread(c: RestContext, res: ServerResponse, type: string, id: string, vid: string): void {
  const v = c.store.version(type, id, Number(vid));
  if (!v) throw new FhirHttpError(404, 'not-found', `${type}/${id} has no version ${vid}`);
  if (!v.resource) throw new FhirHttpError(410, 'deleted', `${type}/${id} version ${vid} is a deletion`);
  sendJson(res, 200, v.resource, versionHeaders(v));
}

/** `GET [base]/[type]/_history` and `[type]/[id]/_history`: newest first, `_since` (instant) and `_count` honoured, one page. */
export function history(c: RestContext, res: ServerResponse, type: string, id: string | undefined, query: URLSearchParams): void {
  const since = query.get('_since');
  const sinceMs = since === null ? undefined : Date.parse(since.replace(' ', '+'));
  if (Number.isNaN(sinceMs)) throw new FhirHttpError(400, 'invalid', '_since must be an instant');
  const count = query.has('_count') ? Number(query.get('_count')) : c.profile.maxCount;
  if (!Number.isInteger(count) || count < 0) throw new FhirHttpError(400, 'invalid', '_count must be a whole number');
  const versions = c.store
    .history(type)
    .filter((v) => (id === undefined || v.id === id) && (sinceMs === undefined || v.lastUpdatedMs > sinceMs))
    .slice()
    .reverse();
  const entry = versions.slice(0, count).map((v) => historyEntry(c, v));
  sendJson(res, 200, {
    resourceType: 'Bundle',
    type: 'history',
    total: versions.length,
    link: [{ relation: 'self', url: `${c.baseUrl}/${type}${id ? `/${id}` : ''}/_history${query.size ? `?${query}` : ''}` }],
    entry,
  });
}

function historyEntry(c: RestContext, v: StoredVersion) {
  const method = v.resource === null ? 'DELETE' : v.versionId === 1 ? 'POST' : 'PUT';
  return {
    fullUrl: `${c.baseUrl}/${v.type}/${v.id}`,
    ...(v.resource ? { resource: v.resource } : {}),
    request: { method, url: method === 'POST' ? v.type : `${v.type}/${v.id}` },
    response: {
      status: method === 'DELETE' ? '204' : method === 'POST' ? '201' : '200',
      etag: `W/"${v.versionId}"`,
      lastModified: new Date(v.lastUpdatedMs).toISOString(),
    },
  };
}

export async function create(c: RestContext, req: IncomingMessage, res: ServerResponse, type: string): Promise<void> {
  const body = parseResourceBody(await readBody(req));
  if (body.resourceType !== type) throw new FhirHttpError(400, 'invalid', `body is a ${body.resourceType}, not a ${type}`);
  const condition = req.headers['if-none-exist'];
  if (typeof condition === 'string' && condition.length > 0) {
    const qs = condition.includes('?') ? condition.slice(condition.indexOf('?') + 1) : condition;
    const found = findMatches(c.store, c.profile, type, [...new URLSearchParams(qs)], 2);
    if (found.length > 1) throw new FhirHttpError(412, 'duplicate', 'If-None-Exist matches more than one resource');
    if (found.length === 1) {
      sendJson(res, 200, found[0], {
        ...headersOf(found[0]),
        Location: `${c.baseUrl}/${type}/${found[0].id}/_history/${found[0].meta?.versionId}`,
      });
      return;
    }
  }
  const stored = c.store.put({ ...body, id: c.store.newId(type) } as FhirResource);
  sendJson(res, 201, stored, { ...headersOf(stored), Location: `${c.baseUrl}/${type}/${stored.id}/_history/${stored.meta?.versionId}` });
}

export async function update(c: RestContext, req: IncomingMessage, res: ServerResponse, type: string, id: string): Promise<void> {
  const body = parseResourceBody(await readBody(req));
  if (body.resourceType !== type) throw new FhirHttpError(400, 'invalid', `body is a ${body.resourceType}, not a ${type}`);
  if (body.id !== id) throw new FhirHttpError(400, 'invalid', 'the body id must equal the id in the URL');
  if (!FHIR_ID.test(id)) throw new FhirHttpError(400, 'invalid', 'not a FHIR id');
  const current = c.store.current(type, id);
  const ifMatch = req.headers['if-match'];
  if (typeof ifMatch === 'string') {
    const wanted = /^(?:W\/)?"([^"]+)"$/.exec(ifMatch.trim())?.[1];
    if (!current?.resource || wanted !== String(current.versionId)) {
      throw new FhirHttpError(412, 'conflict', `If-Match ${ifMatch.trim()} is not the current version`);
    }
  }
  const stored = c.store.put(body as FhirResource);
  const created = !current?.resource;
  sendJson(res, created ? 201 : 200, stored, {
    ...headersOf(stored),
    ...(created ? { Location: `${c.baseUrl}/${type}/${id}/_history/${stored.meta?.versionId}` } : {}),
  });
}

/** `DELETE [base]/[type]/[id]`: 204 whether or not it was there (R4 §3.1.0.7 allows either 200/204 for an absent one). */
export function remove(c: RestContext, res: ServerResponse, type: string, id: string): void {
  c.store.delete(type, id);
  res.writeHead(204).end();
}
