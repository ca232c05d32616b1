/**
 * The seal key file: read it as present, absent or damaged (never "absent" for a file that is
 * there but wrong), and write it atomically — a temporary file in the same folder, fsynced, renamed
 * over, the folder fsynced — so a crash or a full disk never leaves a half-written key where the
 * gateway would read it, and mode 0600 from the first byte.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const SEAL_KEY_BYTES = 32;

export type KeyFileState =
  | { state: 'absent' }
  | { state: 'present'; key: Buffer }
  /** There, but not a key: wrong length, or not readable (the errno's code, never its text). */
  | { state: 'damaged'; problem: string };

export function readKeyFile(file: string): KeyFileState {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'absent' };
    return { state: 'damaged', problem: `not readable (${code ?? 'error'})` };
  }
  if (bytes.length !== SEAL_KEY_BYTES) return { state: 'damaged', problem: `${bytes.length} bytes instead of ${SEAL_KEY_BYTES}` };
  return { state: 'present', key: bytes };
}

/** Writes `bytes` to `file` (mode 0600, folder 0700) through a temporary file, fsync and rename. */
export function writeFileAtomic(file: string, bytes: Uint8Array): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** A file's bytes, or undefined when it does not exist (any other error is thrown). */
export function readIfExists(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Makes a rename in `dir` durable (POSIX: the directory entry is data of the folder). */
export function fsyncDir(dir: string): void {
  if (process.platform === 'win32' || !existsSync(dir)) return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A new random key, written atomically; refuses (EEXIST) if a key file appeared meanwhile. */
export function createKeyFile(file: string): Buffer {
  if (existsSync(file)) throw Object.assign(new Error('key file exists'), { code: 'EEXIST' });
  const key = randomBytes(SEAL_KEY_BYTES);
  writeFileAtomic(file, key);
  return key;
}
