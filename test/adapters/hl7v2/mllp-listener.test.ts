/**
 * The MLLP listener inside a real gateway: real TCP sockets, a real SQLite outbox in a temp
 * folder. The sink points at a closed port so records stay in the outbox where the tests can see them.
 */
import { DatabaseSync } from 'node:sqlite';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameMllp } from '../../../adapters/hl7v2/mllp-framer.ts';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04, controlId, siu } from '../../support/hl7-fixtures.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { freePort, waitFor } from '../../support/net.ts';

const keys = makeCloudKeys();

async function stalledGateway(over: Record<string, unknown> = {}): Promise<Harness> {
  const deadPort = await freePort();
  return startHarness({
    relay: { sink: 'https' },
    https: { url: `http://127.0.0.1:${deadPort}` },
    cloud: { publicKey: keys.publicPem },
    ...over,
  });
}

/** The record ids in the outbox file, in order (a bundle row counts its records). */
function outboxIds(h: Harness): string[] {
  const db = new DatabaseSync(h.gw.parts.paths.outboxFile, { readOnly: true });
  try {
    return (db.prepare('SELECT id, record_ids AS ids FROM outbox ORDER BY seq').all() as Array<{ id: string; ids: string | null }>).flatMap(
      (r) => (r.ids ? (JSON.parse(r.ids) as string[]) : [r.id]),
    );
  } finally {
    db.close();
  }
}

