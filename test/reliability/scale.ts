/**
 * How hard the reliability cases push. `npm test` runs them at a size that proves the behaviour in
 * seconds; `npm run test:reliability` (EWML_RELIABILITY=full) runs them at the sizes issue 12 names
 * (≥ 50 kills, ≥ 20 truncation offsets and flipped-byte places, 1,000,000 buffered records, a
 * 30-minute soak). Every case prints its figures with `report()`, which RELIABILITY.md quotes.
 */
export const fullScale = process.env.EWML_RELIABILITY === 'full';

/** The fast figure under `npm test`, the full one under `npm run test:reliability`. */
export function scale<T>(fast: T, full: T): T {
  return fullScale ? full : fast;
}

/** Prints one case's figures on one line, prefixed so they are easy to find in the run's output. */
export function report(caseName: string, figures: Record<string, string | number | boolean>): void {
  const parts = Object.entries(figures).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`[reliability] ${caseName}: ${parts.join(' ')}\n`);
}
