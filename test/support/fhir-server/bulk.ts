/**
 * Bulk Data Access IG v2 (FHIR `$export`, the asynchronous request pattern):
 * - kick-off `GET [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export` needs
 *   `Prefer: respond-async` (400 without it) and takes `_type`, `_since` and `_outputFormat`
 *   (ndjson); it answers 202 with `Content-Location`, the status URL. A level the vendor does not
 *   offer is refused with an OperationOutcome (400 `not-supported`); athenahealth offers none.
 * - the status URL answers 202 with `X-Progress` and `Retry-After` for the configured number of
 *   polls, then 200 with the manifest: `transactionTime`, `request`, `requiresAccessToken`,
 *   `output` [{type, url, count}], `deleted` (only with `_since`: NDJSON of Bundles whose entries
 *   have request.method DELETE), `error` (OperationOutcome NDJSON, for `_type`s refused under
 *   `Prefer: handling=lenient`). DELETE on it cancels the job (202), after which it is 404.
 * - file URLs need the bearer token when requiresAccessToken; each file holds at most N resources.
 * The export is a snapshot taken at kick-off (transactionTime): later changes are not in it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cutIntoFiles, type ExportFile, type Segment, streamFile } from './bulk-files.ts';
import { FhirHttpError, operationOutcome, sendJson } from './http-util.ts';
import { PATIENT_REFERENCES, patientIdsOf } from './search-params.ts';
import { scopesAllow } from './smart-auth.ts';
import type { FhirStore, StoredVersion } from './store.ts';
import { syntheticLowerBound } from './synthetic.ts';
import type { BulkOptions } from './types.ts';
import { servesType, type VendorProfile } from './vendors.ts';

export type ExportLevel = 'system' | 'patient' | 'group';

interface Job {
  id: string;
  request: string;
  transactionTime: string;
  polls: number;
  output: ExportFile[];
  deleted: ExportFile[];
  error: ExportFile[];
}

export interface BulkContext {
  store: FhirStore;
  profile: VendorProfile;
  baseUrl: string;
  options: Required<BulkOptions>;
  requiresAccessToken: boolean;
}

export interface Bulk {
  kickOff(
    req: IncomingMessage,
    res: ServerResponse,
    level: ExportLevel,
    groupId: string | undefined,
    url: URL,
    scopes: string[] | undefined,
  ): void;
  status(res: ServerResponse, jobId: string, method: string): void;
  download(res: ServerResponse, jobId: string, fileName: string): Promise<void>;
  /** Jobs not cancelled. */
  jobCount(): number;
}

const KNOWN_PARAMS = new Set(['_type', '_since', '_outputFormat']);
const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);

