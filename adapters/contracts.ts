/**
 * The contracts every source adapter and mapper keeps (ARCHITECTURE.md "Contracts").
 *
 * A SourceAdapter hands raw input to `ctx.intake(raw)`; the promise resolves only after the records
 * are committed to the outbox (or the input is in the dead-letter store), and only then does the
 * adapter acknowledge its source. A Mapper is a pure, deterministic function from one parsed source
 * message to canonical records plus issues.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import type { Clock } from '../gateway/clock.ts';
import type { CanonicalRecord, RecordType } from './canonical/types.ts';

export const IntakeStatus = { accepted: 'accepted', duplicate: 'duplicate', ignored: 'ignored', rejected: 'rejected' } as const;
export type IntakeStatus = (typeof IntakeStatus)[keyof typeof IntakeStatus];

/** Where in the source message a problem is (HL7: segment, sequence, field, component). */
export interface SourceLocation {
  segment?: string;
  sequence?: number;
  field?: number;
  component?: number;
}

export interface IntakeRejection {
  /** A code from gateway/errors.ts (kept as string here: adapters don't import gateway internals). */
  code: string;
  retry: 'transient' | 'ambiguous' | 'permanent';
  /** Short, PHI-free reason. */
  reason: string;
  location?: SourceLocation;
  /** HL7 table 0357 error code for the ERR segment, where the adapter is HL7. */
  hl7ErrorCode?: string;
  /** The dead letter that keeps the input, if one was written. */
  deadLetterId?: string;
}

export type IntakeResult =
  | { status: 'accepted'; recordIds: string[] }
  | { status: 'duplicate' }
  | { status: 'ignored'; reason: string }
  | ({ status: 'rejected' } & IntakeRejection);

export interface RawInput<P = unknown> {
  /** Adapter instance id, e.g. `hl7v2`. */
  adapter: string;
  /** Format key the pipeline uses to find the codec, e.g. `hl7v2`. */
  format: string;
  /** The bytes as received (kept, sealed, in dead letters). */
  text: string;
  /** The already-parsed form, when the adapter had to parse to answer (saves a second parse). */
  parsed?: P;
}

/** One row of a polled source (a database row, a file's row), as read. */
export interface RawRow {
  /** The row's identity in its stream (JSON of its key value). */
  pk: string;
  data: Record<string, unknown>;
  /** Another stream than the page's (a tombstone marks its target's row deleted). */
  stream?: string;
  /** The row's content hash; computed from `data` when absent. */
  hash?: string;
}

/**
 * A page of rows from a polled source, with the cursor that comes after it. The pipeline maps
 * each row, and commits the changed rows' records (unchanged rows write nothing), the rows that
 * could not be mapped (as dead letters) and the cursor in one transaction.
 */
export interface RawPage {
  adapter: string;
  /** Format key for dead letters of rows that fail, e.g. `sql-row`. */
  format: string;
  stream: string;
  rows: RawRow[];
  map: (row: RawRow) => MapResult;
  cursor?: { key: string; value: string };
  /** Keep each row's content hash (to skip unchanged rows when read again). Default true; files, read once, say false. */
  trackRows?: boolean;
  /** The page is part of the source's first load: its records go in the backfill lane unless urgent (gateway/pipeline/record-lane.ts). */
  firstLoad?: boolean;
}

/** A polled source's row as its dead letter keeps it (`{stream, pk, data}`), for a replay after a mapping fix. */
export interface StoredRow {
  stream: string;
  pk: string;
  data: Record<string, unknown>;
}

export function parseStoredRow(text: string, what: string): StoredRow {
  let v: StoredRow;
  try {
    v = JSON.parse(text) as StoredRow;
  } catch {
    throw new CodecError(`not a stored ${what}`);
  }
  if (!v || typeof v.stream !== 'string' || typeof v.pk !== 'string' || !v.data || typeof v.data !== 'object')
    throw new CodecError(`not a stored ${what}`);
  return v;
}

export type PageIntakeResult =
  | { status: 'accepted'; written: number; unchanged: number; deadLettered: number }
  | { status: 'rejected'; code: string; retry: 'transient'; reason: string };

