/**
 * Outbox storage migrations, applied in order by `PRAGMA user_version`. Shipped migrations are
 * never edited: add a new one.
 */
export const OUTBOX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
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
   );
   CREATE INDEX intake_log_seen ON intake_log(seen_at);`,
  // 2: rows that failed once are few; claim reads them by this index instead of scanning the queue
  'CREATE INDEX outbox_retried ON outbox(seq) WHERE attempts > 0;',
];
