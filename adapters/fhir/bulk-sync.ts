/**
 * Bulk Data export (FHIR Bulk Data Access IG v2): the resources a source syncs in bulk, exported
 * by one job at a time and imported in bounded memory.
 *
 * The job's life, every step kept in the cursor (`<id>/$export`) so a restart goes on where it was:
 * 1. kick-off: `GET [base]/$export` (or `Patient/$export`, `Group/[id]/$export`) with
 *    `Prefer: respond-async`, `_type` and `_since`; the server answers `202` with the status URL in
 *    `Content-Location`, which is committed before anything else is done (no second job on restart).
 *    `_since` is kept per resource type: a type exported for the first time (added to `resources`,
 *    or moved to bulk) goes in a job of its own without `_since`, so its history is never skipped;
 * 2. status: asked once per cycle (the searches of the other resources go on meanwhile), honouring
 *    `Retry-After` and showing `X-Progress`, until `200` and its manifest (`transactionTime`, which
 *    is required, `requiresAccessToken`, `output`, `deleted`, `error`, and further manifest pages
 *    by `link` next), which is committed under its own key, once;
 * 3. files: each NDJSON file streamed line by line, a page of resources (by count and by bytes)
 *    committed with the file and line after it; a restart re-reads the file and skips to that line.
 *    `deleted` files (Bundles of `DELETE` entries) become delete records; `error` files'
 *    OperationOutcomes are counted. A file the server no longer has (404/410/403: the job expired)
 *    cancels the job: the next cycle exports again from the same `_since`;
 * 4. done: each exported type's `_since` becomes the manifest's `transactionTime`; the job is
 *    deleted on the server (`DELETE` on the status URL) so it can free the files.
 * A job still running past `maxWaitMinutes`, or one the server fails, is cancelled and the next
 * cycle starts anew.
 */
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import type { RawRow } from '../contracts.ts';
import { ApiError, checkEndpointUrl, outcomeCodes, safeUrl } from '../http/http-error.ts';
import { retryAfterMs } from '../http/http-client.ts';
import { ndjsonLines } from '../http/ndjson-lines.ts';
import { deletedRow, resourceRow, unreadableRow } from './fhir-rows.ts';
import { sameOrigin, type SyncContext } from './sync-context.ts';

type R = Record<string, unknown>;

interface ManifestFile {
  type: string;
  url: string;
  kind: 'output' | 'deleted' | 'error';
}

interface Manifest {
  transactionTime: string;
  requiresAccessToken: boolean;
  files: ManifestFile[];
}

export interface BulkCursor {
  /** The `_since` of each type exported before: the transactionTime of its last finished export. */
  sinceByType?: Record<string, string>;
  finishedAt?: number;
  job?: {
    status: string;
    kickedOffAt: number;
    types: string[];
    /** The job's `_since` (absent: everything). */
    since?: string;
    /** The manifest is committed under its own key (written once, not with every page). */
    manifest?: true;
    file: number;
    line: number;
  };
}

export interface BulkOptions {
  level: 'system' | 'group' | 'patient';
  groupId: string;
  intervalMinutes: number;
  maxWaitMinutes: number;
  maxLineBytes: number;
}

/** A page is committed at this many bytes of NDJSON even before `pageSize` resources (inline attachments are large). */
const PAGE_BYTES = 8 * 1024 * 1024;
/** Manifest pages followed at most (IG v3 paged manifests). */
const MAX_MANIFEST_PAGES = 1000;

export const bulkCursorKey = (sourceId: string) => `${sourceId}/$export`;
const manifestKey = (sourceId: string) => `${sourceId}/$export/manifest`;

export function readBulkCursor(s: Pick<SyncContext, 'cursor' | 'sourceId'>): BulkCursor {
  const t = s.cursor(bulkCursorKey(s.sourceId));
  return t ? (JSON.parse(t) as BulkCursor) : {};
}

