/**
 * The CDS service's local read model: per patient, what the cards need (patient-facts.ts), kept
 * in a small SQLite file in the data folder (`cds-read-model.db`) so the service answers from this
 * machine alone — with the cloud away, within the EHR's time budget, no network call.
 *
 * Sealed at rest (ARCHITECTURE rule 4): a row's key is a keyed hash of the patient reference
 * (HMAC under the gateway's partition keyer, with its own `cds-patient:` domain so the hashes do
 * not match the outbox's), its value a summary sealed with the gateway's sealer under that key as
 * AAD; the identifier links of patient records are keyed hashes too; `secure_delete` zeroes freed
 * pages. The file holds no identifier, name or date in plaintext.
 *
 * Fed after the outbox commit (the intake pipeline's `onCommitted`): `ingest` only queues the
 * facts (bounded; what does not fit is counted as dropped, the read model being a cache of records
 * the outbox keeps anyway) and writes them on the next turn of the event loop in one transaction,
 * so the record path does not wait for it. A lookup writes what is queued first: a record
 * acknowledged before the request is in the answer.
 *
 * Bounded: past `maxPatients` the patients updated longest ago go first (links likewise, at four
 * per patient). A cache, not a record of truth: a file that cannot be opened, or rows sealed with
 * another key (a seal key restored from elsewhere), are dropped and the model fills again from
 * the records that follow.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { CanonicalRecord, Reference } from '../../adapters/canonical/types.ts';
import type { Clock } from '../clock.ts';
import type { PartitionKeyer } from '../crypto/partition-keyer.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { applyFact, factOf, isEmptySummary, mergeSummaries, type Fact, type PatientSummary } from './patient-facts.ts';

export interface ReadModelOptions {
  file: string;
  sealer: RecordSealer;
  keyer: PartitionKeyer;
  clock: Clock;
  logger: Logger;
  maxPatients: number;
  /** Facts queued before they are written; more are dropped and counted (default 50,000). */
  maxPending?: number;
}

export interface ReadModelStats {
  patients: number;
  links: number;
  pending: number;
  /** Facts that did not fit the queue (the model misses them until the next record of that patient). */
  dropped: number;
  /** Patients evicted past `maxPatients`. */
  evicted: number;
  /** Rows that could not be opened (another key, damage) and were removed. */
  unreadable: number;
}

