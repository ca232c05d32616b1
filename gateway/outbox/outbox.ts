/**
 * The Outbox contract (ARCHITECTURE.md). Two implementations — SQLite (durable) and memory (unit
 * tests) — pass the same contract suite (test/gateway/outbox/outbox-contract.ts).
 *
 * Row life cycle:
 *   enqueued ──claim──► in flight (held in memory only; a restart makes it pending again)
 *   in flight ──ack──► deleted                       (rule 2: only on the cloud's ack)
 *   in flight ──retryLater(at)──► pending, not claimable before `at`, attempts + 1
 *   in flight ──deadLetter(reason)──► moved to dead letters (kind `record`)
 * Ordering: rows sharing a partition key are claimed in enqueue order, and never while an earlier
 * row of that partition is in flight or waiting for its retry time.
 *
 * Lanes (issue 17): each row has a {@link Lane} — `urgent` (today's and tomorrow's appointments,
 * new prescriptions and lens orders), `live` (the default) or `backfill` (a first load, history) —
 * chosen where records are built (gateway/pipeline/record-lane.ts). Claims take urgent rows first,
 * then live, then backfill, each lane in enqueue order, so a first load never holds back a live
 * change. The partition rule still holds because of one invariant kept at enqueue: *within a
 * partition, no row is in a less urgent lane than a later row*. A row enqueued into a lane takes
 * every earlier queued row of its partition in a less urgent lane with it into its own lane (they
 * are promoted in the same transaction), so walking the lanes in order meets a partition's rows in
 * seq order, and the claim rule below works on that walk unchanged. A promotion is counted
 * (`lane_promotions`) so a claim that reads the queue by lane cursors knows to read it again.
 *
 * A row holds one record, or a *bundle*: the records of one message that share a partition (an
 * ADT's patient, coverage and provider) as one sealed blob — their JSON texts joined by newlines
 * (JSON.stringify never writes a raw newline), with `recordIds` naming them in order. One row
 * instead of three is a third of the seals, inserts, claims and deletes (measured: BENCHMARKS.md,
 * "Measured design choices"). A bundle is claimed, acked, retried and moved
 * to dead letters whole; the records of it the cloud refuses become dead letters of their own as the
 * row goes, in one transaction (`splitRefused`, called by the relay).
 */

/** Separates the records' JSON texts inside a bundle. */
export const BUNDLE_SEPARATOR = '\n';

/** The row id of a bundle: its first record's id and how many there are. */
export function bundleId(recordIds: readonly string[]): string {
  return `${recordIds[0]}+${recordIds.length}`;
}

/** Delivery lanes, most urgent first (see the module comment). */
export const Lane = { urgent: 'urgent', live: 'live', backfill: 'backfill' } as const;
export type Lane = (typeof Lane)[keyof typeof Lane];

/** Lanes in claim order. */
export const LANES: readonly Lane[] = [Lane.urgent, Lane.live, Lane.backfill];

/** A lane as the `lane` column stores it: its place in claim order (0 urgent, 1 live, 2 backfill). */
export function laneRank(lane: Lane | undefined): number {
  return lane === Lane.urgent ? 0 : lane === Lane.backfill ? 2 : 1;
}

/** The lane of a stored rank (anything unknown is `live`, the column's default). */
export function laneOfRank(rank: number): Lane {
  return rank === 0 ? Lane.urgent : rank === 2 ? Lane.backfill : Lane.live;
}

/** The lane a record is queued in; `laneWhenNew`: instead, when its source row was never seen (pages only). */
export interface LaneChoice {
  /** Absent: `live`. */
  lane?: Lane;
  /** A polled row's records when the outbox has no hash for the row yet (a new prescription, a new order). */
  laneWhenNew?: Lane;
}

/** A sealed record as the outbox stores it. */
export interface SealedRecord extends LaneChoice {
  id: string;
  type: string;
  partitionKey: string;
  sealed: Uint8Array;
  /** A bundle: the records it holds, in order (`id` is then the bundle's own id, `type` is `bundle`). */
  recordIds?: string[];
}

/**
 * A record handed over as its JSON text, for the outbox's writer to seal before anything is
 * written (rule 4 holds: nothing reaches the disk unsealed). With the writer thread, sealing then
 * runs beside the event loop that reads sockets instead of on it.
 */
