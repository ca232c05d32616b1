/**
 * CDA documents and HL7 v3 messages as export files: detected from `.xml` content, imported whole
 * as one message through intake (so dead letters replay through the codec), once per file; and
 * `preview` prints their records.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createXmlDocumentCodecs, hl7v3Sources } from '../../../adapters/cda/index.ts';
import type { CanonicalRecord } from '../../../adapters/canonical/types.ts';
import { CodecError, type IntakeContext, type IntakeResult, type RawInput, type SourceDeps } from '../../../adapters/contracts.ts';
import { detectFileFormat } from '../../../adapters/file/file-formats.ts';
import { importFile, type FileImportOptions } from '../../../adapters/file/file-import.ts';
import { runCommand, type CliIo } from '../../../cli/index.ts';
import { loadConfig } from '../../../config/load.ts';
import { fixture, fixturePath, identity, TZ } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'ewml-cda-'));
const put = (name: string, from: string) => {
  const p = join(dir, name);
  copyFileSync(fixturePath(from), p);
  return p;
};
const ref = (path: string) => ({ path, name: path.slice(dir.length + 1), size: readFileSync(path).length, mtimeMs: 0 });

/** An intake that runs the HL7 v3 codecs as the pipeline does (parse, map; a CodecError or an error issue is a rejection) and keeps the ledger. */
function fakeIntake() {
  const codecs = createXmlDocumentCodecs({ timezone: TZ });
  const inputs: RawInput[] = [];
  const records: CanonicalRecord['data'][] = [];
  const cursors = new Map<string, string>();
  const ctx: IntakeContext = {
    async intake(raw): Promise<IntakeResult> {
      inputs.push(raw);
      const codec = codecs[raw.format as 'cda' | 'hl7v3'];
      if (!codec)
        return { status: 'rejected', code: 'GW_UNSUPPORTED_MESSAGE', retry: 'permanent', reason: `no codec for format ${raw.format}` };
      let parsed: unknown;
      try {
        parsed = codec.parse(raw.text);
      } catch (e) {
        if (e instanceof CodecError) return { status: 'rejected', code: 'GW_PARSE_FAILED', retry: 'permanent', reason: e.message };
        throw e;
      }
      const r = codec.map(parsed, identity);
      if (r.issues.some((i) => i.severity === 'error'))
        return { status: 'rejected', code: 'GW_MAP_FAILED', retry: 'permanent', reason: r.issues[0].message };
      records.push(...r.records.map((x) => ({ type: x.type, op: x.op, ...x.data })));
      return { status: 'accepted', recordIds: r.records.map((x) => x.id) };
    },
    async intakePage(page) {
      if (page.cursor) cursors.set(page.cursor.key, page.cursor.value);
      return { status: 'accepted', written: 0, unchanged: 0, deadLettered: 0 };
    },
    cursor: (key) => cursors.get(key),
    knownRows: () => [],
    logger: pino({ level: 'silent' }),
  };
  return { ctx, inputs, records, cursors };
}

const options = (over: Partial<FileImportOptions> = {}): FileImportOptions => ({
  adapterId: 'exports',
  // a profile whose only kind reads CSV patient lists: no kind names an .xml file
  profile: { name: 'generic', system: 'PMS', kinds: [{ name: 'patients', match: '^patients.*\\.csv$', records: [] }] },
  format: 'auto',
  csv: { delimiter: 'auto', quote: '"', header: true, encoding: 'utf-8' },
  maxWholeFileBytes: 1024 * 1024,
  pageSize: 100,
  timezone: TZ,
  now: () => Date.UTC(2026, 0, 1),
  ...over,
});

