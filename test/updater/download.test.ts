import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadTarget } from '../../updater/download.ts';

const body = Buffer.alloc(3 * 1024 * 1024);
for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
const sha = createHash('sha256').update(body).digest('hex');
/** What the server does on the next request: serve whole, cut after n bytes, ignore Range, or serve a tampered copy. */
let mode: { cutAt?: number; ignoreRange?: boolean; tamper?: boolean } = {};
const ranges: (string | undefined)[] = [];
let server: Server;
let url = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m && !mode.ignoreRange ? Number(m[1]) : 0;
    const data = mode.tamper ? Buffer.concat([body.subarray(0, 100), Buffer.from('X'), body.subarray(101)]) : body;
    res.writeHead(from > 0 ? 206 : 200, {
      'content-length': String(data.length - from),
      ...(from > 0 ? { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` } : {}),
    });
    const slice = data.subarray(from);
    if (mode.cutAt !== undefined) {
      res.write(slice.subarray(0, mode.cutAt), () => res.destroy());
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gw`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('update download with resume', () => {
  it('resumes a cut download with a Range request and renames only a verified file', async () => {
    const dest = join(mkdtempSync(join(tmpdir(), 'ewml-dl-')), 'eyewear-gateway.new');
    ranges.length = 0;
    mode = { cutAt: 1024 * 1024 };
    await expect(downloadTarget({ url, sha256: sha, size: body.length }, dest)).rejects.toThrow();
    expect(existsSync(dest)).toBe(false);
    const kept = statSync(`${dest}.part`).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(1024 * 1024);
    mode = {};
    const p = await downloadTarget({ url, sha256: sha, size: body.length }, dest);
    expect(p).toEqual({ received: body.length, size: body.length, resumedFrom: kept });
    expect(ranges).toEqual([undefined, `bytes=${kept}-`]);
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('starts again from zero when the server ignores the range', async () => {
    const dest = join(mkdtempSync(join(tmpdir(), 'ewml-dl-')), 'gw.new');
    writeFileSync(`${dest}.part`, body.subarray(0, 5000));
    mode = { ignoreRange: true };
    const p = await downloadTarget({ url, sha256: sha, size: body.length }, dest);
    expect(p.received).toBe(body.length);
    expect(readFileSync(dest).equals(body)).toBe(true);
  });

  it('refuses a tampered file, removes its bytes and never renames it', async () => {
    const dest = join(mkdtempSync(join(tmpdir(), 'ewml-dl-')), 'gw.new');
    mode = { tamper: true };
    await expect(downloadTarget({ url, sha256: sha, size: body.length }, dest)).rejects.toMatchObject({ code: 'GW_UPDATE_REFUSED' });
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
    mode = {};
    await expect(downloadTarget({ url, sha256: sha, size: body.length - 1 }, dest)).rejects.toThrow(/longer than the manifest's/);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });
});