describe('MLLP listener', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await stalledGateway();
  });
  afterAll(async () => {
    await h.stop();
  });

  it('answers AA only after the records are committed (a second connection to the file sees them)', async () => {
    const c = await h.client();
    const id = controlId();
    const ack = readAck(await c.send(adtA04({ id })));
    expect(ack.code).toBe('AA');
    expect(ack.controlId).toBe(id);
    // one row for the message: its patient, coverage and provider share the patient's partition
    const db = new DatabaseSync(h.gw.parts.paths.outboxFile, { readOnly: true });
    const rows = db.prepare('SELECT type, record_ids AS ids FROM outbox ORDER BY seq').all() as Array<{ type: string; ids: string | null }>;
    db.close();
    expect(rows.at(-1)?.type).toBe('bundle');
    expect(JSON.parse(rows.at(-1)!.ids!).length).toBeGreaterThanOrEqual(2);
    const status = h.gw.status() as { counts: { accepted: number } };
    expect(status.counts.accepted).toBeGreaterThanOrEqual(1);
  });

  it('answers every message on a persistent connection exactly once, in order (1,000 messages)', async () => {
    const c = await h.client();
    const ids = Array.from({ length: 1000 }, () => controlId('P'));
    for (const id of ids) c.writeRaw(frameMllp(adtA04({ id, mrn: `M${id}` })));
    const answers: string[] = [];
    for (let i = 0; i < ids.length; i++) answers.push(readAck(await c.nextAnswer(20_000)).controlId);
    expect(answers).toEqual(ids);
    await expect(c.nextAnswer(300)).rejects.toThrow(/no answer/);
  });

  it('takes a message split over many TCP packets and several messages in one packet', async () => {
    const sock = connect({ host: '127.0.0.1', port: h.mllpPort });
    await new Promise((r) => sock.once('connect', r));
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    const one = frameMllp(adtA04({ id: 'SPLIT1' }));
    for (let i = 0; i < one.length; i += 7) {
      sock.write(one.subarray(i, i + 7));
      await new Promise((r) => setImmediate(r));
    }
    sock.write(
      Buffer.concat([
        Buffer.from('junk before'),
        frameMllp(adtA04({ id: 'MULTI1', mrn: 'X1' })),
        frameMllp(adtA04({ id: 'MULTI2', mrn: 'X2' })),
      ]),
    );
    await waitFor(() => (Buffer.concat(got).toString('latin1').match(/MSA\|/g) ?? []).length === 3, 10_000, '3 ACKs');
    const text = Buffer.concat(got).toString('latin1');
    expect([...text.matchAll(/MSA\|(\w+)\|(\w+)/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['AA SPLIT1', 'AA MULTI1', 'AA MULTI2']);
    sock.destroy();
  });

  it('answers AE with an ERR segment when a message cannot be mapped, and keeps it in dead letters', async () => {
    const c = await h.client();
    const id = controlId();
    const ack = readAck(await c.send(adtA04({ id }).replace('MRN001^^^CLINIC^MR', '')));
    expect(ack.code).toBe('AE');
    expect(ack.controlId).toBe(id);
    expect(ack.err).toContain('PID^1^3');
    expect(ack.err).toContain('101^Required field missing^HL70357');
    const dl = h.gw.parts.outbox.listDeadLetters({ limit: 1000 }).find((d) => d.code === 'GW_MAP_FAILED');
    expect(dl).toMatchObject({ kind: 'input', adapter: 'hl7v2', location: 'PID-1-3' });
  });

  it('answers AR to input that is not a well-formed HL7 message, echoing what it can', async () => {
    const c = await h.client();
    const a1 = readAck(await c.send('this is not hl7'));
    expect(a1.code).toBe('AR');
    const a2 = readAck(await c.send('MSH|^~\\&|A|B|C|D|20260101||ADT^A01|BROKEN7|P|2.5\rbad!|segment'));
    expect(a2.code).toBe('AR');
    expect(a2.controlId).toBe('BROKEN7');
    expect(h.gw.parts.outbox.listDeadLetters({ limit: 1000 }).some((d) => d.code === 'GW_PARSE_FAILED')).toBe(true);
  });

  it('answers a resend AA without enqueuing it again, and a reused control id with new content AR', async () => {
    const c = await h.client();
    const id = controlId('D');
    const msg = adtA04({ id, mrn: 'DUP1' });
    expect(readAck(await c.send(msg)).code).toBe('AA');
    const before = outboxIds(h).length;
    const again = readAck(await c.send(msg.replaceAll('\r', '\n')));
    expect(again.code).toBe('AA');
    expect(outboxIds(h).length).toBe(before);
    const conflict = readAck(await c.send(adtA04({ id, mrn: 'DUP2' })));
    expect(conflict.code).toBe('AR');
    expect(conflict.err).toContain('205');
    expect(outboxIds(h).length).toBe(before);
    const status = h.gw.status() as { counts: { duplicate: number } };
    expect(status.counts.duplicate).toBeGreaterThanOrEqual(1);
  });

  it('answers AA to message types it does not map and counts them as ignored', async () => {
    const c = await h.client();
    const ack = readAck(await c.send(`MSH|^~\\&|LAB|X|GW|Y|20260101||ORU^R01|${controlId()}|P|2.5\rPID|1||1`));
    expect(ack.code).toBe('AA');
    const st = h.gw.status() as { counts: { ignored: number }; ignoredByType: Record<string, number> };
    expect(st.counts.ignored).toBeGreaterThanOrEqual(1);
    expect(st.ignoredByType['ORU^R01 (no eye-exam results)']).toBeGreaterThanOrEqual(1);
  });

  it('answers in enhanced mode when MSH-15/16 ask: CA after the commit, then the application ACK', async () => {
    const c = await h.client();
    const id = controlId('EN');
    const msg = adtA04({ id }).replace(/^(MSH(?:\|[^|\r]*){11})/, '$1|||AL|AL');
    expect(msg.split('\r')[0].split('|').slice(14, 16)).toEqual(['AL', 'AL']);
    const first = readAck(await c.send(msg));
    const second = readAck(await c.nextAnswer(5000));
    expect([first.code, second.code]).toEqual(['CA', 'AA']);
    expect(first.controlId).toBe(id);
    expect(second.controlId).toBe(id);
    expect(first.msh[10]).not.toBe(second.msh[10]);
  });

  it('follows the sequence number protocol (MSH-13): MSA-4 carries the next expected number, a gap is refused', async () => {
    const c = await h.client();
    const withSeq = (seq: string, id: string) =>
      adtA04({ id, mrn: `SQ${id}` })
        .replace(/^(MSH(?:\|[^|\r]*){11})/, `$1|${seq}`)
        .replace('|PMS|CLINIC|', '|SEQAPP|SEQFAC|');
    const msa = (text: string) =>
      text
        .split('\r')
        .find((x) => x.startsWith('MSA'))!
        .split('|');
    expect(msa(await c.send(withSeq('-1', 'Q0')))[4]).toBe('0');
    expect(
      msa(await c.send(withSeq('0', 'S0')))
        .slice(1, 2)
        .concat(msa(await c.send(withSeq('1', 'S1')))[4]),
    ).toEqual(['AA', '2']);
    const gap = msa(await c.send(withSeq('5', 'S5')));
    expect(gap[1]).toBe('AR');
    expect(gap[4]).toBe('2');
    const next = msa(await c.send(withSeq('2', 'S2')));
    expect([next[1], next[4]]).toEqual(['AA', '3']);
    expect(msa(await c.send(withSeq('-1', 'Q1')))[4]).toBe('3');
  });

  it('takes a batch in one frame (FHS/BHS … BTS/FTS) and answers one batch of ACKs', async () => {
    const c = await h.client();
    const good = adtA04({ id: controlId('BA'), mrn: 'BATCH1' });
    const bad = adtA04({ id: controlId('BB') }).replace('MRN001^^^CLINIC^MR', '');
    const batch = ['FHS|^~\\&|PMS|CLINIC|EWML|GW', 'BHS|^~\\&|PMS|CLINIC|EWML|GW', good, bad, 'BTS|2', 'FTS|1'].join('\r');
    const answer = await c.send(batch);
    const segs = answer.split('\r').filter(Boolean);
    expect(segs[0].startsWith('BHS|^~\\&|EWML|GW|PMS|CLINIC')).toBe(true);
    expect(segs.filter((x) => x.startsWith('MSA')).map((x) => x.split('|')[1])).toEqual(['AA', 'AE']);
    expect(segs[segs.length - 1]).toBe('BTS|2');
  });

  it('answers in the inbound version and encoding characters', async () => {
    const c = await h.client();
    const ack = await c.send(adtA04({ version: '2.3' }).replaceAll('^', '@').replace('MSH|@~\\&', 'MSH|@~\\&'));
    const f = readAck(ack).msh;
    expect(f[2]).toBe('@~\\&');
    expect(f[12]).toBe('2.3');
    expect(f[9]).toBe('ACK@A04'); // MSH-9.3 (message structure) exists from v2.3.1 on
  });
});

