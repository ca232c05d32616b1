/**
 * The FHIR bench's baseline, run in its own process as the gateway is (so the test server in the
 * bench process and this reader each have a core): the same resources read from the same server
 * with nothing done to them but `JSON.parse`.
 *
 * - `bulk`: kick-off, status polled honouring Retry-After, every NDJSON file downloaded and each
 *   line parsed (the gateway's bulk job, minus mapping, validation, sealing, commits and relay);
 * - `paging`: `GET [base]/Patient?_count=N`, then every next link, each Bundle parsed whole.
 *
 * `FHIR_BASE`, `FHIR_TOKEN` (a bearer token), `FHIR_MODE` (`bulk` | `paging`), `FHIR_COUNT`
 * (paging only) come from the environment; one JSON line of figures goes to stdout.
 */
import { readFileSync } from 'node:fs';

export interface BaselineResult {
  resources: number;
  /** The whole job: from the first request until the last resource was parsed. */
  jobMs: number;
  /** Bulk: the file downloads and their parsing only (after the manifest came). Paging: the same as jobMs. */
  readMs: number;
  bytes: number;
  peakRssMiB: number;
}

const base = process.env.FHIR_BASE ?? '';
const headers = { authorization: `Bearer ${process.env.FHIR_TOKEN ?? ''}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bulk(): Promise<BaselineResult> {
  const t0 = performance.now();
  const kick = await fetch(`${base}/$export?_type=Patient`, {
    headers: { ...headers, accept: 'application/fhir+json', prefer: 'respond-async' },
  });
  await kick.body?.cancel();
  const status = kick.headers.get('content-location');
  if (kick.status !== 202 || !status) throw new Error(`kick-off answered ${kick.status}`);
  let manifest: { output: { url: string }[] } | undefined;
  for (let polls = 0; !manifest; polls++) {
    if (polls > 120) throw new Error('the export was not ready after 120 polls');
    const r = await fetch(status, { headers: { ...headers, accept: 'application/json' } });
    if (r.status === 202) {
      await r.body?.cancel();
      await sleep(Number(r.headers.get('retry-after') ?? 1) * 1000);
    } else if (r.status === 200) manifest = (await r.json()) as { output: { url: string }[] };
    else throw new Error(`status answered ${r.status}`);
  }
  const t1 = performance.now();
  let resources = 0;
  let bytes = 0;
  for (const f of manifest.output) {
    const r = await fetch(f.url, { headers: { ...headers, accept: 'application/fhir+ndjson' } });
    if (!r.ok || !r.body) throw new Error(`file answered ${r.status}`);
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of r.body) {
      bytes += chunk.byteLength;
      const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        JSON.parse(line);
        resources++;
      }
    }
    if (rest !== '') {
      JSON.parse(rest);
      resources++;
    }
  }
  await fetch(status, { method: 'DELETE', headers }).then((r) => r.body?.cancel());
  const t2 = performance.now();
  return { resources, jobMs: t2 - t0, readMs: t2 - t1, bytes, peakRssMiB: peakRss() };
}

async function paging(): Promise<BaselineResult> {
  const t0 = performance.now();
  let url: string | undefined = `${base}/Patient?_count=${process.env.FHIR_COUNT ?? 100}`;
  let resources = 0;
  let bytes = 0;
  while (url) {
    const r = await fetch(url, { headers: { ...headers, accept: 'application/fhir+json' } });
    if (!r.ok) throw new Error(`search answered ${r.status}`);
    const text = await r.text();
    bytes += Buffer.byteLength(text);
    const b = JSON.parse(text) as { entry?: unknown[]; link?: { relation: string; url: string }[] };
    resources += b.entry?.length ?? 0;
    url = b.link?.find((l) => l.relation === 'next')?.url;
  }
  const ms = performance.now() - t0;
  return { resources, jobMs: ms, readMs: ms, bytes, peakRssMiB: peakRss() };
}

function peakRss(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

const mode = process.env.FHIR_MODE;
(mode === 'bulk' ? bulk() : mode === 'paging' ? paging() : Promise.reject(new Error(`FHIR_MODE ${mode}`))).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`fhir baseline failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
