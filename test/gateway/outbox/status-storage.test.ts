/** `/status` shows the outbox file's footprint (issue 14): its size, live bytes, free pages and the resend log's entries. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';

describe('/status outbox storage', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ outbox: { dedupeMaxEntries: 5000 } });
  });
  afterAll(async () => {
    await h.stop();
  });

  it('reports the file size, the bytes it holds live, free pages, and the resend log with its cap', async () => {
    const c = await h.client();
    expect(readAck(await c.send(adtA04())).code).toBe('AA');
    const r = await h.gw.parts.admin!.app.inject({ url: '/status', headers: { authorization: `Bearer ${h.gw.parts.token}` } });
    const s = r.json().outbox.storage;
    expect(s).toMatchObject({ autoVacuum: 'incremental', resendLogEntries: 1, resendLogMaxEntries: 5000, pageSize: 4096 });
    expect(s.fileBytes).toBe(statSync(h.gw.parts.paths.outboxFile).size);
    expect(s.liveBytes).toBeGreaterThan(0);
    expect(s.liveBytes % s.pageSize).toBe(0);
    expect(Number.isInteger(s.freePages)).toBe(true);
    expect(s.vacuum).toMatchObject({ failures: 0, lastError: null });
  });
});