export interface ReadModel {
  /** Opens (creating it 0600) the file and writes what was queued before. Idempotent. */
  open(): void;
  /** Writes what is queued and closes the file. Idempotent. */
  close(): void;
  /** Queues the facts of records just committed; cheap, never throws. */
  ingest(records: readonly CanonicalRecord[]): void;
  /** The summary of the patient any of `refs` names (linked through patient records), or undefined. */
  lookup(refs: readonly Reference[]): PatientSummary | undefined;
  stats(): ReadModelStats;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS patients (key TEXT PRIMARY KEY, updated INTEGER NOT NULL, sealed BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS patients_updated ON patients (updated);
CREATE TABLE IF NOT EXISTS links (alias TEXT NOT NULL, grp TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (alias, grp)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_grp ON links (grp);
CREATE INDEX IF NOT EXISTS links_updated ON links (updated);
`;
const CHECK_AAD = 'cds:key-check';
const FLUSH_BATCH = 2000;
/** Identifier links followed from one lookup: a patient's own few, never a walk through the file. */
const MAX_LOOKUP_KEYS = 64;

interface Statements {
  get: StatementSync;
  put: StatementSync;
  del: StatementSync;
  evict: StatementSync;
  linkAdd: StatementSync;
  linkTouch: StatementSync;
  linkDropGroup: StatementSync;
  linkEvict: StatementSync;
  groupsOf: StatementSync;
  aliasesOf: StatementSync;
  getMany: StatementSync;
}

export function createReadModel(o: ReadModelOptions): ReadModel {
  const maxPending = o.maxPending ?? 50_000;
  const maxLinks = o.maxPatients * 4;
  const log = o.logger;
  let db: DatabaseSync | undefined;
  let st: Statements | undefined;
  let pending: Fact[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  const counts = { patients: 0, links: 0, dropped: 0, evicted: 0, unreadable: 0 };

  const patientKey = (r: Reference) => o.keyer(`cds-patient:${r.system}|${r.value}`);
  const groupKey = (g: string) => o.keyer(`cds-group:${g}`);
  const aad = (key: string) => `cds:${key}`;

  function openFile(): DatabaseSync {
    mkdirSync(dirname(o.file), { recursive: true, mode: 0o700 });
    if (!existsSync(o.file)) closeSync(openSync(o.file, 'a', 0o600));
    chmodSync(o.file, 0o600);
    const d = new DatabaseSync(o.file);
    try {
      // secure_delete: a row replaced or evicted leaves no old bytes in free pages (rule 4)
      d.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000; PRAGMA secure_delete = ON;');
      d.exec(SCHEMA);
    } catch (e) {
      d.close();
      throw e;
    }
    for (const suffix of ['-wal', '-shm']) if (existsSync(o.file + suffix)) chmodSync(o.file + suffix, 0o600);
    return d;
  }

  function removeFiles(): void {
    for (const suffix of ['', '-wal', '-shm']) rmSync(o.file + suffix, { force: true });
  }

  /** Rows sealed under another key cannot be read: start empty rather than fail each lookup. */
  function bindKey(d: DatabaseSync): void {
    const row = d.prepare('SELECT v FROM meta WHERE k = ?').get('check') as { v: Uint8Array } | undefined;
    if (row) {
      try {
        o.sealer.open(CHECK_AAD, row.v);
        return;
      } catch {
        log.warn({ code: 'GW_STORE_CORRUPT' }, 'CDS read model was sealed with another key; emptied, it fills again from new records');
        d.exec('DELETE FROM patients; DELETE FROM links;');
      }
    }
    d.prepare('INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)').run('check', o.sealer.seal(CHECK_AAD, 'ok'));
  }

  function prepare(d: DatabaseSync): Statements {
    return {
      get: d.prepare('SELECT sealed FROM patients WHERE key = ?'),
      put: d.prepare(
        'INSERT INTO patients (key, updated, sealed) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET updated = excluded.updated, sealed = excluded.sealed',
      ),
      del: d.prepare('DELETE FROM patients WHERE key = ?'),
      evict: d.prepare('DELETE FROM patients WHERE key IN (SELECT key FROM patients ORDER BY updated LIMIT ?)'),
      linkAdd: d.prepare('INSERT OR IGNORE INTO links (alias, grp, updated) VALUES (?, ?, ?)'),
      linkTouch: d.prepare('UPDATE links SET updated = ? WHERE alias = ? AND grp = ?'),
      linkDropGroup: d.prepare('DELETE FROM links WHERE grp = ?'),
      linkEvict: d.prepare('DELETE FROM links WHERE (alias, grp) IN (SELECT alias, grp FROM links ORDER BY updated LIMIT ?)'),
      groupsOf: d.prepare(`SELECT DISTINCT grp FROM links WHERE alias IN (SELECT value FROM json_each(?)) LIMIT ${MAX_LOOKUP_KEYS}`),
      aliasesOf: d.prepare(`SELECT DISTINCT alias FROM links WHERE grp IN (SELECT value FROM json_each(?)) LIMIT ${MAX_LOOKUP_KEYS}`),
      getMany: d.prepare('SELECT key, sealed FROM patients WHERE key IN (SELECT value FROM json_each(?))'),
    };
  }

  const count = (d: DatabaseSync, table: string) => Number((d.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);

  /** The stored summary, or undefined (none, or unreadable: then removed). */
  function read(s: Statements, key: string, sealed: Uint8Array | undefined): PatientSummary | undefined {
    if (!sealed) return undefined;
    try {
      return JSON.parse(o.sealer.open(aad(key), sealed).toString('utf8')) as PatientSummary;
    } catch {
      counts.unreadable++;
      s.del.run(key);
      counts.patients--;
      return undefined;
    }
  }

  function writeBatch(d: DatabaseSync, s: Statements, batch: readonly Fact[]): void {
    const now = o.clock.now();
    const touched = new Map<string, { summary: PatientSummary; existed: boolean }>();
    d.exec('BEGIN');
    try {
      for (const f of batch) {
        if (f.kind === 'identity') {
          const grp = groupKey(f.group);
          counts.links -= Number(s.linkDropGroup.run(grp).changes);
          if (f.remove) continue;
          for (const id of f.ids) {
            const alias = patientKey(id);
            if (Number(s.linkAdd.run(alias, grp, now).changes) === 1) counts.links++;
            else s.linkTouch.run(now, alias, grp);
          }
          continue;
        }
        const key = patientKey(f.patient);
        let t = touched.get(key);
        if (!t) {
          const row = s.get.get(key) as { sealed: Uint8Array } | undefined;
          const stored = read(s, key, row?.sealed);
          t = { summary: stored ?? { appointments: [] }, existed: stored !== undefined };
          touched.set(key, t);
        }
        t.summary = applyFact(t.summary, f, now);
      }
      for (const [key, t] of touched) {
        if (isEmptySummary(t.summary)) {
          if (t.existed) {
            s.del.run(key);
            counts.patients--;
          }
          continue;
        }
        s.put.run(key, now, o.sealer.seal(aad(key), JSON.stringify(t.summary)));
        if (!t.existed) counts.patients++;
      }
      if (counts.patients > o.maxPatients) {
        const n = counts.patients - o.maxPatients;
        s.evict.run(n);
        counts.patients -= n;
        counts.evicted += n;
      }
      if (counts.links > maxLinks) {
        s.linkEvict.run(counts.links - maxLinks);
        counts.links = maxLinks;
      }
      d.exec('COMMIT');
    } catch (e) {
      d.exec('ROLLBACK');
      // the model misses these facts; a lookup answers from what it has (never an error to the EHR)
      counts.dropped += batch.length;
      log.error({ err: e, facts: batch.length }, 'CDS read model write failed; those records are missing from it');
      counts.patients = count(d, 'patients');
      counts.links = count(d, 'links');
    }
  }

  /** The next batch off the queue (a big page's facts go in several, each its own transaction). */
  function takeBatch(): Fact[] {
    if (pending.length <= FLUSH_BATCH) {
      const all = pending;
      pending = [];
      return all;
    }
    const batch = pending.slice(0, FLUSH_BATCH);
    pending = pending.slice(FLUSH_BATCH);
    return batch;
  }

  /** Writes everything queued, now (a lookup, a close). */
  function flush(): void {
    if (scheduled) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (!db || !st) return;
    while (pending.length > 0) writeBatch(db, st, takeBatch());
  }

  /** On the next turn of the event loop, one batch a turn, so sockets are served between them. */
  function schedule(): void {
    if (scheduled || !db) return;
    scheduled = setImmediate(() => {
      scheduled = undefined;
      if (!db || !st) return;
      writeBatch(db, st, takeBatch());
      if (pending.length > 0) schedule();
    });
  }

  return {
    open() {
      if (db) return;
      let d: DatabaseSync;
      try {
        d = openFile();
      } catch (e) {
        // a cache: a damaged file is replaced, not salvaged
        log.warn({ err: e, code: 'GW_STORE_CORRUPT' }, 'CDS read model could not be opened; made anew');
        removeFiles();
        d = openFile();
      }
      bindKey(d);
      db = d;
      st = prepare(d);
      counts.patients = count(d, 'patients');
      counts.links = count(d, 'links');
      flush();
    },
    close() {
      if (!db) return;
      flush();
      db.close();
      db = undefined;
      st = undefined;
    },
    ingest(records) {
      for (const r of records) {
        const f = factOf(r);
        if (!f) continue;
        if (pending.length >= maxPending) counts.dropped++;
        else pending.push(f);
      }
      if (pending.length > 0) schedule();
    },
    lookup(refs) {
      if (!db || !st || refs.length === 0) return undefined;
      flush();
      const own = [...new Set(refs.map(patientKey))].slice(0, MAX_LOOKUP_KEYS);
      const groups = (st.groupsOf.all(JSON.stringify(own)) as Array<{ grp: string }>).map((r) => r.grp);
      const linked = groups.length ? (st.aliasesOf.all(JSON.stringify(groups)) as Array<{ alias: string }>).map((r) => r.alias) : [];
      const keys = [...new Set([...own, ...linked])].slice(0, MAX_LOOKUP_KEYS);
      const rows = st.getMany.all(JSON.stringify(keys)) as Array<{ key: string; sealed: Uint8Array }>;
      const s = st;
      const found = rows.map((r) => read(s, r.key, r.sealed)).filter((x): x is PatientSummary => x !== undefined);
      return mergeSummaries(found, o.clock.now());
    },
    stats() {
      return { ...counts, pending: pending.length };
    },
  };
}
