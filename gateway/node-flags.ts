/**
 * The V8 heap settings the gateway process runs with, however it is started: the single executable
 * has them built in (installer/build-binary.ts writes them as its `execArgv`), and `npm start` /
 * `npm run gateway` pass them on the command line (package.json; test/gateway/node-flags.test.ts
 * keeps the two the same). V8 reads them once, when the heap is made, so they cannot be set from
 * code that is already running; they hold for the outbox writer thread as well (over its own
 * `resourceLimits`). What each costs and saves, measured: BENCHMARKS.md (footprint).
 *
 * - `--max-semi-space-size=4`: a small young generation instead of the one V8 grows under an
 *   import on a large machine, whose pages stay resident once touched. Smaller saved a little more
 *   memory but cost CPU per record (more young collections, more promoted).
 * - `--max-old-space-size=1536`: V8 lets the old generation grow to four times what survived its
 *   last full collection when the heap may reach 2 GB or more, and less below that; the gateway's
 *   live heap is far below this bound, so it is never reached, and it limits how far the heap
 *   grows between collections during an import. (A bound near the live size saves little more and costs
 *   much more CPU.)
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--max-old-space-size=1536'];