/** Whether an export is due: one under way, a type never exported (none yet, or one new to bulk), or the interval passed since the last. */
export function bulkDue(c: BulkCursor, types: readonly string[], o: BulkOptions, now: number): boolean {
  if (c.job !== undefined || c.finishedAt === undefined) return true;
  if (types.some((t) => c.sinceByType?.[t] === undefined)) return true;
  return now - c.finishedAt >= o.intervalMinutes * 60_000;
}

function kickOffUrl(s: SyncContext, types: readonly string[], since: string | undefined, o: BulkOptions): string {
  const path =
    o.level === 'group' ? `Group/${encodeURIComponent(o.groupId)}/$export` : o.level === 'patient' ? 'Patient/$export' : '$export';
  const q = new URLSearchParams({ _type: types.join(',') });
  if (since) q.set('_since', since);
  return `${s.baseUrl}/${path}?${q.toString()}`;
}

/**
 * The next job's types and `_since`: types never exported first, on their own and without `_since`;
 * otherwise all, from the earliest of their bounds (re-read resources are unchanged and write nothing).
 */
function nextJob(types: readonly string[], sinceByType: Record<string, string>): { types: string[]; since?: string } {
  const fresh = types.filter((t) => sinceByType[t] === undefined);
  if (fresh.length) return { types: fresh };
  const since = types.map((t) => sinceByType[t]).sort()[0];
  return { types: [...types], since };
}

export type BulkRunResult = number | { pendingMs: number } | undefined;

/**
 * Moves the export on by one step: kicks off, asks the status once (`{ pendingMs }` while the
 * server is still exporting), or imports the files to the end (the resources committed). Undefined
 * when stopped.
 */
