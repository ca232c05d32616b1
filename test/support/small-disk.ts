/**
 * A small filesystem of its own for disk-full tests: a tmpfs of `bytes` mounted on a new temporary
 * folder (root only, as .ci/run runs the tests). Filling it is real ENOSPC from the kernel, not a
 * mocked write. `unmount()` removes it; call it in `afterAll`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk { dir: string; unmount(): void }

export function mountSmallDisk(bytes: number): SmallDisk {
  if (process.getuid?.() !== 0) throw new Error('the disk-full tests mount a small tmpfs and need root (as .ci/run runs them); run npm test as root');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-small-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      try { execFileSync('umount', ['-l', dir]); } catch { /* already gone */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