describe('CDA and HL7 v3 files', () => {
  it('the hl7v3 source kind gives the pipeline both codecs (so intake and dead-letter replay find them) and no adapter', () => {
    const parts = hl7v3Sources.build(loadConfig({ env: {} }), { timezone: TZ } as unknown as SourceDeps);
    expect([hl7v3Sources.kind, hl7v3Sources.section]).toEqual(['hl7v3', 'files']);
    expect(parts.codecs.map((c) => c.format)).toEqual(['cda', 'hl7v3']);
    expect(parts.adapters).toEqual([]);
  });

  it('detects a CDA document and PRPA messages by content, and leaves other XML as xml', async () => {
    expect(await detectFileFormat(put('consult.xml', 'eye-exam-consult-note.xml'))).toBe('cda');
    expect(await detectFileFormat(put('merge.xml', 'prpa-in201304uv02-merge.xml'))).toBe('hl7v3');
    const other = join(dir, 'officemate.xml');
    writeFileSync(other, '<?xml version="1.0"?><EWExport><EWSpecRx/></EWExport>');
    expect(await detectFileFormat(other)).toBe('xml');
    // no extension: by the first bytes
    expect(await detectFileFormat(put('consult-noext', 'eye-exam-consult-note.xml'))).toBe('cda');
  });

  it('imports a CDA file whole as one cda message though no kind names it, exactly once', async () => {
    const f = fakeIntake();
    const path = put('DOC-0001.xml', 'eye-exam-consult-note.xml');
    expect(await importFile(f.ctx, options(), ref(path))).toEqual({ status: 'imported', rows: 1, deadLettered: 0, resumedAfter: 0 });
    expect(f.inputs.map((i) => [i.adapter, i.format])).toEqual([['exports', 'cda']]);
    expect(f.inputs[0].text).toBe(fixture('eye-exam-consult-note.xml'));
    expect(f.records.map((r) => r.type)).toEqual(['patient', 'clinical-document']);
    expect(f.records[1].content).toBe(fixture('eye-exam-consult-note.xml'));
    expect([...f.cursors.values()].map((v) => JSON.parse(v)).map((l) => [l.rows, l.done])).toEqual([[1, true]]);
    expect(await importFile(f.ctx, options(), ref(path))).toEqual({ status: 'already' });
    expect(f.inputs.length).toBe(1);
  });

  it('imports an HL7 v3 merge file as one hl7v3 message', async () => {
    const f = fakeIntake();
    const path = put('mpi-merge.xml', 'prpa-in201304uv02-merge.xml');
    expect(await importFile(f.ctx, options(), ref(path))).toEqual({ status: 'imported', rows: 1, deadLettered: 0, resumedAfter: 0 });
    expect(f.inputs.map((i) => i.format)).toEqual(['hl7v3']);
    expect(f.records.map((r) => [r.type, r.op, r.mergedFrom])).toEqual([
      ['patient', 'merge', [{ system: 'urn:oid:2.16.840.1.113883.19.5.99.3', value: 'EX-10777' }]],
    ]);
  });

  it('a malformed CDA file is one rejected message (dead-lettered by intake); one over maxWholeFileBytes fails unread', async () => {
    const f = fakeIntake();
    const bad = join(dir, 'broken.xml');
    writeFileSync(bad, fixture('eye-exam-consult-note.xml').replace('</patientRole>', ''));
    expect(await importFile(f.ctx, options(), ref(bad))).toEqual({ status: 'imported', rows: 1, deadLettered: 1, resumedAfter: 0 });
    const big = put('big.xml', 'eye-exam-consult-note.xml');
    const outcome = await importFile(fakeIntake().ctx, options({ maxWholeFileBytes: 1000 }), ref(big));
    expect(outcome).toEqual({
      status: 'failed',
      code: 'GW_PARSE_FAILED',
      reason: `the file is ${readFileSync(big).length} bytes; a CDA document or HL7 v3 message is read whole up to 1000 bytes (files.maxWholeFileBytes)`,
    });
  });

  it('an .xml file that is neither, and that no kind names, still fails as before', async () => {
    const other = join(dir, 'export.xml');
    writeFileSync(other, '<Export/>');
    const outcome = await importFile(fakeIntake().ctx, options(), ref(other));
    expect(outcome.status).toBe('failed');
    expect(outcome.status === 'failed' && outcome.code).toBe('GW_UNSUPPORTED_MESSAGE');
  });
});

describe('preview of CDA and HL7 v3 files', () => {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      readFile: (p) => readFileSync(p, 'utf8'),
      loadConfig: () => loadConfig({ env: {} }),
    };
    const code = await runCommand(['preview', ...args], io);
    return { code, out, err };
  };

  it('prints the records of a CDA document and of a PRPA merge, one JSON line each', async () => {
    const r = await run(put('preview-note.xml', 'eye-exam-consult-note.xml'), put('preview-merge.xml', 'prpa-in201304uv02-merge.xml'));
    expect(r.err.at(-1)).toBe('preview: 2 message(s)/row(s), 3 record(s), 0 with errors');
    expect(r.code).toBe(0);
    const recs = r.out.map((l) => JSON.parse(l) as CanonicalRecord);
    expect(recs.map((x) => [x.type, x.op, x.source.adapter])).toEqual([
      ['patient', 'upsert', 'cda'],
      ['clinical-document', 'upsert', 'cda'],
      ['patient', 'merge', 'hl7v3'],
    ]);
    expect(recs[1].data.content).toBe(fixture('eye-exam-consult-note.xml'));
    expect(recs[1].data.documentType).toEqual({ system: 'http://loinc.org', code: '11488-4', display: 'Consult note' });
  });

  it('says why a malformed document fails, and exits 5', async () => {
    const bad = join(dir, 'preview-broken.xml');
    writeFileSync(bad, fixture('eye-exam-consult-note.xml').replace('</patientRole>', ''));
    const r = await run(bad);
    expect(r.code).toBe(5);
    expect(r.out).toEqual([]);
    expect(r.err[0]).toMatch(/preview-broken\.xml: error GW_PARSE_FAILED: not well-formed XML \(InvalidTag at line \d+, column \d+\)$/);
  });
});