export async function bulkRun(s: SyncContext, types: readonly FhirResourceName[], o: BulkOptions): Promise<BulkRunResult> {
  const key = bulkCursorKey(s.sourceId);
  let c = readBulkCursor(s);
  const save = async (next: BulkCursor, rows: RawRow[] = [], stream = key) => {
    const ok = await s.commit(stream, rows, { key, value: JSON.stringify(next) });
    if (ok) c = next;
    return ok;
  };
  const reset = () => save({ sinceByType: c.sinceByType, finishedAt: c.finishedAt });

  if (!c.job) {
    const plan = nextJob(types, c.sinceByType ?? {});
    const res = await s.http.request({
      url: kickOffUrl(s, plan.types, plan.since, o),
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
      accept: [202],
      signal: s.signal,
    });
    const loc = res.headers.get('content-location');
    await res.stream().cancel();
    if (res.status !== 202 || !loc)
      throw new ApiError('GW_FHIR_BULK_FAILED', `the export kick-off answered ${res.status} without a status URL`, { status: res.status });
    const status = sameOrigin(loc, s.baseUrl, 'export status URL');
    const job = { status, kickedOffAt: s.clock.now(), types: plan.types, ...(plan.since ? { since: plan.since } : {}), file: 0, line: 0 };
    if (!(await save({ ...c, job }))) return undefined;
    s.logger.info({ types: plan.types.join(','), since: plan.since ?? 'all', status: safeUrl(status) }, 'bulk export started');
  }

  let job = c.job!;
  if (!job.manifest) {
    if (s.clock.now() - job.kickedOffAt > o.maxWaitMinutes * 60_000) {
      await cancel(s, job.status);
      await reset();
      throw new ApiError('GW_FHIR_BULK_FAILED', `the export ran longer than ${o.maxWaitMinutes} minutes and was cancelled`, {
        retry: 'transient',
      });
    }
    const res = await s.http.request({
      url: job.status,
      headers: { accept: 'application/json' },
      accept: [202, 404, 410],
      signal: s.signal,
    });
    if (res.status === 202) {
      await res.stream().cancel();
      const progress = (res.headers.get('x-progress') ?? 'in progress').replace(/[^\w %.,:/()-]/g, '').slice(0, 40);
      s.note('bulk.state', `exporting: ${progress}`);
      return { pendingMs: Math.max(1000, Math.min(retryAfterMs(res.headers.get('retry-after'), s.clock.now()) ?? 10_000, 300_000)) };
    }
    if (res.status === 404 || res.status === 410) {
      // the server forgot the job (it expired): a new one starts next cycle, from the same bounds
      await res.stream().cancel();
      await reset();
      throw new ApiError('GW_FHIR_BULK_FAILED', `the export's status URL answered ${res.status}; a new export starts next cycle`, {
        status: res.status,
        retry: 'transient',
      });
    }
    const manifest = await readManifest(s, (await res.json()) as R | undefined);
    if (!(await s.commit(key, [], { key: manifestKey(s.sourceId), value: JSON.stringify(manifest) }))) return undefined;
    job = { ...job, manifest: true, file: 0, line: 0 };
    if (!(await save({ ...c, job }))) return undefined;
    s.logger.info({ files: manifest.files.length, transactionTime: manifest.transactionTime }, 'bulk export ready; importing its files');
  }

  const text = s.cursor(manifestKey(s.sourceId));
  if (!text) {
    // the job's manifest was never committed (a cursor from before it was kept apart): ask for it again
    await save({ ...c, job: { ...job, manifest: undefined, file: 0, line: 0 } });
    return { pendingMs: 1000 };
  }
  const manifest = JSON.parse(text) as Manifest;
  let imported = 0;
  for (let i = job.file; i < manifest.files.length; i++) {
    const f = manifest.files[i];
    s.note('bulk.state', `importing file ${i + 1} of ${manifest.files.length}`);
    let n: number | undefined;
    try {
      n = await importFile(s, f, i, i === job.file ? job.line : 0, manifest, job.kickedOffAt, o, async (rows, line) => {
        job = { ...job, file: i, line };
        return save({ ...c, job }, rows, `${s.sourceId}/${f.kind === 'output' ? f.type : 'deleted'}`);
      });
    } catch (e) {
      const status = e instanceof ApiError ? e.status : undefined;
      if (status === 403 || status === 404 || status === 410) {
        // the job's files are gone (expired on the server): export again, from the same bounds
        await cancel(s, job.status);
        await reset();
        throw new ApiError('GW_FHIR_BULK_FAILED', `an export file answered ${status}; the export starts again next cycle`, {
          status,
          retry: 'transient',
        });
      }
      throw e;
    }
    if (n === undefined) return undefined;
    imported += n;
    job = { ...job, file: i + 1, line: 0 };
    if (!(await save({ ...c, job }))) return undefined;
  }
  await cancel(s, job.status);
  const sinceByType = { ...c.sinceByType };
  for (const t of job.types) sinceByType[t] = manifest.transactionTime;
  if (!(await save({ sinceByType, finishedAt: s.clock.now() }))) return undefined;
  s.note('bulk.state', 'idle');
  s.note('bulk.lastExportAt', manifest.transactionTime);
  return imported;
}

/** The manifest and its further pages (`link` next, Bulk Data IG v3), as one list of files. */
async function readManifest(s: SyncContext, first: R | undefined): Promise<Manifest> {
  const transactionTime = first?.transactionTime;
  if (typeof transactionTime !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(transactionTime))
    throw new ApiError('GW_FHIR_BULK_FAILED', 'the export manifest has no transactionTime: the next _since could not be known', {
      retry: 'permanent',
    });
  const files: ManifestFile[] = [];
  let page: R | undefined = first;
  for (let n = 0; page && n < MAX_MANIFEST_PAGES; n++) {
    for (const kind of ['output', 'deleted', 'error'] as const)
      for (const f of Array.isArray(page[kind]) ? (page[kind] as R[]) : [])
        if (typeof f.url === 'string') files.push({ kind, type: String(f.type ?? '').slice(0, 64), url: f.url });
    const next = (Array.isArray(page.link) ? (page.link as R[]) : []).find((l) => l.relation === 'next')?.url;
    if (typeof next !== 'string' || next === '')
      return { transactionTime, requiresAccessToken: first?.requiresAccessToken === true, files };
    page = (await s.http.getJson(sameOrigin(next, s.baseUrl, 'manifest next link'), s.signal)) as R | undefined;
  }
  throw new ApiError('GW_FHIR_BULK_FAILED', `the export manifest has more than ${MAX_MANIFEST_PAGES} pages`, { retry: 'permanent' });
}