export interface PlainRecord extends LaneChoice {
  id: string;
  type: string;
  partitionKey: string;
  /** The record's JSON, as text or as its UTF-8 bytes (a bundle: its records' JSON joined by newlines). */
  plain: string | Uint8Array;
  recordIds?: string[];
}

export type StoreRecord = SealedRecord | PlainRecord;

/** Seals the plain records of a list (the same list when all are sealed already). */
export function sealRecords(list: StoreRecord[], seal: (aad: string, plain: string | Uint8Array) => Uint8Array): SealedRecord[] {
  if (list.every((r) => 'sealed' in r)) return list as SealedRecord[];
  return list.map((r) =>
    'sealed' in r
      ? r
      : {
          id: r.id,
          type: r.type,
          partitionKey: r.partitionKey,
          sealed: seal(r.id, r.plain),
          recordIds: r.recordIds,
          lane: r.lane,
          laneWhenNew: r.laneWhenNew,
        },
  );
}

export interface EnqueueEntry {
  records: StoreRecord[];
  /** Resend detection: the same key with the same hash is a duplicate; another hash a conflict. */
  dedupe?: { key: string; hash: string };
  /** A cloud command taken for execution here (sealed): kept until `finishCommand`, so a restart carries it out. */
  command?: { id: string; sealed: Uint8Array };
}

export type EnqueueOutcome = 'accepted' | 'duplicate' | 'conflict' | 'full';

/**
 * One row of a polled source (a database row, a file's row): its records, keyed by the row's
 * identity in its stream and the hash of its content. A row whose key already holds the same hash
 * is unchanged (an overlap re-read, a restart repeating a page) and writes nothing.
 */
export interface SourceRowEntry {
  pk: string;
  /** Another stream than the page's (a tombstone marks its target's row deleted). */
  stream?: string;
  hash: string;
  records: StoreRecord[];
  /** The row could not be mapped: it is kept here instead, and the cursor still moves past it. */
  deadLetter?: DeadLetterEntry;
}

/** A page from a polled source, committed in one transaction with the cursor that produced it. */
export interface PageEntry {
  /** The stream the rows belong to, e.g. `practice-studio/patients`. */
  stream: string;
  rows: SourceRowEntry[];
  /** Where the next page starts; stored in the same transaction as the rows (a crash repeats a page, never skips one). */
  cursor?: { key: string; value: string };
  /** false: rows are not remembered by hash (a file, read once under its ledger entry). */
  trackRows?: boolean;
}

export interface PageOutcome {
  outcome: 'accepted' | 'full';
  written: number;
  unchanged: number;
  deadLettered: number;
}

/** The hash a row version holds once the row is deleted at its source. */
export const DELETED_ROW_HASH = '-';

export interface ClaimedRow {
  seq: number;
  id: string;
  type: string;
  partitionKey: string;
  attempts: number;
  sealed: Uint8Array;
  /** A bundle's records, in order; absent when the row is the one record `id`. */
  recordIds?: string[];
}

export const DeadLetterKind = { input: 'input', record: 'record' } as const;
export type DeadLetterKind = (typeof DeadLetterKind)[keyof typeof DeadLetterKind];

export interface DeadLetterEntry {
  id: string;
  kind: DeadLetterKind;
  createdAt: number;
  adapter: string;
  format: string;
  code: string;
  reason: string;
  location?: string;
  /** For `record` dead letters: the record's type and partition, to put it back on replay. */
  recordType?: string;
  partitionKey?: string;
  /** For a dead-lettered bundle: its records, in order. */
  recordIds?: string[];
  sealed: Uint8Array;
}

export type DeadLetterSummary = Omit<DeadLetterEntry, 'sealed'> & { bytes: number };

