/**
 * Bulk Data export (FHIR Bulk Data Access IG v2): the resources a source syncs in bulk, exported
 * by one job at a time and imported in bounded memory.
 *
 * The job's life, every step kept in the cursor (`<id>/$export`) so a restart goes on where it was:
 * 1. kick-off: `GET [base]/$export` (or `Patient/$export`, `Group/[id]/$export`) with
 *    `Prefer: respond-async`, `_type` and `_since`; the server answers `202` with the status URL in
 *    `Content-Location`, which is committed before anything else is done (no second job on restart);
 * 2. status: polled honouring `Retry-After` (and showing `X-Progress`) until `200` and its manifest
 *    (`transactionTime`, `requiresAccessToken`, `output`, `deleted`, `error`), which is committed;
 * 3. files: each NDJSON file streamed line by line, a page of resources committed with the file and
 *    line after it; a restart re-reads the file and skips to that line. `deleted` files (Bundles of
 *    `DELETE` entries) become delete records; `error` files' OperationOutcomes are counted;
 * 4. done: the next run's `_since` is the manifest's `transactionTime`; the job is deleted on the
 *    server (`DELETE` on the status URL) so it can free the files.
 * A job past `maxWaitMinutes`, or one the server fails, is cancelled and the next cycle starts anew.
 */
import type { FhirResourceName } from '../../config/fhir-schema.ts';
import type { RawRow } from '../contracts.ts';
import { ApiError, outcomeCodes, safeUrl } from '../http/http-error.ts';
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

