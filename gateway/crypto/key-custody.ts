/**
 * Custody of the seal key at start: the key is read, or made on a true first run — never made
 * anew beside an outbox that holds records sealed under the old one. Before this, a deleted key
 * was silently replaced, the gateway said ready, and every queued record became unreadable.
 *
 * - key present (32 bytes): used; the outbox then checks it is *its* key (outbox-key-binding.ts).
 * - key damaged (another length, unreadable): GW_KEY_MISSING, always — a key file is never
 *   overwritten by the gateway.
 * - key absent: if any outbox (`outbox.db`, `outbound.db`) holds sealed rows, or cannot be read
 *   to tell, GW_KEY_MISSING; otherwise a new key is made (atomically, 0600) and reported `created`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.ts';
import { sealedDataIn } from '../outbox/outbox-integrity.ts';
import { createKeyFile, readKeyFile } from './key-file.ts';

export interface SealKeyCustody {
  key: Buffer;
  /** Made by this start (a first run): a missing outbox is then no damage. */
  created: boolean;
}

const RESTORE =
  'Restore it from its backup: eyewear-gateway keys import BACKUP [--replace] (the import checks the backup opens the outbox).';

/**
 * `sealedFileDirs`: folders of files sealed under the key (the file sink's NDJSON): a new key would
 * leave them unreadable by `unseal` as surely as queued rows, so they too make a missing key a stop.
 */
export function openSealKey(o: { keyFile: string; outboxFiles: readonly string[]; sealedFileDirs?: readonly string[] }): SealKeyCustody {
  const k = readKeyFile(o.keyFile);
  if (k.state === 'present') return { key: k.key, created: false };
  if (k.state === 'damaged') {
    throw new GatewayError(
      'GW_KEY_MISSING',
      `the seal key ${o.keyFile} is damaged (${k.problem}). The gateway did not start and will not replace it. ${RESTORE} Only if no outbox holds records: move the damaged key aside and start again to make a new one.`,
      { details: { keyFile: o.keyFile } },
    );
  }
  for (const file of o.outboxFiles) {
    const held = sealedDataIn(file);
    if (held.state === 'rows') {
      throw new GatewayError(
        'GW_KEY_MISSING',
        `the seal key ${o.keyFile} is missing, and the outbox ${file} holds ${held.rows} sealed row(s) that only that key opens. The gateway did not start and made no new key. ${RESTORE} Only if those records are knowingly given up: move ${file} aside and start again.`,
        { details: { keyFile: o.keyFile, file, rows: held.rows } },
      );
    }
    if (held.state === 'unreadable') {
      throw new GatewayError(
        'GW_KEY_MISSING',
        `the seal key ${o.keyFile} is missing, and the outbox ${file} cannot be read to tell whether it holds records. The gateway did not start and made no new key. ${RESTORE} Only if its records are knowingly given up: move ${file} aside and start again.`,
        { details: { keyFile: o.keyFile, file } },
      );
    }
  }
  for (const dir of o.sealedFileDirs ?? []) {
    const files = sealedFilesIn(dir);
    if (files > 0) {
      throw new GatewayError(
        'GW_KEY_MISSING',
        `the seal key ${o.keyFile} is missing, and ${dir} holds ${files} file(s) of records sealed under it (the file sink's output, read with eyewear-gateway unseal). The gateway did not start and made no new key. ${RESTORE} Only if those files are knowingly given up: move them aside and start again.`,
        { details: { keyFile: o.keyFile, dir, files } },
      );
    }
  }
  return { key: createKeyFile(o.keyFile), created: true };
}

/** Non-empty `.ndjson` files in `dir` (0 when it does not exist). */
function sealedFilesIn(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  const nonEmpty = (n: string) => {
    try {
      return statSync(join(dir, n)).size > 0;
    } catch {
      return false;
    }
  };
  return names.filter((n) => n.endsWith('.ndjson') && nonEmpty(n)).length;
}
