/**
 * One FHIR client library doing one job, in a process of its own (test/bench/fhir-clients.ts
 * starts it): so that each client's memory is its own and the module it loads is the only thing
 * loaded besides Node. The libraries are imported from the file URL the parent resolved
 * (`FHIR_CLIENT_MODULE`): the repo has only @medplum/core, the others come from a scratch folder.
 *
 * Jobs: `paging` (a search followed to its end, the library's own way of following next links),
 * `ndjson` (one Bulk NDJSON file read and each line parsed, streamed if the library can),
 * `faults` (two searches, the second of which the server answers with a fault), `auth`
 * (SMART Backend Services: client_credentials with a signed JWT assertion, then one search).
 * One JSON line of results goes to stdout.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type CryptoKey, importJWK, type JWK, SignJWT } from 'jose';
import { createHttpClient } from '../../adapters/http/http-client.ts';
import { ndjsonLines } from '../../adapters/http/ndjson-lines.ts';
import { createSmartBackendAuth } from '../../adapters/http/smart-backend.ts';
import { systemClock } from '../../gateway/clock.ts';

export const CLIENTS = ['own-fetch', 'fhir-kit-client', 'fhirclient', '@medplum/core'] as const;
export type ClientName = (typeof CLIENTS)[number];
export const JOBS = ['paging', 'ndjson', 'faults', 'auth'] as const;
export type Job = (typeof JOBS)[number];

export interface ProbeResult {
  client: ClientName;
  job: Job;
  /** What the library was asked to do, in its own words (the API used). */
  how: string;
  ok: boolean;
  /** Resources read (paging, ndjson). */
  resources?: number;
  ms?: number;
  /** Per call of `faults`: 'ok' or the error the library gave. */
  calls?: string[];
  /** Whether the NDJSON body came as a stream the caller could read line by line. */
  streamed?: boolean;
  error?: string;
  /** VmHWM of this process once the library was imported, before the job. */
  idleRssMiB: number;
  peakRssMiB: number;
  /** The largest `heapUsed` sampled every 5 ms during the job. */
  peakHeapMiB: number;
}

interface Bundle {
  entry?: { resource?: unknown }[];
  link?: { relation: string; url: string }[];
}

const env = (k: string) => process.env[k] ?? '';
const base = env('FHIR_BASE');
const token = env('FHIR_TOKEN');
const nextOf = (b: Bundle) => b.link?.find((l) => l.relation === 'next')?.url;
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const brief = (e: unknown) => {
  const x = e as { status?: number; response?: { status?: number }; message?: string };
  const status = x.status ?? x.response?.status;
  const text = String(x.message ?? e);
  return `${status && !text.startsWith('HTTP') ? `HTTP ${status}: ` : ''}${text.split('\n')[0].slice(0, 120)}`;
};

/** Counts the lines of an NDJSON text read whole, parsing each. */
function parseWhole(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    JSON.parse(line);
    n++;
  }
  return n;
}

/** Counts the lines of a stream of chunks, parsing each as it completes. */
async function parseChunks(chunks: AsyncIterable<Uint8Array | string>): Promise<number> {
  const decoder = new TextDecoder();
  let rest = '';
  let n = 0;
  for await (const c of chunks) {
    const lines = (rest + (typeof c === 'string' ? c : decoder.decode(c, { stream: true }))).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') continue;
      JSON.parse(line);
      n++;
    }
  }
  return rest === '' ? n : n + parseWhole(rest);
}

async function signedAssertion(): Promise<string> {
  const jwk = JSON.parse(env('FHIR_CLIENT_JWK')) as JWK;
  const key = await importJWK(jwk, 'ES384');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES384', kid: String(jwk.kid), typ: 'JWT' })
    .setIssuer(env('FHIR_CLIENT_ID'))
    .setSubject(env('FHIR_CLIENT_ID'))
    .setAudience(env('FHIR_TOKEN_URL'))
    .setExpirationTime(now + 240)
    .setJti(randomUUID())
    .sign(key);
}

type Runner = (job: Job) => Promise<Omit<ProbeResult, 'client' | 'job' | 'idleRssMiB' | 'peakRssMiB' | 'peakHeapMiB'>>;

