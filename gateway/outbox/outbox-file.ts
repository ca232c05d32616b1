/**
 * Opening the outbox file: checked (outbox-integrity.ts), salvaged when damaged
 * (outbox-salvage.ts), migrated, and bound to its seal key (outbox-key-binding.ts) — in that
 * order, before the writer thread or any source touches it. A start that must stop (another key)
 * throws GW_KEY_MISSING with the paths and what to do; damage never stops the start: the gateway
 * comes up on the salvaged outbox and says what happened through `onSalvaged`.
 */
import { DatabaseSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GatewayError, isGatewayError } from '../errors.ts';
import { OUTBOX_MIGRATIONS } from './migrations.ts';
import { bindSealKey, otherKeyError } from './outbox-key-binding.ts';
import { inspectOutboxFile, isCorruption, storedKeyCheck, type DamageReason } from './outbox-integrity.ts';
import { openDamaged, salvageOutbox, salvageTotals, type SalvageReport } from './outbox-salvage.ts';
import { keyCheckMatches, keyCheckValue } from '../crypto/key-check.ts';
import { WAL_SIZE_LIMIT_BYTES } from './outbox-vacuum.ts';

/** Opens (creating it 0600) and migrates the file; returns a connection. Corruption is thrown as SQLite's error, for the caller to salvage. */
export function openOutboxDatabase(file: string): DatabaseSync {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const fresh = statSync(file).size === 0;
  const d = new DatabaseSync(file);
  try {
    // a new file gives disk space back as rows go (outbox-vacuum.ts): auto_vacuum is part of the
    // header, so it is set before anything (WAL mode included) writes the first page
    if (fresh) d.exec('PRAGMA auto_vacuum = INCREMENTAL');
    // secure_delete: freed space keeps no old value (rule 4); per connection, so every one sets it
    d.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;');
    d.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    const version = Number((d.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    for (let v = version; v < OUTBOX_MIGRATIONS.length; v++) {
      d.exec('BEGIN IMMEDIATE');
      try {
        d.exec(OUTBOX_MIGRATIONS[v]);
        d.exec(`PRAGMA user_version = ${v + 1}`);
        d.exec('COMMIT');
      } catch (e) {
        d.exec('ROLLBACK');
        if (isCorruption(e)) throw e;
        throw new GatewayError('GW_OUTBOX_IO', `outbox migration ${v + 1} failed`, { cause: e });
      }
    }
  } catch (e) {
    d.close();
    throw e;
  }
  for (const suffix of ['-wal', '-shm']) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o600);
  return d;
}

export interface CheckedOpenOptions {
  file: string;
  /** The record seal key: salvaged records are opened with it, and the outbox is bound to it. */
  sealKey?: Uint8Array;
  /** The key's path, for the messages. */
  keyFile?: string;
  /** A key existed before this start: a missing or empty outbox file is damage, not a first run. */
  expectData?: boolean;
  /** With `expectData`: a missing file is still a new outbox; only an empty one is damage. */
  absentIsFresh?: boolean;
  /** Where damaged files are kept (default `damaged/` beside the outbox). */
  damagedDir?: string;
  now: () => number;
  onSalvaged?: (report: SalvageReport) => void;
}

/** A key check value readable in a damaged file, if any (to refuse salvaging with another key). */
function damagedFileKeyCheck(file: string): string | undefined {
  const d = openDamaged(file);
  try {
    return d ? storedKeyCheck(d) : undefined;
  } catch {
    return undefined;
  } finally {
    d?.close();
  }
}

export function openCheckedOutbox(o: CheckedOpenOptions): DatabaseSync {
  const keyFile = o.keyFile ?? 'the seal key';
  const salvage = (reason: DamageReason) => {
    if (o.sealKey) {
      // salvaging with another key would turn every record into an unreadable dead letter
      const kcv = existsSync(o.file) ? damagedFileKeyCheck(o.file) : undefined;
      if (kcv !== undefined && !keyCheckMatches(kcv, keyCheckValue(o.sealKey))) throw otherKeyError({ file: o.file, keyFile, rows: 0 });
    }
    const report = salvageOutbox({
      file: o.file,
      reason,
      damagedDir: o.damagedDir ?? join(dirname(o.file), 'damaged'),
      sealKey: o.sealKey,
      now: o.now(),
      createFresh: openOutboxDatabase,
      beforeReplace: (tables, leafScan) => {
        const t = salvageTotals({ file: o.file, reason, tables });
        // not one record opens: far likelier another key than every row damaged; the file stays as it is
        if (o.sealKey && t.salvaged > 0 && t.unreadable === t.salvaged) throw otherKeyError({ file: o.file, keyFile, rows: t.salvaged });
        // nothing SQLite could read (the header gone, so no key check either), and not one row found on
        // the leaf pages opens: the same conclusion
        const ls = leafScan?.outbox;
        if (o.sealKey && t.salvaged === 0 && ls && ls.added === 0 && ls.unopenable > 0)
          throw otherKeyError({ file: o.file, keyFile, rows: ls.unopenable });
      },
    });
    o.onSalvaged?.(report);
  };
  const expectData = (o.expectData ?? false) && !(o.absentIsFresh && !existsSync(o.file));
  const inspection = inspectOutboxFile(o.file, { expectData });
  if (inspection.state === 'damaged') salvage(inspection.reason);
  let d: DatabaseSync;
  try {
    d = openOutboxDatabase(o.file);
  } catch (e) {
    if (isGatewayError(e) || !isCorruption(e))
      throw isGatewayError(e) ? e : new GatewayError('GW_OUTBOX_IO', `outbox ${o.file} could not be opened`, { cause: e });
    salvage('corrupt');
    d = openOutboxDatabase(o.file);
  }
  if (o.sealKey) {
    try {
      bindSealKey(d, o.sealKey, { file: o.file, keyFile, now: o.now() });
    } catch (e) {
      d.close();
      throw e;
    }
  }
  return d;
}