describe('MLLP listener limits', () => {
  it('answers an oversized frame AR and closes the connection, then serves new connections', async () => {
    const h = await stalledGateway({ hl7: { maxFrameBytes: 1024 } });
    try {
      const c = await h.client();
      const ack = readAck(await c.send(adtA04({ id: 'HUGE1' }) + '\rNTE|1||' + 'x'.repeat(5000)));
      expect(ack.code).toBe('AR');
      expect(ack.controlId).toBe('HUGE1');
      await waitFor(() => c.socket.destroyed || c.socket.readableEnded, 5000, 'connection closed');
      const c2 = await h.client();
      expect(readAck(await c2.send(adtA04())).code).toBe('AA');
    } finally {
      await h.stop();
    }
  });

  it('closes idle connections and refuses connections beyond maxConnections while every connection has sent frames lately', async () => {
    const h = await stalledGateway({ hl7: { idleTimeoutMs: 2000, maxConnections: 2 } });
    try {
      const a = await h.client();
      const b = await h.client();
      expect(readAck(await a.send(adtA04())).code).toBe('AA');
      expect(readAck(await b.send(adtA04())).code).toBe('AA');
      const third = connect({ host: '127.0.0.1', port: h.mllpPort });
      const closed = await new Promise<boolean>((resolve) => {
        third.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 3000);
      });
      expect(closed).toBe(true);
      expect(h.gw.parts.adapters.find((x) => x.id === 'hl7v2')!.health().detail).toMatchObject({ refused: 1, closedToMakeRoom: 0 });
      await waitFor(() => a.socket.destroyed && b.socket.destroyed, 5000, 'idle connections closed');
      const c = await h.client();
      expect(readAck(await c.send(adtA04())).code).toBe('AA');
    } finally {
      await h.stop();
    }
  });

  it('refuses new input with a "busy" AR at the outbox cap, raises an alert and loses nothing accepted', async () => {
    const h = await stalledGateway({ outbox: { maxBytes: 1024 * 1024 } });
    try {
      const c = await h.client();
      const accepted: string[] = [];
      let busy: ReturnType<typeof readAck> | undefined;
      for (let i = 0; i < 5000 && !busy; i++) {
        const id = controlId('F');
        const a = readAck(await c.send(adtA04({ id, mrn: `F${i}`, in1: true })));
        if (a.code === 'AA') accepted.push(id);
        else busy = a;
      }
      expect(busy?.code).toBe('AR');
      expect(busy?.err).toContain('207');
      expect(busy?.err).toContain('busy');
      expect(accepted.length).toBeGreaterThan(50);
      const s = h.gw.status() as { alerts: Record<string, unknown>; counts: { enqueuedRecords: number } };
      expect(s.alerts.outboxFull).toBeDefined();
      expect(outboxIds(h).length).toBe(s.counts.enqueuedRecords);
      expect(outboxIds(h).length).toBe(accepted.length * 3);
    } finally {
      await h.stop();
    }
  });

  it('maps SIU through the listener', async () => {
    const h = await stalledGateway();
    try {
      const c = await h.client();
      for (const event of ['S12', 'S13', 'S14', 'S15']) expect(readAck(await c.send(siu({ event }))).code).toBe('AA');
    } finally {
      await h.stop();
    }
  });
});