export function createBulk(c: BulkContext): Bulk {
  const jobs = new Map<string, Job>();

  const exportTypes = (level: ExportLevel): string[] => {
    const served = c.store.types().filter((t) => servesType(c.profile, t));
    return level === 'system' ? served : served.filter((t) => t === 'Patient' || PATIENT_REFERENCES[t] !== undefined);
  };

  return {
    jobCount: () => jobs.size,
    kickOff: (req, res, level, groupId, url, scopes) => {
      if (!c.profile.bulk[level]) throw new FhirHttpError(400, 'not-supported', `${level}-level $export is not supported by this server`);
      const prefer = String(req.headers.prefer ?? '')
        .split(/[,;]/)
        .map((s) => s.trim().toLowerCase());
      if (!prefer.includes('respond-async')) throw new FhirHttpError(400, 'invalid', '$export needs Prefer: respond-async');
      const lenient = prefer.includes('handling=lenient');
      const q = url.searchParams;
      for (const name of q.keys()) {
        if (!KNOWN_PARAMS.has(name) && !lenient)
          throw new FhirHttpError(400, 'not-supported', `$export parameter ${name} is not supported`);
      }
      const format = q.get('_outputFormat');
      if (format !== null && !NDJSON_FORMATS.has(format)) throw new FhirHttpError(400, 'not-supported', '_outputFormat must be ndjson');
      const sinceText = q.get('_since');
      const sinceMs = sinceText === null ? undefined : Date.parse(sinceText.replace(' ', '+'));
      if (Number.isNaN(sinceMs)) throw new FhirHttpError(400, 'invalid', '_since must be an instant');

      let members: Set<string> | undefined;
      if (level === 'group') {
        const group = c.store.get('Group', String(groupId));
        const fromSynthetic = c.store.synthetic('Patient').some((s) => s.groups?.includes(String(groupId)));
        if (!group && !fromSynthetic) throw new FhirHttpError(404, 'not-found', `Group/${groupId} is not known`);
        members = new Set(
          ((group?.member as { entity?: { reference?: string } }[] | undefined) ?? []).flatMap((m) => {
            const id = /(?:^|\/)Patient\/([^/]+)$/.exec(m.entity?.reference ?? '')?.[1];
            return id ? [id] : [];
          }),
        );
      }
      const available = exportTypes(level);
      const requested = q.getAll('_type').flatMap((t) => t.split(',').filter(Boolean));
      const errors: unknown[] = [];
      for (const t of requested) {
        if (available.includes(t) || (servesType(c.profile, t) && /^[A-Z][A-Za-z]+$/.test(t))) continue;
        if (!lenient) throw new FhirHttpError(400, 'not-supported', `_type ${t} cannot be exported`);
        errors.push(operationOutcome('not-supported', `_type ${t} cannot be exported`));
      }
      const types = (requested.length > 0 ? available.filter((t) => requested.includes(t)) : available).filter(
        (t) => scopes === undefined || scopesAllow(scopes, t, 'read'),
      );

      const id = randomUUID();
      const max = c.options.maxResourcesPerFile;
      const inGroup = (v: StoredVersion, r = v.resource) =>
        members === undefined || (r !== null && (v.type === 'Patient' ? members.has(v.id) : patientIdsOf(r).some((p) => members.has(p))));
      const output = types.flatMap((type) => {
        const stored = c.store.live(type).filter((v) => (sinceMs === undefined || v.lastUpdatedMs > sinceMs) && inGroup(v));
        const segments: Segment[] = [{ kind: 'stored', items: stored }];
        for (const s of c.store.synthetic(type)) {
          if (level === 'group' && !s.groups?.includes(String(groupId))) continue;
          const from = sinceMs === undefined ? 0 : syntheticLowerBound(s, sinceMs, true);
          segments.push({ kind: 'synthetic', source: s, from, to: s.count });
        }
        return cutIntoFiles(type, type, segments, max);
      });
      const deletedLines =
        sinceMs === undefined
          ? []
          : types.flatMap((type) =>
              c.store
                .deletedSince(type, sinceMs)
                .filter((v) => inGroup(v, c.store.version(type, v.id, v.versionId - 1)?.resource ?? null))
                .map((v) => ({
                  resourceType: 'Bundle',
                  type: 'transaction',
                  entry: [{ request: { method: 'DELETE', url: `${type}/${v.id}` } }],
                })),
            );
      jobs.set(id, {
        id,
        request: url.href,
        transactionTime: new Date(c.store.now()).toISOString(),
        polls: 0,
        output,
        deleted: sinceMs === undefined ? [] : cutIntoFiles('deleted', 'Bundle', [{ kind: 'lines', lines: deletedLines }], max),
        error: cutIntoFiles('error', 'OperationOutcome', [{ kind: 'lines', lines: errors }], max),
      });
      sendJson(res, 202, operationOutcome('processing', 'export accepted', 'information'), {
        'Content-Location': `${c.baseUrl}/bulkstatus/${id}`,
      });
    },

    status: (res, jobId, method) => {
      const job = jobs.get(jobId);
      if (!job) throw new FhirHttpError(404, 'not-found', 'no such export job');
      if (method === 'DELETE') {
        jobs.delete(jobId);
        sendJson(res, 202, operationOutcome('processing', 'export job deleted', 'information'));
        return;
      }
      job.polls++;
      if (job.polls <= c.options.pollsBeforeReady) {
        res.writeHead(202, {
          'X-Progress': `in progress (poll ${job.polls} of ${c.options.pollsBeforeReady})`,
          'Retry-After': String(c.options.retryAfterSeconds),
        });
        res.end();
        return;
      }
      const link = (f: ExportFile) => ({ type: f.type, url: `${c.baseUrl}/bulkfiles/${job.id}/${f.name}`, count: f.to - f.from });
      sendJson(
        res,
        200,
        {
          transactionTime: job.transactionTime,
          request: job.request,
          requiresAccessToken: c.requiresAccessToken,
          output: job.output.map(link),
          ...(job.deleted.length > 0 || new URL(job.request).searchParams.has('_since') ? { deleted: job.deleted.map(link) } : {}),
          error: job.error.map(link),
        },
        {},
        'application/json',
      );
    },

    download: async (res, jobId, fileName) => {
      const job = jobs.get(jobId);
      const file =
        job && job.polls > c.options.pollsBeforeReady
          ? [...job.output, ...job.deleted, ...job.error].find((f) => f.name === fileName)
          : undefined;
      if (!file) throw new FhirHttpError(404, 'not-found', 'no such export file');
      await streamFile(res, file);
    },
  };
}