/** Streams one manifest file from line `from`; commits every `pageSize` rows or PAGE_BYTES. */
async function importFile(
  s: SyncContext,
  f: ManifestFile,
  index: number,
  from: number,
  manifest: Manifest,
  jobId: number,
  o: BulkOptions,
  commit: (rows: RawRow[], nextLine: number) => Promise<boolean>,
): Promise<number | undefined> {
  const withToken = manifest.requiresAccessToken;
  // with the token: the server's own origin only; without (presigned storage): any https origin, never clear text
  const url = withToken ? sameOrigin(f.url, s.baseUrl, 'export file URL') : checkEndpointUrl(f.url, 'an export file URL').toString();
  const res = await s.http.request({ url, anonymous: !withToken, headers: { accept: 'application/fhir+ndjson' }, signal: s.signal });
  let rows: RawRow[] = [];
  let bytes = 0;
  let count = 0;
  let last = from - 1;
  for await (const line of ndjsonLines(res.stream(), o.maxLineBytes)) {
    if (line.n < from) continue;
    last = line.n;
    if (f.kind === 'error') {
      if (line.text) s.outcome(outcomeCodes(safeParse(line.text)));
      continue;
    }
    // the job in the key: another export's bad line at the same place is a dead letter of its own
    const pk = `line/${jobId}/${index}/${line.n}`;
    if (line.text === undefined) rows.push(unreadableRow(pk, `a line longer than ${o.maxLineBytes} bytes`, undefined));
    else {
      bytes += line.text.length;
      const v = safeParse(line.text);
      if (f.kind === 'deleted') rows.push(...deletesOf(v, pk, line.text, s.sourceId, manifest.transactionTime));
      else {
        const type = (v as R | undefined)?.resourceType;
        rows.push(
          resourceRow(v, typeof type === 'string' ? `${s.sourceId}/${type}` : undefined) ??
            unreadableRow(pk, 'a line that is not a resource with an id', line.text),
        );
      }
    }
    if (rows.length >= s.pageSize || bytes >= PAGE_BYTES) {
      count += rows.length;
      const page = rows;
      rows = [];
      bytes = 0;
      if (!(await commit(page, last + 1))) return undefined;
    }
  }
  if (rows.length || last >= from) {
    count += rows.length;
    if (!(await commit(rows, last + 1))) return undefined;
  }
  return count;
}

/**
 * A `deleted` line: a Bundle whose entries' `request` is `DELETE <Type>/<id>` (Bulk Data IG,
 * "deleted"). The deletion's time is the Bundle's `meta.lastUpdated` where the server gives one,
 * else the export's `transactionTime` (it happened before then, after `_since`).
 */
function deletesOf(v: unknown, pk: string, text: string, sourceId: string, transactionTime: string): RawRow[] {
  const b = v as R | undefined;
  const stamped = (b?.meta as R | undefined)?.lastUpdated;
  const at = typeof stamped === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(stamped) ? stamped : transactionTime;
  const out: RawRow[] = [];
  for (const e of Array.isArray(b?.entry) ? (b.entry as R[]) : []) {
    const req = e.request as R | undefined;
    const m = typeof req?.url === 'string' ? /^(?:.*\/)?([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/.*)?$/.exec(req.url) : null;
    if (req?.method === 'DELETE' && m) out.push(deletedRow(m[1], m[2], at, `${sourceId}/${m[1]}`));
  }
  return out.length ? out : [unreadableRow(pk, 'a deleted-resources line without DELETE entries', text)];
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function cancel(s: SyncContext, status: string): Promise<void> {
  try {
    const r = await s.http.request({ method: 'DELETE', url: status, accept: [202, 404, 410], signal: s.signal });
    await r.stream().cancel();
  } catch (e) {
    s.logger.debug(
      { code: (e as { code?: string }).code },
      'the export job could not be deleted on the server (it expires there by itself)',
    );
  }
}
