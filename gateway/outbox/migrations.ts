/**
 * Outbox storage migrations, applied in order by `PRAGMA user_version`. Shipped migrations are
 * never edited: add a new one. (Nothing has shipped yet; the first release carries these.)
 *
 * Every index costs pages in each commit's WAL write, and a commit is what an ACK waits for. So
 * the outbox has no index on the record id (rows are found by seq; a record id enqueued twice is
 * delivered twice and the cloud drops the copy), and the resend log is pruned from its oldest
 * rowids instead of through an index on the time (measured: BENCHMARKS.md, "Measured design choices").
 */
export const OUTBOX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL,
     type TEXT NOT NULL,
     partition_key TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     bytes INTEGER NOT NULL,
     payload BLOB NOT NULL
   );
   CREATE TABLE dead_letters (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     adapter TEXT NOT NULL,
     format TEXT NOT NULL,
     code TEXT NOT NULL,
     reason TEXT NOT NULL,
     location TEXT,
     record_type TEXT,
     partition_key TEXT,
     bytes INTEGER NOT NULL,
     payload BLOB NOT NULL
   );
   CREATE INDEX dead_letters_created ON dead_letters(created_at);
   CREATE TABLE intake_log (
     key TEXT PRIMARY KEY,
     hash TEXT NOT NULL,
     seen_at INTEGER NOT NULL
   );`,
  // 2: rows that failed once are few; claim reads them by this index instead of scanning the queue
  'CREATE INDEX outbox_retried ON outbox(seq) WHERE attempts > 0;',
  // 3: polled sources (SQL, files): their cursors, and the content hash of every row they produced,
  // committed in the same transaction as the rows' records
  `CREATE TABLE source_cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE source_rows (stream TEXT NOT NULL, pk TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (stream, pk)) WITHOUT ROWID;`,
  // 4: cloud commands carried out here (write-back, file.write): taken with their replay guard,
  // kept until done or failed, so a restart finishes what was reported accepted
  'CREATE TABLE pending_commands (id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL, payload BLOB NOT NULL);',
  // 5: bundles — a row holding the records of one message that share a partition (JSON array of
  // their ids; NULL: the row is one record); dead letters keep it so a replay puts the bundle back
  `ALTER TABLE outbox ADD COLUMN record_ids TEXT;
   ALTER TABLE dead_letters ADD COLUMN record_ids TEXT;`,
  // 6: the seal key's check value (an HMAC of a constant under the key, never the key), so a start
  // with another key is refused before anything is accepted (outbox-key-binding.ts)
  'CREATE TABLE seal_key_check (id INTEGER PRIMARY KEY CHECK (id = 1), kcv TEXT NOT NULL, set_at INTEGER NOT NULL);',
  // 7: resend-log and cursor keys are stored as keyed hashes and cursor values sealed
  // (stored-keys.ts); this marker asks the first open with the seal key to rewrite the rows kept
  // in plaintext before, once (hashPlainKeys removes it)
  `CREATE TABLE plain_keys_pending (id INTEGER PRIMARY KEY CHECK (id = 1));
   INSERT INTO plain_keys_pending (id) VALUES (1);`,
  // 8: delivery lanes (outbox.ts, "Lanes"): 0 urgent, 1 live, 2 backfill. Rows already queued stay
  // `live` (the default), so a file from before keeps every row and its order. An older executable
  // opening this file afterwards (a rollback) runs no migration it does not know, inserts without
  // the column (its default, live, applies), claims in seq order, which keeps every partition's
  // order, and SQLite keeps the indexes up to date for it: the added column is harmless to it.
  // `outbox_lane` lets a claim read each lane in seq order from its cursor with a large backlog
  // behind it; `outbox_partition_lane` lets an enqueue find the earlier rows of its partition in a
  // less urgent lane, to take them into its own (the lane invariant); `lane_promotions` counts those
  // promotions in the same transactions, so a claim sees in its own snapshot that rows changed lane
  `ALTER TABLE outbox ADD COLUMN lane INTEGER NOT NULL DEFAULT 1;
   CREATE INDEX outbox_lane ON outbox(lane, seq);
   CREATE INDEX outbox_partition_lane ON outbox(partition_key, lane);
   CREATE TABLE lane_promotions (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
   INSERT INTO lane_promotions (id, n) VALUES (1, 0);`,
];
