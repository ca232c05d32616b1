/**
 * A small filesystem of its own for disk-full tests: a tmpfs of `bytes` mounted on a new temporary
 * folder (root only, as .ci/run runs the tests). Filling it is real ENOSPC from the kernel, not a
 * mocked write. `unmount()` removes it; call it in `afterAll`.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  unmount(): void;
}

export function mountSmallDisk(bytes: number): SmallDisk {
  if (process.getuid?.() !== 0)
    throw new Error('the disk-full tests mount a small tmpfs and need root (as .ci/run runs them); run npm test as root');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-small-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', ['-l', dir]);
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Takes every free byte of a disk (or `bytes`) in a file of its own, as another program filling the
 * disk would; the last pages a 4 KiB block at a time. Returns what it wrote.
 */
export function fillDisk(path: string, bytes = Number.POSITIVE_INFINITY): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  try {
    while (written < bytes) {
      try {
        written += writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        try {
          written += writeSync(fd, chunk, 0, 4096);
          continue;
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}