export interface IntakeContext {
  intake(raw: RawInput): Promise<IntakeResult>;
  /** Polled sources: a page of rows with its cursor (ARCHITECTURE rule 1: the cursor moves only with the commit). */
  intakePage(page: RawPage): Promise<PageIntakeResult>;
  /** The cursor committed under this key, if any. */
  cursor(key: string): string | undefined;
  /** Known live rows of a stream after `afterPk`, in pk order (to find deletes). */
  knownRows(stream: string, afterPk: string | undefined, limit: number): string[];
  logger: Logger;
  /** Polled sources ask it how long to wait after each cycle (gateway/poll-schedule.ts); absent: the configured interval. Use {@link pollWait}. */
  pollSchedule?: PollSchedule;
}

/** What a poller tells the schedule after one cycle. */
export interface PollCycle {
  /** The source's configured interval (`pollIntervalMs`): the answer when no agent sets a policy. */
  configuredMs: number;
  /** Rows or resources this cycle committed as changed (written, deleted, dead-lettered). */
  changes: number;
  /** Queries or calls the cycle made (absent: counted as one), for the sync agent's budgets. */
  requests?: number;
  /** A server's Retry-After: the wait is never shorter, whatever the schedule says. */
  serverMinMs?: number;
  /** The source's own sooner need (a bulk export's status check): the wait is not longer, unless a server asked for more. */
  soonerMs?: number;
}

export interface PollSchedule {
  /** How long to wait before the next cycle. */
  next(c: PollCycle): number;
}

/** The wait after a cycle: the schedule's answer (or the configured interval), capped by `soonerMs`, never under `serverMinMs`. */
export function pollWait(ctx: Pick<IntakeContext, 'pollSchedule'> | undefined, c: PollCycle): number {
  const asked = ctx?.pollSchedule ? ctx.pollSchedule.next(c) : c.configuredMs;
  const wait = Number.isFinite(asked) && asked >= 0 ? asked : c.configuredMs;
  return Math.max(Math.min(wait, c.soonerMs ?? Number.POSITIVE_INFINITY), c.serverMinMs ?? 0);
}

export interface AdapterHealth {
  status: 'up' | 'degraded' | 'down';
  detail?: Record<string, number | string | boolean>;
}

export interface SourceAdapter {
  readonly id: string;
  start(ctx: IntakeContext): Promise<void>;
  stop(): Promise<void>;
  health(): AdapterHealth;
}

/** An issue found while mapping: PHI-free, with a location. */
export interface MapIssue {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  location?: SourceLocation;
  hl7ErrorCode?: string;
}

/** What a mapper returns: records without the envelope fields the pipeline fills in. */
export interface MapResult {
  /** `unsupported` means: not a message kind this mapper maps (counted as ignored, not an error). */
  unsupported?: string;
  records: DraftRecord[];
  issues: MapIssue[];
}

/** A record as a mapper builds it; the pipeline adds tenant, practice, gateway, observedAt. */
export interface DraftRecord {
  id: string;
  type: RecordType;
  op: CanonicalRecord['op'];
  source: CanonicalRecord['source'];
  occurredAt: string;
  /** Records sharing a partition key are delivered in the order they were accepted (per patient). */
  partitionKey: string;
  data: Record<string, unknown>;
}

export interface MapContext {
  tenantId: string;
  practiceId: string;
  gatewayId: string;
}

export type Mapper<P> = (parsed: P, ctx: MapContext) => MapResult;

/**
 * A source format: how to parse it, spot resends, and map it. Its members are methods, so a codec
 * of one parsed form is a `SourceCodec<unknown>` in the pipeline's list: the pipeline only ever
 * hands a codec what that same codec's `parse` returned.
 */
export interface SourceCodec<P> {
  readonly format: string;
  /** Throws a CodecError when the input is not well-formed. */
  parse(text: string): P;
  /** A key that identifies one source message (HL7: MSH-3|MSH-4|MSH-10), for resend detection. */
  dedupeKey(parsed: P): string | undefined;
  /** Message kind and id for logs and counts: PHI-free. */
  describe(parsed: P): { kind: string; messageId?: string };
  map(parsed: P, ctx: MapContext): MapResult;
}

