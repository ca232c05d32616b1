/**
 * What a truncation keeps readable, from SQLite's own page map of the intact file (dbstat), for
 * tests of the leaf-page salvage: a table's leaves in b-tree order hold its rows in rowid order, so
 * each leaf's rowids are known, and a row can be read from the leaves when its leaf page and every
 * one of its overflow pages lie in the kept part, whatever became of the interior pages above it.
 */
import { DatabaseSync } from 'node:sqlite';

/** The rowids of `table` whose leaf page and overflow pages are all among pages 1..kept. */
export function rowidsOnKeptLeaves(file: string, table: string, kept: number): Set<number> {
  const d = new DatabaseSync(file, { readOnly: true });
  let pages: Array<{ path: string; pageno: number; pagetype: string; ncell: number }>;
  let rowids: number[];
  try {
    pages = d.prepare('SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name = ?').all(table) as typeof pages;
    rowids = (d.prepare(`SELECT rowid AS r FROM ${table} ORDER BY rowid`).all() as Array<{ r: number }>).map((r) => Number(r.r));
  } finally {
    d.close();
  }
  // dbstat paths: '/000/' for a child, '/000/003+000001' for the second overflow page of cell 3
  const leaves = pages.filter((p) => p.pagetype === 'leaf').sort((a, b) => (a.path < b.path ? -1 : 1));
  const lostCells = new Map<string, Set<number>>();
  for (const o of pages) {
    if (o.pagetype !== 'overflow' || o.pageno <= kept) continue;
    const plus = o.path.lastIndexOf('+');
    const leaf = o.path.slice(0, plus - 3);
    const cells = lostCells.get(leaf) ?? new Set<number>();
    cells.add(Number.parseInt(o.path.slice(plus - 3, plus), 16));
    lostCells.set(leaf, cells);
  }
  const out = new Set<number>();
  let at = 0;
  for (const leaf of leaves) {
    const lost = lostCells.get(leaf.path);
    for (let c = 0; c < leaf.ncell; c++) if (leaf.pageno <= kept && !lost?.has(c)) out.add(rowids[at + c]);
    at += leaf.ncell;
  }
  if (at !== rowids.length) throw new Error(`the page map of ${table} holds ${at} cells but the table ${rowids.length} rows`);
  return out;
}
