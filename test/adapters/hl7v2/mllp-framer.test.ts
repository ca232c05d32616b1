import { describe, expect, it } from 'vitest';
import { createMllpFramer, frameMllp } from '../../../adapters/hl7v2/mllp-framer.ts';

function collect(max = 1024) {
  const frames: string[] = [];
  const oversize: Array<{ head: string; size: number }> = [];
  const f = createMllpFramer(max, {
    frame: (p) => frames.push(p.toString('latin1')),
    oversize: (h, size) => oversize.push({ head: h.toString('latin1'), size }),
  });
  return { f, frames, oversize };
}

describe('MLLP framer', () => {
  it('reassembles a message split over many packets, one byte at a time', () => {
    const { f, frames } = collect();
    for (const b of frameMllp('MSH|hello\rPID|1')) f.push(Buffer.of(b));
    expect(frames).toEqual(['MSH|hello\rPID|1']);
  });

  it('splits several messages in one packet', () => {
    const { f, frames } = collect();
    f.push(Buffer.concat([frameMllp('one'), frameMllp('two'), frameMllp('three')]));
    expect(frames).toEqual(['one', 'two', 'three']);
  });

  it('drops and counts bytes outside frames', () => {
    const { f, frames } = collect();
    f.push(Buffer.concat([Buffer.from('noise\r\n'), frameMllp('a'), Buffer.from('xx'), frameMllp('b')]));
    expect(frames).toEqual(['a', 'b']);
    expect(f.stats.strayBytes).toBe(9);
  });

  it('keeps an FS not followed by CR as payload, also across packets', () => {
    const { f, frames } = collect();
    f.push(Buffer.from([0x0b, 0x41, 0x1c]));
    f.push(Buffer.from([0x42, 0x1c, 0x43, 0x1c, 0x0d]));
    expect(frames).toEqual(['A\u001cB\u001cC']);
  });

  it('abandons a partial frame when a new start block comes', () => {
    const { f, frames } = collect();
    f.push(Buffer.from([0x0b, 0x41, 0x42]));
    f.push(frameMllp('C'));
    expect(frames).toEqual(['C']);
    expect(f.stats.abandoned).toBe(1);
  });

  it('stops buffering a frame over the limit, reports its size and keeps its head', () => {
    const { f, frames, oversize } = collect(1024);
    const big = 'MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1|P|2.5\r' + 'X'.repeat(10_000);
    const framed = frameMllp(big);
    for (let i = 0; i < framed.length; i += 700) f.push(framed.subarray(i, i + 700));
    f.push(frameMllp('after'));
    expect(oversize).toHaveLength(1);
    expect(oversize[0].size).toBe(Buffer.byteLength(big));
    expect(oversize[0].head.startsWith('MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG1')).toBe(true);
    expect(frames).toEqual(['after']);
    expect(f.pending).toBe(0);
  });

  it('says how many bytes the unfinished frame holds, and the first 4,096 of one over the limit', () => {
    const { f, frames, oversize } = collect(8192);
    expect([f.inFrame, f.pending]).toEqual([false, 0]);
    f.push(Buffer.from('noise'));
    expect([f.inFrame, f.pending]).toEqual([false, 0]);
    f.push(Buffer.concat([frameMllp('one'), Buffer.from([0x0b]), Buffer.from('MSH|two')]));
    expect([f.inFrame, f.pending, frames]).toEqual([true, 7, ['one']]);
    f.push(Buffer.from([0x1c]));
    expect(f.pending).toBe(7);
    f.push(Buffer.alloc(9000, 0x61));
    expect([f.inFrame, f.pending, oversize]).toEqual([true, 4096, []]);
    f.push(Buffer.from([0x1c, 0x0d]));
    expect([f.inFrame, f.pending]).toEqual([false, 0]);
    expect(oversize).toHaveLength(1);
    expect(oversize[0].size).toBe(9008);
    expect(oversize[0].head).toBe('MSH|two\u001c' + 'a'.repeat(4088));
  });

  it('reassembles a frame trickled a byte at a time among larger reads, byte for byte', () => {
    const { f, frames } = collect(1 << 20);
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = 0x20 + ((i * 7) % 90);
    const framed = frameMllp(payload);
    // reads of 1 byte and of 1,500 bytes, alternately (the staging of small reads is crossed by large ones)
    let i = 0;
    let k = 0;
    while (i < framed.length) {
      const n = k++ % 2 === 0 ? 1 : 1500;
      f.push(framed.subarray(i, i + n));
      i += n;
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]).toBe(payload.toString('latin1'));
  });
});
