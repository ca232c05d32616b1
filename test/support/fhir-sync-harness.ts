/**
 * A FHIR source driven by hand for sync tests: the test FHIR server, the source on a manual
 * clock, and a context that commits like the outbox (a page's rows and its cursor together; a row
 * whose content hash it has seen writes nothing). `refuseAfter(n)` makes every commit after the
 * n-th answer "outbox full" (nothing committed, the cursor stays), so a test can stop the source
 * there and start another on the same cursors — a crash at a known page.
 */
import pino from 'pino';
import type { DraftRecord, IntakeContext, PageIntakeResult, RawPage } from '../../adapters/contracts.ts';
import { createFhirSource, type FhirSource, type FhirSourceOptions } from '../../adapters/fhir/fhir-source.ts';
import { createManualClock, type ManualClock } from '../../gateway/clock.ts';
import { gatewayFhirKeys } from './fhir-gateway.ts';
import { startFhirServer, type FhirServer, type FhirServerOptions } from './fhir-server/index.ts';

export const SYNC_CLIENT = 'ewml-sync';

export interface OutboxLike {
  ctx: IntakeContext;
  cursors: Map<string, string>;
  records: DraftRecord[];
  /** Pages committed, in order (refused ones are not here). */
  pages: RawPage[];
  /** Commits after the n-th (counting from now) are refused as "outbox full"; undefined accepts again. */
  refuseAfter(n: number | undefined): void;
  refused(): number;
}

export function outboxLike(): OutboxLike {
  const cursors = new Map<string, string>();
  const hashes = new Map<string, string>();
  const records: DraftRecord[] = [];
  const pages: RawPage[] = [];
  let budget: number | undefined;
  let refused = 0;
  const ctx: IntakeContext = {
    logger: pino({ level: 'silent' }),
    cursor: (k) => cursors.get(k),
    knownRows: () => [],
    intake: async () => ({ status: 'accepted', recordIds: [] }),
    async intakePage(page): Promise<PageIntakeResult> {
      if (budget !== undefined && budget <= 0) {
        refused++;
        return { status: 'rejected', code: 'GW_OUTBOX_FULL', retry: 'transient', reason: 'outbox full' };
      }
      if (budget !== undefined) budget--;
      pages.push(page);
      let written = 0;
      let unchanged = 0;
      for (const row of page.rows) {
        const key = `${row.stream ?? page.stream}|${row.pk}`;
        if (hashes.get(key) === row.hash) {
          unchanged++;
          continue;
        }
        hashes.set(key, row.hash!);
        records.push(...page.map(row).records);
        written++;
      }
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { status: 'accepted', written, unchanged, deadLettered: 0 };
    },
  };
  return {
    ctx,
    cursors,
    records,
    pages,
    refuseAfter: (n) => {
      budget = n;
    },
    refused: () => refused,
  };
}

const open: Array<() => Promise<void>> = [];
/** Stops every source and server the tests of a file set up (an afterEach). */
export async function closeAll(): Promise<void> {
  for (const f of open.splice(0).reverse()) await f();
}

export interface SyncSetup {
  fhir: FhirServer;
  clock: ManualClock;
  source: FhirSource;
  box: OutboxLike;
  /** Another source on the same server, keys, clock and cursors (the gateway after a restart), with other options if given. */
  restart(over?: Partial<FhirSourceOptions>): FhirSource;
}

/** `sameClock`: the server keeps time by the test's manual clock too (its quotas and token expiry move with it). */
export async function setupSync(server: FhirServerOptions, over: Partial<FhirSourceOptions> = {}, sameClock = false): Promise<SyncSetup> {
  const keys = await gatewayFhirKeys('sync', 'ES384');
  const clock = createManualClock(Date.now());
  const fhir = await startFhirServer({
    ...server,
    clients: [{ clientId: SYNC_CLIENT, jwks: keys.jwks }],
    ...(sameClock ? { clock: () => clock.now() } : {}),
  });
  const make = (more: Partial<FhirSourceOptions> = {}) => {
    const s = createFhirSource({
      id: 'sync',
      vendor: 'generic',
      baseUrl: fhir.baseUrl,
      clientId: SYNC_CLIENT,
      resources: ['Patient'],
      system: 'SYNC',
      tokenUrl: '',
      scope: '',
      keyAlg: 'ES384',
      jwksUrl: '',
      pollIntervalMs: 60_000,
      overlapSeconds: 0,
      dateWindowDays: 30,
      bulk: { mode: 'never', groupId: '', intervalMinutes: 60, maxWaitMinutes: 60 },
      rateLimit: {},
      timeoutMs: 5000,
      secrets: keys.secrets,
      clock,
      ...(sameClock ? { wallNow: () => clock.now() } : {}),
      ...over,
      ...more,
    });
    open.push(() => s.stop());
    return s;
  };
  const source = make();
  open.unshift(() => fhir.stop());
  return { fhir, clock, source, box: outboxLike(), restart: make };
}

/** Moves the manual clock in steps until `cond` holds (the source's waits are on it), bounded. */
export async function until(clock: ManualClock, cond: () => boolean, what: string, stepMs = 1000, maxSteps = 400): Promise<void> {
  for (let i = 0; i < maxSteps; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
    clock.advance(stepMs);
  }
  throw new Error(`not reached: ${what}`);
}