/** What the composition root hands every source kind when it builds that kind's adapters. */
export interface SourceDeps {
  /** The practice's IANA zone, for source times without an offset. */
  timezone: string;
  now: () => number;
  /** Time and timers (pollers, retries): the gateway's clock, so tests drive schedules by hand. */
  clock: Clock;
  /** A folder of the data folder for one adapter's scratch files (e.g. remote downloads); not yet created. */
  workDir(adapterId: string): string;
  /** One adapter's sealed secrets and public files in the data folder (e.g. a FHIR client's key pair). */
  secrets(adapterId: string): SecretStore;
}

/**
 * Where a source keeps what it must not lose or leak: secrets sealed with the gateway's key (rule 4)
 * and public files beside them, in the data folder.
 */
export interface SecretStore {
  /** The opened secret, or undefined when there is none. Throws when it is there but cannot be opened. */
  readSecret(name: string): Buffer | undefined;
  /** Seals and writes a secret that does not exist yet; returns false (writing nothing) when one already does. */
  createSecret(name: string, bytes: Uint8Array): boolean;
  readPublic(name: string): string | undefined;
  writePublic(name: string, text: string): void;
}

/** What one source kind builds from its config section: its adapters, and the codecs that map what they read. */
export interface SourceParts {
  adapters: SourceAdapter[];
  codecs: SourceCodec<unknown>[];
}

/**
 * A source kind as the registry lists it (adapters/registry.ts): its name, the config section it
 * reads, and how to import its folder. The composition root imports a kind only when its section is
 * in use (`sectionInUse`), so a gateway without databases or files never loads their drivers, SFTP
 * or FTP clients, or folder watcher (idle memory: BENCHMARKS.md).
 */
export interface SourceKindEntry {
  readonly kind: string;
  readonly section: keyof GatewayConfig;
  load(): Promise<SourceKind>;
}

/**
 * A source kind as the composition root builds it: its name, the config section it reads, and how
 * to build its parts from the whole config. Made with `defineSource`, which types `create`'s
 * argument as that section; it is its own registry entry too (`load` gives itself), so a kind
 * already imported can stand in a list beside the registry's lazy lines.
 */
export interface SourceKind extends SourceKindEntry {
  build(config: GatewayConfig, deps: SourceDeps): SourceParts;
}

export function defineSource<K extends keyof GatewayConfig>(d: {
  kind: string;
  section: K;
  create(section: GatewayConfig[K], deps: SourceDeps, config: GatewayConfig): Partial<SourceParts>;
}): SourceKind {
  const kind: SourceKind = {
    kind: d.kind,
    section: d.section,
    load: async () => kind,
    build(config, deps) {
      const parts = d.create(config[d.section], deps, config);
      return { adapters: parts.adapters ?? [], codecs: parts.codecs ?? [] };
    },
  };
  return kind;
}

/**
 * Whether a kind's section is in use: a list section (`databases`, `files`) when it has an entry;
 * an object section (`hl7`) always, since its kind decides what it builds from it (the HL7 codec
 * serves HL7 files and replays with the listener off).
 */
export function sectionInUse(config: GatewayConfig, section: keyof GatewayConfig): boolean {
  const v: unknown = config[section];
  if (Array.isArray(v)) return v.length > 0;
  return v !== undefined && v !== null;
}

/**
 * Imports the kinds whose sections are in use, in the entries' order, and checks that each import
 * is the kind its line names (a registry line and its folder's descriptor must agree).
 */
export async function loadSourceKinds(entries: readonly SourceKindEntry[], config: GatewayConfig): Promise<SourceKind[]> {
  const used = entries.filter((e) => sectionInUse(config, e.section));
  const kinds = await Promise.all(used.map((e) => e.load()));
  for (const [i, k] of kinds.entries())
    if (k.kind !== used[i].kind || k.section !== used[i].section)
      throw new Error(
        `source kind "${used[i].kind}" (section ${String(used[i].section)}) loaded "${k.kind}" (section ${String(k.section)}): the registry line and its folder's descriptor disagree`,
      );
  return kinds;
}

/** Thrown by a codec's parse: the input is not a well-formed message. */
export class CodecError extends Error {
  readonly location: SourceLocation | undefined;
  readonly hl7ErrorCode: string | undefined;
  constructor(message: string, opts?: { location?: SourceLocation; hl7ErrorCode?: string }) {
    super(message);
    this.name = 'CodecError';
    this.location = opts?.location;
    this.hl7ErrorCode = opts?.hl7ErrorCode;
  }
}
