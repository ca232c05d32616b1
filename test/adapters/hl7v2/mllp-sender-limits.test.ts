/**
 * The listener's limits on what senders may hold (mllp-sender-guard.ts), in a real gateway over
 * real sockets: the total of unfinished frames' bytes, the age of an unfinished frame, and room at
 * maxConnections. In each, the sender of complete frames keeps getting AA.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { adtA04 } from '../../support/hl7-fixtures.ts';
import { waitFor } from '../../support/net.ts';
import { rawConnection, type RawConnection } from '../../support/raw-mllp.ts';

const VT = Buffer.of(0x0b);
const END = Buffer.of(0x1c, 0x0d);

type Detail = {
  partialBytes: number;
  closedForPartialBytes: number;
  closedForPartialTimeout: number;
  closedToMakeRoom: number;
  refused: number;
  openConnections: number;
};
const detail = (h: Harness) => h.gw.parts.adapters.find((a) => a.id === 'hl7v2')!.health().detail as unknown as Detail;
const counts = (h: Harness) => (h.gw.status() as { counts: { accepted: number; duplicate: number } }).counts;

describe('MLLP sender limits', () => {
  let h: Harness | undefined;
  const raws: RawConnection[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await h?.stop();
    h = undefined;
  });

  it('closes the connection whose unfinished frame began last once all together pass hl7.maxPartialBytesTotal; the sender of complete frames goes on', async () => {
    const held = 1_000_000;
    h = await startHarness({ hl7: { maxFrameBytes: 1 << 20, maxPartialBytesTotal: 2_500_000 } }, { logLevel: 'info' });
    const real = await h.client();
    expect(readAck(await real.send(adtA04({ mrn: 'LIM0' }))).code).toBe('AA');
    for (let i = 0; i < 4; i++) {
      const r = await rawConnection(h.mllpPort);
      raws.push(r);
      const head = Buffer.from('MSH|^~\\&|X|Y|||20260101||ADT^A04|H1|P|2.5\r');
      await r.write(Buffer.concat([VT, head, Buffer.alloc(held - head.length, 0x61)]));
      expect(readAck(await real.send(adtA04({ mrn: `LIM${i + 1}` }))).code).toBe('AA');
    }
    await waitFor(() => detail(h!).closedForPartialBytes === 2 && detail(h!).partialBytes === 2 * held, 10_000, 'two holders closed');
    // the client sees its close a moment after the gateway counts it (CI read one in between)
    await waitFor(() => raws.filter((r) => r.closed).length >= 2, 10_000, 'the closes reach the clients');
    // the first two holders keep their frames; each later one is closed while it grows past the cap
    expect(raws.map((r) => r.closed)).toEqual([false, false, true, true]);
    for (let i = 5; i < 10; i++) expect(readAck(await real.send(adtA04({ mrn: `LIM${i}` }))).code).toBe('AA');
    expect(counts(h)).toMatchObject({ accepted: 10, duplicate: 0 });
    expect(detail(h)).toMatchObject({ closedForPartialBytes: 2, closedForPartialTimeout: 0, closedToMakeRoom: 0, partialBytes: 2 * held });
    const lines = h.logs.filter((l) => l.includes('"GW_SENDER_LIMIT"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.reason, l.frames])).toEqual([
      ['partial-bytes', 0],
      ['partial-bytes', 0],
    ]);
    // closed while its frame grew: it held some of it, at most all of it (how much depends on how TCP split the write)
    for (const l of lines) expect([(l.partialBytes as number) > 0, (l.partialBytes as number) <= held]).toEqual([true, true]);
  });

  it("closes a connection that never completed a frame before a larger one that did, and the latter's frame is answered AA", async () => {
    h = await startHarness({ hl7: { maxFrameBytes: 1 << 20, maxPartialBytesTotal: 1_500_000 } }, { logLevel: 'info' });
    const proven = await h.client();
    expect(readAck(await proven.send(adtA04({ mrn: 'BIG0' }))).code).toBe('AA');
    const big = Buffer.from(adtA04({ id: 'BIG1', mrn: 'BIG1' }) + '\rNTE|1||' + 'n'.repeat(1_000_000));
    proven.writeRaw(Buffer.concat([VT, big.subarray(0, 900_000)]));
    await waitFor(() => detail(h!).partialBytes === 900_000, 10_000, 'big frame held');
    const stranger = await rawConnection(h.mllpPort);
    raws.push(stranger);
    await stranger.write(Buffer.concat([VT, Buffer.alloc(700_000, 0x62)]));
    await stranger.whenClosed;
    proven.writeRaw(Buffer.concat([big.subarray(900_000), END]));
    const ack = readAck(await proven.nextAnswer(20_000));
    expect([ack.code, ack.controlId]).toEqual(['AA', 'BIG1']);
    expect(detail(h)).toMatchObject({ closedForPartialBytes: 1, partialBytes: 0 });
    expect(counts(h).accepted).toBe(2);
  });

  it('closes a connection whose frame is not ended within hl7.partialFrameTimeoutMs, however it trickles', async () => {
    h = await startHarness({ hl7: { partialFrameTimeoutMs: 300 } }, { logLevel: 'info' });
    const loris = await rawConnection(h.mllpPort);
    raws.push(loris);
    await loris.write(Buffer.concat([VT, Buffer.from('MSH|')]));
    const real = await h.client();
    let trickled = 0;
    // a byte every 20 ms, bounded: it must be closed long before 500 bytes
    while (!loris.closed && trickled < 500) {
      await loris.write('x');
      trickled++;
      if (trickled % 10 === 0) expect(readAck(await real.send(adtA04({ mrn: `SL${trickled}` }))).code).toBe('AA');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(loris.closed).toBe(true);
    expect(detail(h)).toMatchObject({ closedForPartialTimeout: 1, closedForPartialBytes: 0, closedToMakeRoom: 0, partialBytes: 0 });
    expect(readAck(await real.send(adtA04({ mrn: 'SLlast' }))).code).toBe('AA');
    expect(counts(h).accepted).toBe(Math.floor(trickled / 10) + 1);
  });

  it('at hl7.maxConnections makes room by closing a connection that sent nothing; refuses when all have sent frames lately', async () => {
    h = await startHarness({ hl7: { maxConnections: 3, partialFrameTimeoutMs: 60_000 } }, { logLevel: 'info' });
    const idle: RawConnection[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await rawConnection(h.mllpPort);
      idle.push(r);
      raws.push(r);
    }
    await waitFor(() => detail(h!).openConnections === 3, 5000, 'three open');
    const a = await h.client();
    expect(readAck(await a.send(adtA04({ mrn: 'ROOM1' }))).code).toBe('AA');
    // the first to connect (quiet longest) made room
    await idle[0].whenClosed;
    expect(idle.map((r) => r.closed)).toEqual([true, false, false]);
    const b = await h.client();
    expect(readAck(await b.send(adtA04({ mrn: 'ROOM2' }))).code).toBe('AA');
    const c = await h.client();
    expect(readAck(await c.send(adtA04({ mrn: 'ROOM3' }))).code).toBe('AA');
    await Promise.all([idle[1].whenClosed, idle[2].whenClosed]);
    expect(idle.map((r) => r.closed)).toEqual([true, true, true]);
    // three connections, each has sent a frame just now: a fourth is refused
    const fourth = await rawConnection(h.mllpPort);
    raws.push(fourth);
    await fourth.whenClosed;
    expect(readAck(await a.send(adtA04({ mrn: 'ROOM4' }))).code).toBe('AA');
    expect(detail(h)).toMatchObject({ closedToMakeRoom: 3, refused: 1, openConnections: 3 });
    expect(counts(h).accepted).toBe(4);
  });
});
