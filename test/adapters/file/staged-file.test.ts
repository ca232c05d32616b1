import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File } from '../../../adapters/file/file-import.ts';
import { forgetStaged, openRead, readWhole, stagedWriter } from '../../../adapters/file/staged-file.ts';

describe('staged downloads', () => {
  it('are on disk as noise of the same length, read back as written, and hashed by their content', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ewml-staged-')), 'patients_DOE_JANE.csv');
    const text = 'patient_id,last_name,first_name,birth_date\nZZTEST001,Doe,Jane,1961-04-02\n'.repeat(2000);
    const w = stagedWriter(path);
    for (let i = 0; i < text.length; i += 4096) w.stream.write(text.slice(i, i + 4096));
    await w.done();
    const raw = readFileSync(path);
    expect(raw.length).toBe(Buffer.byteLength(text));
    expect(statSync(path).size).toBe(Buffer.byteLength(text));
    expect(raw.includes(Buffer.from('ZZTEST001'))).toBe(false);
    expect(raw.includes(Buffer.from('1961-04-02'))).toBe(false);
    expect((await readWhole(path)).toString('utf8')).toBe(text);
    let streamed = '';
    for await (const c of openRead(path, { highWaterMark: 1000 })) streamed += (c as Buffer).toString('utf8');
    expect(streamed).toBe(text);
    // the content hash is the plaintext's: a file downloaded again under another key is the same file
    expect(await sha256File(path)).toBe(createHash('sha256').update(text).digest('hex'));
    // once forgotten (deleted), the bytes are only noise: the key is gone
    forgetStaged(path);
    expect((await readWhole(path)).includes(Buffer.from('ZZTEST001'))).toBe(false);
  });
});
