/**
 * Real executables for the update tests: `npm run build:binary` for Linux from this checkout or
 * from a copy of it with one change (a release built broken on purpose), and a file's SHA-256.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const sourceRoot = new URL('../../', import.meta.url).pathname;

/** Builds the Linux executable from `src` as `version` into `out` (with the release keys in `releaseKeys` built in, if given); returns its path. */
export function buildExecutable(src: string, version: string, out: string, o: { releaseKeys?: string } = {}): string {
  const args = ['--version', version, '--out', out, '--platform', 'linux-x64', ...(o.releaseKeys ? ['--release-keys', o.releaseKeys] : [])];
  execFileSync(process.execPath, [join(src, 'installer/build-binary.ts'), ...args], {
    cwd: src,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 240_000,
  });
  return join(out, 'eyewear-gateway');
}

/** A copy of the sources (tracked and new files, not tests or docs) with one change; node_modules linked, not copied. */
export function patchedSourceCopy(dir: string, file: string, from: string, to: string): string {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: sourceRoot, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    if (f.startsWith('test/') || f.startsWith('docs/') || f === 'node_modules' || f.startsWith('node_modules/')) continue;
    let st;
    try {
      st = lstatSync(join(sourceRoot, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted in the working tree
      throw e;
    }
    if (!st.isFile()) continue; // a link (node_modules linked into a checkout) is not a source
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(sourceRoot, f), join(dir, f));
  }
  symlinkSync(join(sourceRoot, 'node_modules'), join(dir, 'node_modules'));
  const text = readFileSync(join(dir, file), 'utf8');
  if (!text.includes(from)) throw new Error(`the patch for the broken build no longer applies to ${file}`);
  writeFileSync(join(dir, file), text.replace(from, to));
  return dir;
}

export const sha256File = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