/** The gateway's own client (adapters/http/http-client.ts on Node's fetch). */
async function ownFetch(): Promise<Runner> {
  const http = createHttpClient({ clock: systemClock, auth: { header: async () => `Bearer ${token}`, invalidate: () => undefined } });
  return async (job) => {
    if (job === 'paging') {
      let n = 0;
      for (let url: string | undefined = `${base}/Patient?_count=100`; url; ) {
        const b = (await http.getJson(url)) as Bundle;
        n += b.entry?.length ?? 0;
        url = nextOf(b);
      }
      return { how: 'getJson + next link', ok: true, resources: n };
    }
    if (job === 'ndjson') {
      const res = await http.request({ url: env('FHIR_FILE'), headers: { accept: 'application/fhir+ndjson' } });
      let n = 0;
      for await (const line of ndjsonLines(res.stream(), 1 << 20)) {
        JSON.parse(line.text!);
        n++;
      }
      return { how: 'request().stream() + ndjsonLines', ok: true, resources: n, streamed: true };
    }
    if (job === 'faults') {
      const calls: string[] = [];
      for (const c of [10, 11]) calls.push(await http.getJson(`${base}/Patient?_count=${c}`).then(() => 'ok', brief));
      return { how: 'getJson twice (maxAttempts 5, Retry-After honoured up to 120 s)', ok: calls.every((c) => c === 'ok'), calls };
    }
    const plain = createHttpClient({ clock: systemClock });
    const jwk = JSON.parse(env('FHIR_CLIENT_JWK')) as JWK;
    const key = {
      alg: 'ES384' as const,
      kid: String(jwk.kid),
      privateKey: (await importJWK(jwk, 'ES384')) as CryptoKey,
      jwks: { keys: [] },
    };
    const auth = createSmartBackendAuth({
      http: plain,
      clock: systemClock,
      clientId: env('FHIR_CLIENT_ID'),
      tokenUrl: env('FHIR_TOKEN_URL'),
      scope: 'system/Patient.rs',
      key,
    });
    const authed = createHttpClient({ clock: systemClock, auth });
    const b = (await authed.getJson(`${base}/Patient?_count=5`)) as Bundle;
    return { how: 'createSmartBackendAuth (signs its own assertion)', ok: (b.entry?.length ?? 0) === 5 };
  };
}

interface FkcClient {
  search(o: { resourceType: string; searchParams: Record<string, string | number> }): Promise<Bundle>;
  nextPage(o: { bundle: Bundle }): Promise<Bundle> | undefined;
  request(url: string, o?: { options?: { headers?: Record<string, string> } }): Promise<unknown>;
}

async function fhirKitClient(url: string): Promise<Runner> {
  const { Client } = (await import(url)) as { Client: new (o: { baseUrl: string; bearerToken?: string }) => FkcClient };
  const c = new Client({ baseUrl: base, bearerToken: token });
  return async (job) => {
    if (job === 'paging') {
      let n = 0;
      for (let b: Bundle | undefined = await c.search({ resourceType: 'Patient', searchParams: { _count: 100 } }); b; ) {
        n += b.entry?.length ?? 0;
        b = await c.nextPage({ bundle: b });
      }
      return { how: 'search + nextPage', ok: true, resources: n };
    }
    if (job === 'ndjson') {
      try {
        const body = await c.request(env('FHIR_FILE'), { options: { headers: { accept: 'application/fhir+ndjson' } } });
        return { how: 'request(file URL)', ok: false, streamed: false, error: `answered ${typeof body}` };
      } catch (e) {
        // it reads the body whole as text, then JSON.parse fails on the second line; the text rides in the error
        const data = (e as { response?: { data?: unknown } }).response?.data;
        const n = typeof data === 'string' ? parseWhole(data) : undefined;
        return {
          how: 'request(file URL): body read whole, JSON.parse of it throws; the text is in error.response.data, parsed from there',
          ok: n !== undefined,
          streamed: false,
          resources: n,
          error: brief(e),
        };
      }
    }
    if (job === 'faults') {
      const calls: string[] = [];
      for (const n of [10, 11])
        calls.push(await c.search({ resourceType: 'Patient', searchParams: { _count: n } }).then(() => 'ok', brief));
      return { how: 'search twice', ok: calls.every((x) => x === 'ok'), calls };
    }
    return { how: 'no token request in its API (smartAuthMetadata reads discovery; bearerToken is set by the caller)', ok: false };
  };
}

interface SmartClient {
  request(o: string | { url: string; headers?: Record<string, string> }, f?: Record<string, unknown>): Promise<unknown>;
}

async function fhirclient(url: string): Promise<Runner> {
  const smart = createRequire(import.meta.url)(fileURLToPath(url)) as (
    req: unknown,
    res: unknown,
  ) => { client(state: { serverUrl: string; tokenResponse: { access_token: string } }): SmartClient };
  const c = smart({ headers: {} }, {}).client({ serverUrl: base, tokenResponse: { access_token: token } });
  return async (job) => {
    if (job === 'paging') {
      let n = 0;
      await c.request('Patient?_count=100', {
        pageLimit: 0,
        onPage: (b: Bundle) => {
          n += b.entry?.length ?? 0;
        },
      });
      return { how: 'request(…, { pageLimit: 0, onPage })', ok: true, resources: n };
    }
    if (job === 'ndjson') {
      const body = await c.request({ url: env('FHIR_FILE'), headers: { accept: 'application/fhir+ndjson' } });
      if (typeof body === 'string') return { how: 'request(file URL)', ok: true, streamed: false, resources: parseWhole(body) };
      // a content type that is neither JSON nor text: the raw (node-fetch) Response comes back, its body a Node stream
      const stream = (body as { body: AsyncIterable<Uint8Array> }).body;
      return {
        how: 'request(file URL) gives the raw Response; its body streamed',
        ok: true,
        streamed: true,
        resources: await parseChunks(stream),
      };
    }
    if (job === 'faults') {
      const calls: string[] = [];
      for (const n of [10, 11]) calls.push(await c.request(`Patient?_count=${n}`).then(() => 'ok', brief));
      return { how: 'request twice', ok: calls.every((x) => x === 'ok'), calls };
    }
    return {
      how: 'no client_credentials request in its API (its JWT assertion is for the authorization-code exchange of a launch)',
      ok: false,
    };
  };
}

