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
import { GatewayError } from '../errors.ts';
import { sealedDataIn } from '../outbox/outbox-integrity.ts';
import { createKeyFile, readKeyFile } from './key-file.ts';

export interface SealKeyCustody {
  key: Buffer;
  /** Made by this start (a first run): a missing outbox is then no damage. */
  created: boolean;
}

const RESTORE = 'Restore it from its backup: eyewear-gateway keys import BACKUP [--replace] (the import checks the backup opens the outbox).';

export function openSealKey(o: { keyFile: string; outboxFiles: readonly string[] }): SealKeyCustody {
  const k = readKeyFile(o.keyFile);
  if (k.state === 'present') return { key: k.key, created: false };
  if (k.state === 'damaged') {
    throw new GatewayError('GW_KEY_MISSING', `the seal key ${o.keyFile} is damaged (${k.problem}). The gateway did not start and will not replace it. ${RESTORE} Only if no outbox holds records: move the damaged key aside and start again to make a new one.`, { details: { keyFile: o.keyFile } });
  }
  for (const file of o.outboxFiles) {
    const held = sealedDataIn(file);
    if (held.state === 'rows') {
      throw new GatewayError('GW_KEY_MISSING', `the seal key ${o.keyFile} is missing, and the outbox ${file} holds ${held.rows} sealed row(s) that only that key opens. The gateway did not start and made no new key. ${RESTORE} Only if those records are knowingly given up: move ${file} aside and start again.`, { details: { keyFile: o.keyFile, file, rows: held.rows } });
    }
    if (held.state === 'unreadable') {
      throw new GatewayError('GW_KEY_MISSING', `the seal key ${o.keyFile} is missing, and the outbox ${file} cannot be read to tell whether it holds records. The gateway did not start and made no new key. ${RESTORE} Only if its records are knowingly given up: move ${file} aside and start again.`, { details: { keyFile: o.keyFile, file } });
    }
  }
  return { key: createKeyFile(o.keyFile), created: true };
}
