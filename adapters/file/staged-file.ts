/**
 * Files a remote source downloads to stage them (SFTP, FTPS) are written encrypted: AES-256-CTR
 * under a key made for that one download and held only in this process's memory. The importer
 * reads them back through `openRead`/`readWhole`, which decrypt; every other reader sees bytes
 * that mean nothing. So a download cut short by a kill (no stop ran to delete it) leaves no
 * patient's data in the data folder, only noise whose key died with the process (ARCHITECTURE
 * rule 4); the next start clears the staging folder.
 *
 * CTR keeps the length (the size check against the listing holds) and needs no padding. No
 * authentication tag: the file never leaves this process's control, and a torn one is caught by
 * the size check and by the import's content hash.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

const ALGORITHM = 'aes-256-ctr';
const sealed = new Map<string, { key: Buffer; iv: Buffer }>();

/** A writable that stores what is written to `path` encrypted; `done()` settles once it is all on disk. */
export function stagedWriter(path: string): { stream: Writable; done(): Promise<void> } {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  sealed.set(path, { key, iv });
  const cipher = createCipheriv(ALGORITHM, key, iv);
  const file = createWriteStream(path, { mode: 0o600 });
  cipher.pipe(file);
  cipher.on('error', (e) => file.destroy(e));
  return {
    stream: cipher,
    async done() {
      if (!cipher.writableEnded) cipher.end();
      await finished(file);
    },
  };
}

/** Reads a file: a staged one decrypted, any other as it is. */
export function openRead(path: string, o: { highWaterMark?: number } = {}): Readable {
  const s = sealed.get(path);
  const raw = createReadStream(path, o);
  if (!s) return raw;
  const decipher = createDecipheriv(ALGORITHM, s.key, s.iv);
  raw.on('error', (e) => decipher.destroy(e));
  return raw.pipe(decipher);
}

/** A whole file (HL7 files are read whole, up to the configured cap), decrypted when staged. */
export async function readWhole(path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of openRead(path)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The key of a staged file is dropped once the file is deleted. */
export function forgetStaged(path: string): void {
  sealed.delete(path);
}
