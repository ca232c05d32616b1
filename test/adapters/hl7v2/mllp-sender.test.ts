/** Outbound MLLP against our own listener and against fake PMS listeners that misbehave on purpose. */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMllpSender } from '../../../adapters/hl7v2/mllp-sender.ts';
import { createMllpFramer, frameMllp } from '../../../adapters/hl7v2/mllp-framer.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04, siu } from '../../support/hl7-fixtures.ts';
import { freePort } from '../../support/net.ts';

const ack = (controlId: string, code = 'AA') =>
  `MSH|^~\\&|PMS|CLINIC|GW|GW|20261125||ACK^S12^ACK|A${controlId}|P|2.5.1\rMSA|${code}|${controlId}\r`;
const ctl = (m: string) => m.split('\r')[0].split('|')[9];

/** A fake PMS: `answer` decides what to send back for each message (text frames), per connection. */
async function fakePms(
  answer: (controlId: string, n: number, socket: Socket) => void,
): Promise<{ port: number; server: Server; connections: () => number }> {
  let n = 0;
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    const f = createMllpFramer(1 << 20, { frame: (p) => answer(ctl(p.toString()), n++, s), oversize: () => s.destroy() });
    s.on('data', (d: Buffer) => f.push(d));
    s.on('error', () => {});
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { port, server, connections: () => connections };
}

describe('MLLP sender', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({});
  });
  afterAll(async () => {
    await h.stop();
  });

  it('sends to a listener and returns its ACK for this message', async () => {
    const s = createMllpSender({ host: '127.0.0.1', port: h.mllpPort });
    const r = await s.send(siu({ id: 'OUT1' }));
    expect(r).toMatchObject({ code: 'AA', controlId: 'OUT1' });
    expect((await s.send(adtA04({ id: 'OUT2' }))).controlId).toBe('OUT2');
    expect(s.stats().open).toBe(1); // kept alive and reused
    await s.close();
  });

  it("never takes a late ACK for another message as this one's", async () => {
    const pms = await fakePms((id, _n, sock) => {
      sock.write(frameMllp(ack('SOMETHING-ELSE')));
      setTimeout(() => sock.write(frameMllp(ack(id))), 20);
    });
    const s = createMllpSender({ host: '127.0.0.1', port: pms.port });
    expect(await s.send(siu({ id: 'MINE1' }))).toMatchObject({ code: 'AA', controlId: 'MINE1' });
    expect(s.stats().staleAcks).toBe(1);
    await s.close();
    pms.server.close();
  });

  it('times out (ambiguous), drops that connection, and the next message goes on a fresh one', async () => {
    const pms = await fakePms((id, n, sock) => {
      if (n === 0) setTimeout(() => sock.write(frameMllp(ack(id))), 400);
      else sock.write(frameMllp(ack(id)));
    });
    const s = createMllpSender({ host: '127.0.0.1', port: pms.port, ackTimeoutMs: 150 });
    await expect(s.send(siu({ id: 'SLOW1' }))).rejects.toMatchObject({ code: 'GW_SINK_TIMEOUT', retry: 'ambiguous' });
    expect(await s.send(siu({ id: 'FAST2' }))).toMatchObject({ code: 'AA', controlId: 'FAST2' });
    expect(pms.connections()).toBe(2);
    await s.close();
    pms.server.close();
  });

  it("passes AE/AR through for the caller's retry policy, and keeps to its pool size", async () => {
    let concurrent = 0;
    let peak = 0;
    const pms = await fakePms((id, n, sock) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      setTimeout(() => {
        concurrent--;
        sock.write(frameMllp(ack(id, n === 0 ? 'AE' : 'AA')));
      }, 30);
    });
    const s = createMllpSender({ host: '127.0.0.1', port: pms.port, poolSize: 2 });
    const results = await Promise.all(['P1', 'P2', 'P3', 'P4', 'P5'].map((id) => s.send(siu({ id }))));
    expect(results.map((r) => r.controlId)).toEqual(['P1', 'P2', 'P3', 'P4', 'P5']);
    expect(results.filter((r) => r.code === 'AE')).toHaveLength(1);
    expect(peak).toBeLessThanOrEqual(2);
    await s.close();
    pms.server.close();
  });

  it('reports an unreachable PMS as transient', async () => {
    const s = createMllpSender({ host: '127.0.0.1', port: await freePort(), connectTimeoutMs: 1000 });
    await expect(s.send(siu({ id: 'X' }))).rejects.toMatchObject({ code: 'GW_SINK_UNREACHABLE', retry: 'transient' });
    await s.close();
  });
});
