/** HL7 files dropped in a folder: safe pickup, exactly once per message, processed/ and error/. */
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04, controlId, siu } from '../../support/hl7-fixtures.ts';
import { waitFor } from '../../support/net.ts';

describe('folder source', () => {
  let h: Harness;
  const inbox = mkdtempSync(join(tmpdir(), 'ewml-inbox-'));
  beforeAll(async () => {
    h = await startHarness({
      folders: [{ id: 'exports', dir: inbox, stableMs: 1000, pollMs: 100 }],
      relay: { sink: 'https' },
      https: { url: 'http://127.0.0.1:9' },
      cloud: { publicKey: (await import('../../support/cloud-keys.ts')).makeCloudKeys().publicPem },
    });
  });
  afterAll(async () => {
    await h.stop();
  });
  const status = () => h.gw.status() as { adapters: Record<string, { detail: Record<string, number> }>; counts: Record<string, number> };

  it('imports every message of a file once it is stable, then moves it to processed/', async () => {
    const ids = [controlId('F'), controlId('F'), controlId('F')];
    writeFileSync(
      join(inbox, 'export1.hl7'),
      [
        adtA04({ id: ids[0], mrn: 'FILE1' }),
        siu({ id: ids[1], mrn: 'FILE1' }),
        adtA04({ id: ids[2] }).replace('MRN001^^^CLINIC^MR', ''),
      ].join('\n'),
    );
    await waitFor(
      () => existsSync(join(inbox, 'processed', 'export1.hl7')) && status().adapters.exports.detail.files === 1,
      10_000,
      'file processed',
    );
    expect(existsSync(join(inbox, 'export1.hl7'))).toBe(false);
    expect(status().adapters.exports.detail).toMatchObject({ files: 1, rows: 3 });
    // the one without PID-3 is kept in dead letters, with the reason
    expect(h.gw.parts.outbox.listDeadLetters({ limit: 100 }).some((d) => d.adapter === 'exports' && d.code === 'GW_MAP_FAILED')).toBe(true);
  });

  it('does not read a file while it is still being written', async () => {
    const f = join(inbox, 'growing.hl7');
    writeFileSync(f, adtA04({ id: controlId('G') }) + '\n');
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 150));
      appendFileSync(f, adtA04({ id: controlId('G') }) + '\n');
    }
    expect(existsSync(join(inbox, 'processed', 'growing.hl7'))).toBe(false);
    await waitFor(() => existsSync(join(inbox, 'processed', 'growing.hl7')), 10_000, 'growing file processed after it settled');
    expect(readFileSync(join(inbox, 'processed', 'growing.hl7'), 'utf8').match(/^MSH/gm)).toHaveLength(6);
  });

  it('moves a file that is not HL7 to error/ with a reason beside it', async () => {
    writeFileSync(join(inbox, 'notes.txt'), 'this is a shopping list\n');
    await waitFor(() => existsSync(join(inbox, 'error', 'notes.txt.reason.txt')), 10_000, 'moved to error/ with a reason');
    expect(existsSync(join(inbox, 'error', 'notes.txt'))).toBe(true);
    expect(readFileSync(join(inbox, 'error', 'notes.txt.reason.txt'), 'utf8')).toContain('GW_PARSE_FAILED');
  });

  it('after a crash in the middle of a file, re-reading it adds no duplicates and leaves no gap', async () => {
    const ids = [controlId('R'), controlId('R'), controlId('R')];
    const msgs = ids.map((id, i) => adtA04({ id, mrn: `RES${i}` }));
    // as if a first import committed the first message and then died: it is already in the outbox
    const c = await h.client();
    expect(readAck(await c.send(msgs[0])).code).toBe('AA');
    const before = status().counts;
    writeFileSync(join(inbox, 'resume.hl7'), msgs.join('\r\n'));
    await waitFor(() => existsSync(join(inbox, 'processed', 'resume.hl7')), 10_000, 'resumed file processed');
    const after = status().counts;
    expect(after.duplicate - before.duplicate).toBe(1);
    expect(after.accepted - before.accepted).toBe(2);
    expect(readdirSync(inbox).filter((n) => n.endsWith('.hl7'))).toEqual([]);
  });
});