export interface BulkCursor {
  since?: string;
  finishedAt?: number;
  job?: {
    status: string;
    kickedOffAt: number;
    manifest?: { transactionTime: string; requiresAccessToken: boolean; files: ManifestFile[] };
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

export const bulkCursorKey = (sourceId: string) => `${sourceId}/$export`;

export function readBulkCursor(s: Pick<SyncContext, 'cursor' | 'sourceId'>): BulkCursor {
  const t = s.cursor(bulkCursorKey(s.sourceId));
  return t ? (JSON.parse(t) as BulkCursor) : {};
}

/** Whether an export is due: one under way, none done yet, or the interval passed since the last. */
export function bulkDue(c: BulkCursor, o: BulkOptions, now: number): boolean {
  return c.job !== undefined || c.finishedAt === undefined || now - c.finishedAt >= o.intervalMinutes * 60_000;
}

function kickOffUrl(s: SyncContext, types: readonly string[], since: string | undefined, o: BulkOptions): string {
  const path =
    o.level === 'group' ? `Group/${encodeURIComponent(o.groupId)}/$export` : o.level === 'patient' ? 'Patient/$export' : '$export';
  const q = new URLSearchParams({ _type: types.join(',') });
  if (since) q.set('_since', since);
  return `${s.baseUrl}/${path}?${q.toString()}`;
}

/** Runs (or resumes) one export of `types`. Returns the resources committed, or undefined when stopped. */
export async function bulkRun(s: SyncContext, types: readonly FhirResourceName[], o: BulkOptions): Promise<number | undefined> {
  const key = bulkCursorKey(s.sourceId);
  let c = readBulkCursor(s);
  const save = async (next: BulkCursor, rows: RawRow[] = [], stream = key) => {
    const ok = await s.commit(stream, rows, { key, value: JSON.stringify(next) });
    if (ok) c = next;
    return ok;
  };

  if (!c.job) {
    const res = await s.http.request({
      url: kickOffUrl(s, types, c.since, o),
      headers: { accept: 'application/fhir+json', prefer: 'respond-async' },
      accept: [202],
      signal: s.signal,
    });
    const loc = res.headers.get('content-location');
    await res.stream().cancel();
    if (res.status !== 202 || !loc)
      throw new ApiError('GW_FHIR_BULK_FAILED', `the export kick-off answered ${res.status} without a status URL`, { status: res.status });
    const status = sameOrigin(loc, s.baseUrl, 'export status URL');
    if (!(await save({ ...c, job: { status, kickedOffAt: s.clock.now(), file: 0, line: 0 } }))) return undefined;
    s.logger.info({ types: types.join(','), since: c.since ?? 'all', status: safeUrl(status) }, 'bulk export started');
  }

  let job = c.job!;
  while (!job.manifest) {
    if (s.signal.aborted) return undefined;
    if (s.clock.now() - job.kickedOffAt > o.maxWaitMinutes * 60_000) {
      await cancel(s, job.status);
      await save({ since: c.since, finishedAt: c.finishedAt });
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
      const progress = (res.headers.get('x-progress') ?? 'in progress').replace(/[^\w %.,:/()-]/g, '').slice(0, 60);
      s.note('bulk.state', `exporting: ${progress}`);
      const wait = Math.min(retryAfterMs(res.headers.get('retry-after'), s.clock.now()) ?? 10_000, 300_000);
      if (!(await sleep(s, Math.max(1000, wait)))) return undefined;
      continue;
    }
    if (res.status === 404 || res.status === 410) {
      // the server forgot the job (it expired): start a new one next cycle, from the same _since
      await res.stream().cancel();
      await save({ since: c.since, finishedAt: c.finishedAt });
      throw new ApiError('GW_FHIR_BULK_FAILED', `the export's status URL answered ${res.status}; a new export starts next cycle`, {
        status: res.status,
        retry: 'transient',
      });
    }
    const m = (await res.json()) as R | undefined;
    const files: ManifestFile[] = [];
    for (const kind of ['output', 'deleted', 'error'] as const)
      for (const f of Array.isArray(m?.[kind]) ? (m[kind] as R[]) : [])
        if (typeof f.url === 'string') files.push({ kind, type: String(f.type ?? ''), url: f.url });
    const transactionTime = typeof m?.transactionTime === 'string' ? m.transactionTime : new Date(job.kickedOffAt).toISOString();
    job = { ...job, manifest: { transactionTime, requiresAccessToken: m?.requiresAccessToken === true, files }, file: 0, line: 0 };
    if (!(await save({ ...c, job }))) return undefined;
    s.logger.info({ files: files.length, transactionTime }, 'bulk export ready; importing its files');
  }

  const manifest = job.manifest!;
  let imported = 0;
  for (let i = job.file; i < manifest.files.length; i++) {
    const f = manifest.files[i];
    s.note('bulk.state', `importing file ${i + 1} of ${manifest.files.length}`);
    const n = await importFile(s, f, i, i === job.file ? job.line : 0, manifest, o, async (rows, line) => {
      job = { ...job, file: i, line };
      return save({ ...c, job }, rows, `${s.sourceId}/${f.kind === 'output' ? f.type : 'deleted'}`);
    });
    if (n === undefined) return undefined;
    imported += n;
    job = { ...job, file: i + 1, line: 0 };
    if (!(await save({ ...c, job }))) return undefined;
  }
  await cancel(s, job.status);
  if (!(await save({ since: manifest.transactionTime, finishedAt: s.clock.now() }))) return undefined;
  s.note('bulk.state', 'idle');
  s.note('bulk.lastExportAt', manifest.transactionTime);
  return imported;
}

/** Streams one manifest file from line `from`; commits every `pageSize` rows. */
async function importFile(
  s: SyncContext,
  f: ManifestFile,
  index: number,
  from: number,
  manifest: { transactionTime: string; requiresAccessToken: boolean },
  o: BulkOptions,
  commit: (rows: RawRow[], nextLine: number) => Promise<boolean>,
): Promise<number | undefined> {
  const withToken = manifest.requiresAccessToken;
  const url = withToken ? sameOrigin(f.url, s.baseUrl, 'export file URL') : f.url;
  const res = await s.http.request({ url, anonymous: !withToken, headers: { accept: 'application/fhir+ndjson' }, signal: s.signal });
  let rows: RawRow[] = [];
  let count = 0;
  let last = from - 1;
  for await (const line of ndjsonLines(res.stream(), o.maxLineBytes)) {
    if (line.n < from) continue;
    last = line.n;
    if (f.kind === 'error') {
      if (line.text) s.outcome(outcomeCodes(safeParse(line.text)));
      continue;
    }
    const pk = `line/${index}/${line.n}`;
    if (line.text === undefined) rows.push(unreadableRow(pk, `a line longer than ${o.maxLineBytes} bytes`, undefined));
    else {
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
    if (rows.length >= s.pageSize) {
      count += rows.length;
      const page = rows;
      rows = [];
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

function sleep(s: SyncContext, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.signal.aborted) return resolve(false);
    const t = s.clock.setTimeout(() => {
      s.signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      s.clock.clearTimeout(t);
      resolve(false);
    };
    s.signal.addEventListener('abort', onAbort, { once: true });
  });
}