export interface OutboxStats {
  pending: number;
  inFlight: number;
  waitingRetry: number;
  deadLetters: number;
  bytes: number;
  maxBytes: number;
  oldestCreatedAt: number | null;
  /** Group commits so far (durable implementations): fewer than enqueues when intakes share them. */
  commits?: number;
  /** Of those, the commits made on the intake's own thread (writer mode `auto` or `inline`). */
  inlineCommits?: number;
  /** Implementations with a writer thread: `restarting` after it died, until a new one runs (writes fail meanwhile). */
  writer?: 'running' | 'restarting';
  /** Times the writer thread was restarted since open. */
  writerRestarts?: number;
  /** Rows queued per lane (in flight and waiting for a retry included), and each lane's oldest row. */
  lanes?: Record<Lane, LaneStats>;
}

export interface LaneStats {
  rows: number;
  oldestCreatedAt: number | null;
  oldestAgeSeconds: number | null;
}

/** What one claim hands the relay: the rows, and what it needs to decide when to claim again. */
export interface ClaimResult {
  /** The rows claimed, in order; they stay in flight until ack/retryLater/deadLetter/splitRefused. */
  rows: ClaimedRow[];
  /** The claim reached its n records: a backlog, so the relay claims again at once. */
  full: boolean;
  /**
   * The claim left claimable-looking rows behind: held behind a partition in flight, or past its
   * scan limit. A delivery that finishes may free them, so the relay claims again as soon as one
   * does instead of waiting for new input.
   */
  heldBack: boolean;
}

/** Storage life cycle. */
export interface OutboxLifecycle {
  /** Opens/migrates storage. Idempotent. */
  open(): Promise<void>;
  /** Flushes pending commits and closes. Idempotent. */
  close(): Promise<void>;
  /**
   * Durable implementations: bytes free inside the storage file (space deleted rows left, reused
   * before the file grows), which the disk guard counts as free space.
   */
  reusableBytes?(): number;
  /** Durable implementations: the file's size and what it holds (for `/status`). */
  storage?(): OutboxStorage;
}

/** The outbox file's footprint (issue 14: disk given back after a drain). */
export interface OutboxStorage {
  /** The database file's size on disk, and its WAL's. */
  fileBytes: number;
  walBytes: number;
  /** Bytes in pages that hold data (the file less its free pages). */
  liveBytes: number;
  freePages: number;
  pageSize: number;
  /** `incremental`: free pages are given back to the disk as rows go; `none`: only reused. */
  autoVacuum: 'none' | 'full' | 'incremental';
  /** Entries in the resend log, and its count cap. */
  resendLogEntries: number;
  resendLogMaxEntries: number | null;
  /** Vacuum steps run since open, pages they gave back, the last step's time, and the last failure's code. */
  vacuum: { steps: number; pagesReturned: number; lastStepMs: number | null; failures: number; lastError: string | null };
}

/** The record queue: what intakes put in and the relay takes out (see the row life cycle above). */
export interface RecordQueue {
  /**
   * One transaction per entry (group-committed with others); resolves after the commit. The
   * admission rule (admission.ts): a resend is `duplicate`/`conflict` first, then the byte cap.
   */
  enqueue(entry: EnqueueEntry): Promise<EnqueueOutcome>;
  /**
   * Claimable rows in order holding up to n records (a bundle counts each of its records; a bundle
   * larger than n is claimed alone), with whether the relay should claim again at once.
   */
  claim(n: number): ClaimResult;
  ack(ids: readonly string[]): Promise<void>;
  retryLater(ids: readonly string[], at: number, error: string): Promise<void>;
  deadLetter(ids: readonly string[], code: string, reason: string): Promise<void>;
  /**
   * A claimed bundle the cloud refused part of, settled in one transaction: its refused records
   * (`refused`, each sealed alone) become dead letters and the row is gone (the cloud took the
   * rest) — `'split'`; or, when the dead letters cannot take them all, the row moves to the dead
   * letters whole with `reason` — `'moved'`. Never half of each. `'gone'`: the row was no longer
   * queued; nothing changed.
   */
  splitRefused(id: string, refused: readonly DeadLetterEntry[], code: string, reason: string): Promise<'split' | 'moved' | 'gone'>;
  /** Earliest time a waiting row becomes claimable (for the relay's sleep), or null. */
  nextRetryAt(): number | null;
  stats(): OutboxStats;
}

