/** The outbox file's page layout, for tests that damage it on purpose. */
import { DatabaseSync } from 'node:sqlite';

/**
 * Rows of the outbox table that live on pages past `keptPages` (or under an interior page past
 * them), from the intact file's page map (SQLite's dbstat): what a truncation at that page loses.
 */
export function rowsBeyond(file: string, keptPages: number): number {
  const d = new DatabaseSync(file, { readOnly: true });
  const pages = d.prepare("SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name = 'outbox'").all() as Array<{
    path: string;
    pageno: number;
    pagetype: string;
    ncell: number;
  }>;
  d.close();
  const byPath = new Map(pages.map((p) => [p.path, p.pageno]));
  let lost = 0;
  for (const p of pages) {
    if (p.pagetype !== 'leaf') continue;
    const ancestors = p.path
      .split('/')
      .filter(Boolean)
      .map((_, i, parts) => `/${parts.slice(0, i).join('/')}${i ? '/' : ''}`);
    if (p.pageno > keptPages || ancestors.some((a) => (byPath.get(a) ?? 0) > keptPages)) lost += p.ncell;
  }
  return lost;
}
