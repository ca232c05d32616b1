/**
 * How a file import cuts its rows into pages (one outbox transaction each, with the ledger): at
 * `pageSize` rows, and sooner when the rows are wide (`PAGE_MAX_CHARS` of row text), so one page
 * of wide rows is never held whole in memory at once.
 */
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../config/load.ts';
import type { IntakeContext, PageIntakeResult, RawPage } from '../../../adapters/contracts.ts';
import { importFile, PAGE_MAX_CHARS } from '../../../adapters/file/file-import.ts';
import { importOptionsOf } from '../../../adapters/file/index.ts';

const HEADER = 'patient_id,last_name,first_name,birth_date,sex,notes\n';

/** A context that commits every page (its rows' records mapped) and keeps the cursor, like the outbox. */
function committingContext() {
  const cursors = new Map<string, string>();
  const pages: RawPage[] = [];
  let records = 0;
  const ctx: IntakeContext = {
    logger: pino({ level: 'silent' }),
    cursor: (k) => cursors.get(k),
    knownRows: () => [],
    intake: async () => ({ status: 'accepted', recordIds: [] }),
    async intakePage(page): Promise<PageIntakeResult> {
      pages.push(page);
      for (const row of page.rows) records += page.map(row).records.length;
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { status: 'accepted', written: page.rows.length, unchanged: 0, deadLettered: 0 };
    },
  };
  return { ctx, pages, records: () => records };
}

async function importRows(rows: number, notesChars: number, pageSize: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-pages-'));
  const path = join(dir, 'patients.csv');
  const notes = 'n'.repeat(notesChars);
  let text = HEADER;
  for (let i = 1; i <= rows; i++) text += `P${i},Synth${i},Test,1980-01-0${(i % 9) + 1},F,${notes}\n`;
  writeFileSync(path, text);
  const v = validateConfig({ gateway: { dataDir: dir }, files: [{ id: 'export', dir, profile: 'optical-csv', pageSize }] });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const c = committingContext();
  const st = statSync(path);
  const outcome = await importFile(c.ctx, importOptionsOf(v.config.files[0], { timezone: 'UTC', now: () => 0 }), {
    path,
    name: 'patients.csv',
    size: st.size,
    mtimeMs: st.mtimeMs,
  });
  return { outcome, pageRows: c.pages.map((p) => p.rows.length), records: c.records() };
}

describe('file import pages', () => {
  it('cuts narrow rows at pageSize rows', async () => {
    const r = await importRows(600, 10, 250);
    expect(r.outcome).toEqual({ status: 'imported', rows: 600, deadLettered: 0, resumedAfter: 0 });
    expect(r.pageRows).toEqual([250, 250, 100]);
    expect(r.records).toBe(600);
  });

  it('ends a page of wide rows once their text reaches PAGE_MAX_CHARS, every row still imported once', async () => {
    // each row's JSON is ~100,100 characters: the 11th row takes a page past 1 MiB of text
    const r = await importRows(40, 100_000, 500);
    expect(PAGE_MAX_CHARS).toBe(1_048_576);
    expect(r.outcome).toEqual({ status: 'imported', rows: 40, deadLettered: 0, resumedAfter: 0 });
    expect(r.pageRows).toEqual([11, 11, 11, 7]);
    expect(r.records).toBe(40);
  });
});