/** Dead letters: input that could not be parsed, mapped or validated, and records the cloud refused. */
export interface DeadLetterStore {
  /** Keep input that could not be parsed, mapped or validated (within the dead letters' share of the cap). */
  addDeadLetter(entry: DeadLetterEntry): Promise<'stored' | 'full'>;
  listDeadLetters(opts?: { limit?: number; offset?: number }): DeadLetterSummary[];
  getDeadLetter(id: string): DeadLetterEntry | undefined;
  /** Removes it (after a successful replay, or a technician's discard). */
  removeDeadLetter(id: string): Promise<boolean>;
}

/** Polled sources' positions: pages committed with their cursors, and the rows they have seen. */
export interface SourceLedger {
  /** A page of source rows plus its cursor, in one transaction (all or nothing). */
  enqueuePage(page: PageEntry): Promise<PageOutcome>;
  /** The cursor last committed under this key. */
  getCursor(key: string): string | undefined;
  /** Known live rows of a stream in pk order after `afterPk` (for finding deletes by key-set comparison). */
  listSourceRows(stream: string, afterPk: string | undefined, limit: number): string[];
}

/** Cloud commands carried out here: taken through `RecordQueue.enqueue` (`EnqueueEntry.command`), kept until finished. */
export interface CommandJournal {
  /** Commands taken and not yet finished, oldest first. */
  pendingCommands(): Array<{ id: string; sealed: Uint8Array }>;
  /** A taken command is done or failed for good. */
  finishCommand(id: string): Promise<void>;
}

/**
 * The whole outbox, as the composition root builds it. Consumers take the narrowest role they
 * use: the relay a `RecordQueue`, the admin dead-letter routes a `DeadLetterStore`, pollers a
 * `SourceLedger`, the command processor a `CommandJournal` (with `enqueue` to take a command).
 */
export type Outbox = OutboxLifecycle & RecordQueue & DeadLetterStore & SourceLedger & CommandJournal;

/** A row as both implementations keep it, for the shared claim rule. */
export interface QueueRow {
  seq: number;
  id: string;
  partitionKey: string;
  nextAttemptAt: number;
  /** Records the row holds (a bundle's count; absent: one). */
  records?: number;
}

/**
 * The shared claim rule over rows in claim order (lane by lane, each in enqueue order; with the
 * lane invariant that is enqueue order within every partition): skip rows in flight or not yet due, and block
 * their partitions so no later row of the same patient overtakes them. `maxScan` bounds the work
 * of one claim when many rows wait behind blocked partitions (a smaller batch, not a stall).
 * `blockedAlready`: partitions known to be blocked before the scan (those with rows in flight).
 * `result.full`: the claim reached its n records (more may be claimable at once).
 */
export function selectClaimable<R extends QueueRow>(
  rows: Iterable<R>,
  inFlight: ReadonlySet<string>,
  now: number,
  n: number,
  maxScan = Infinity,
  blockedAlready?: { has(partitionKey: string): boolean },
  result?: { full: boolean },
): R[] {
  const blocked = new Set<string>();
  const pickedIds = new Set<string>();
  const out: R[] = [];
  let records = 0;
  let scanned = 0;
  for (const r of rows) {
    if (records >= n || scanned++ >= maxScan) break;
    if (blocked.has(r.partitionKey) || blockedAlready?.has(r.partitionKey)) continue;
    // a record id queued twice (a resend after the dedupe window) goes one copy at a time
    if (inFlight.has(r.id) || pickedIds.has(r.id) || r.nextAttemptAt > now) {
      blocked.add(r.partitionKey);
      continue;
    }
    // a bundle that would take the batch past n records waits for the next one (stopping here
    // keeps every later row of its partition behind it)
    if (out.length > 0 && records + (r.records ?? 1) > n) {
      records = n;
      break;
    }
    out.push(r);
    pickedIds.add(r.id);
    records += r.records ?? 1;
  }
  if (result) result.full = records >= n;
  return out;
}

/** Per-row bookkeeping bytes counted against the cap beside the sealed payload. */
export const ENTRY_OVERHEAD = 64;

/** Bytes an entry adds to the outbox, as counted against `outbox.maxBytes`. */
export function entryBytes(entry: { records: SealedRecord[] }): number {
  let b = 0;
  for (const r of entry.records) b += r.sealed.byteLength + ENTRY_OVERHEAD;
  return b;
}
