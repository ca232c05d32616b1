/**
 * `npm run build:binary`: one Linux x64 executable with nothing beside it (Node's single-executable
 * application, SEA). Offline: esbuild bundles the TypeScript sources (CommonJS, as SEA's main must
 * be), the Node 24 binary from the `node` devDependency prepares the blob, and postject injects it
 * into a copy of that same binary. pkg's download modes need the network, which installs here lack.
 *
 * Output: dist/eyewear-gateway (and dist/sea/ build intermediates). Progress goes to stderr.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { GATEWAY_NODE_FLAGS } from '../gateway/node-flags.ts';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const out = join(root, 'dist');
const sea = join(out, 'sea');
const step = (s: string) => process.stderr.write(`build:binary: ${s}\n`);
const require = createRequire(import.meta.url);

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

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    step(`warning: building on ${process.platform}-${process.arch}; the executable is for this platform`);
  const nodeBin = realpathSync(process.execPath);
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) throw new Error(`run with Node 24 (npm run build:binary uses the pinned devDependency); this is ${process.version}`);
  rmSync(sea, { recursive: true, force: true });
  mkdirSync(sea, { recursive: true });
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

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

  step('1/4 bundling bin/eyewear-gateway.js (the CLI, cli/) with esbuild (and the outbox writer thread, embedded as code)');
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

  step('2/4 preparing the SEA blob');
  const seaConfig = join(sea, 'sea-config.json');
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: join(sea, 'gateway.cjs'),
      output: join(sea, 'sea-prep.blob'),
      disableExperimentalSEAWarning: true,
      // the heap settings every gateway process runs with (V8 reads them before any code runs)
      execArgv: GATEWAY_NODE_FLAGS,
      useCodeCache: false,
      useSnapshot: false,
    }),
  );
  execFileSync(nodeBin, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

  step(`3/4 copying the Node ${process.versions.node} binary`);
  const exe = join(out, 'eyewear-gateway');
  rmSync(exe, { force: true });
  copyFileSync(nodeBin, exe);
  chmodSync(exe, 0o755);

  step('4/4 injecting the blob with postject');
  const postject = require.resolve('postject/dist/cli.js');
  try {
    // postject (LIEF) prints harmless "Can't find string offset for section name '.note…'" warnings: show them only on failure
    execFileSync(
      nodeBin,
      [postject, exe, 'NODE_SEA_BLOB', join(sea, 'sea-prep.blob'), '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'],
      { stdio: 'pipe' },
    );
  } catch (e) {
    process.stderr.write(String((e as { stderr?: Buffer }).stderr ?? ''));
    throw e;
  }
  const v = execFileSync(exe, ['version'], { encoding: 'utf8' }).trim();
  step(`done: ${exe} (${Math.round(statSync(exe).size / 1e6)} MB), reports version ${v}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`build:binary failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