interface Medplum {
  setAccessToken(t: string): void;
  searchResourcePages(t: string, q: Record<string, string | number>): AsyncGenerator<unknown[]>;
  get(url: string): Promise<unknown>;
  search(t: string, q: Record<string, string | number>): Promise<Bundle>;
  download(url: string): Promise<Blob>;
  startJwtAssertionLogin(jwt: string): Promise<unknown>;
}

async function medplum(url: string): Promise<Runner> {
  const { MedplumClient } = (await import(url)) as { MedplumClient: new (o: Record<string, unknown>) => Medplum };
  const u = new URL(base);
  /** The form fields of each token request it sent, to say what it asked for. */
  const tokenForms: string[][] = [];
  const recording: typeof fetch = (input, init) => {
    if (String(input) === env('FHIR_TOKEN_URL')) tokenForms.push([...new URLSearchParams(String(init?.body ?? '')).keys()]);
    return fetch(input, init);
  };
  const make = () =>
    new MedplumClient({ baseUrl: `${u.origin}/`, fhirUrlPath: u.pathname.slice(1), tokenUrl: env('FHIR_TOKEN_URL'), fetch: recording });
  const m = make();
  m.setAccessToken(token);
  return async (job) => {
    if (job === 'paging') {
      let n = 0;
      try {
        for await (const page of m.searchResourcePages('Patient', { _count: 100 })) n += page.length;
        return { how: 'searchResourcePages', ok: true, resources: n };
      } catch (e) {
        // its pager re-issues the next link's query on the type endpoint; follow the links with get() instead
        const first = n;
        n = 0;
        for (let next: string | undefined = `${base}/Patient?_count=100`; next; ) {
          const b = (await m.get(next)) as Bundle;
          n += b.entry?.length ?? 0;
          next = nextOf(b);
        }
        return {
          how: `searchResourcePages failed after ${first} resources (${brief(e)}); get(next link) loop instead`,
          ok: true,
          resources: n,
        };
      }
    }
    if (job === 'ndjson') {
      const blob = await m.download(env('FHIR_FILE'));
      return { how: 'download(file URL) → Blob → text()', ok: true, streamed: false, resources: parseWhole(await blob.text()) };
    }
    if (job === 'faults') {
      const calls: string[] = [];
      for (const n of [10, 11]) calls.push(await m.search('Patient', { _count: n }).then(() => 'ok', brief));
      return { how: 'search twice (maxRetries 2, maxRetryTime 2 s)', ok: calls.every((x) => x === 'ok'), calls };
    }
    const fresh = make();
    try {
      await fresh.startJwtAssertionLogin(await signedAssertion());
      const b = await fresh.search('Patient', { _count: 5 });
      return { how: 'startJwtAssertionLogin(a JWT the caller signs)', ok: (b.entry?.length ?? 0) === 5 };
    } catch (e) {
      const sent = tokenForms[0]?.join(', ') ?? 'nothing';
      // the same request with a scope, through the method startJwtAssertionLogin calls (private in its types)
      const other = make() as unknown as { fetchTokens(form: Record<string, string>): Promise<unknown> } & Medplum;
      const withScope = await other
        .fetchTokens({
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await signedAssertion(),
          scope: 'system/Patient.rs',
        })
        .then(() => other.search('Patient', { _count: 5 }))
        .then(
          (b) => ((b.entry?.length ?? 0) === 5 ? 'works' : 'no resources'),
          (x: unknown) => `fails too (${brief(x)})`,
        );
      return {
        how: `startJwtAssertionLogin(a JWT the caller signs) sent ${sent} — no scope, which SMART Backend Services requires; with a scope added through its private fetchTokens it ${withScope}`,
        ok: false,
        error: brief(e),
      };
    }
  };
}

async function main(): Promise<void> {
  const client = process.argv[2] as ClientName;
  const job = process.argv[3] as Job;
  const url = env('FHIR_CLIENT_MODULE');
  const run =
    client === 'own-fetch'
      ? await ownFetch()
      : client === 'fhir-kit-client'
        ? await fhirKitClient(url)
        : client === 'fhirclient'
          ? await fhirclient(url)
          : await medplum(url);
  const idleRssMiB = hwm();
  let peakHeap = 0;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const t0 = performance.now();
  let r: Awaited<ReturnType<Runner>>;
  try {
    r = await run(job);
  } catch (e) {
    r = { how: 'threw', ok: false, error: brief(e) };
  }
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  const out: ProbeResult = { client, job, ms, ...r, idleRssMiB, peakRssMiB: hwm(), peakHeapMiB: peakHeap / 1048576 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  // keep-alive sockets some libraries leave open would hold the process up
  process.exit(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
