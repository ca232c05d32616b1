/**
 * Hostile input: 100,000 mutated messages (bit flips, truncations, inserted delimiters and NULs,
 * huge fields, deep repetitions) into a gateway running as its own process. It must never crash
 * or hang, answer every complete frame, keep its memory bounded, and keep answering valid traffic
 * on another connection meanwhile. Deterministic: a seeded generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMllp, readAck } from '../../../adapters/hl7v2/mllp-client.ts';
import { frameMllp } from '../../../adapters/hl7v2/mllp-framer.ts';
import { adtA04, siu } from '../../support/hl7-fixtures.ts';
import { freePort, waitForPort } from '../../support/net.ts';
import { mutate, prng } from '../../support/fuzz.ts';

const TOTAL = 100_000;
const CONNECTIONS = 4;
const WINDOW = 32;
const root = new URL('../../../', import.meta.url).pathname;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('MLLP listener under hostile input', () => {
  let child: ChildProcess;
  let port = 0;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewml-fuzz-'));
    port = await freePort();
    const cfg = join(dir, 'gw.yaml');
    writeFileSync(
      cfg,
      `gateway:\n  dataDir: ${dir}/data\n  timezone: UTC\nlog:\n  level: error\nhl7:\n  port: ${port}\n  acknowledgements: original\nadmin:\n  enabled: false\noutbox:\n  maxBytes: 268435456\n  maxDeadLetterBytes: 67108864\n`,
    );
    child = spawn(process.execPath, [join(root, 'bin/eyewear-gateway.js'), 'start', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.resume();
    await waitForPort(port, 20_000);
  });
  afterAll(() => {
    child.kill('SIGKILL');
  });

  it(`answers all of ${TOTAL.toLocaleString('en-US')} mutated messages and keeps serving valid traffic`, { timeout: 600_000 }, async () => {
    const rnd = prng(20261125);
    const bases = [
      Buffer.from(adtA04({ id: 'FZ', in1: true })),
      Buffer.from(siu({ id: 'FZS' })),
      Buffer.from(adtA04({ id: 'FZ2', version: '2.3' })),
    ];
    let made = 0;
    const next = (): Buffer | undefined => (made < TOTAL ? mutate(bases[made++ % bases.length], rnd) : undefined);
    const codes = new Map<string, number>();
    let answered = 0;
    let peakRss = 0;
    const baseRss = rssKb(child.pid!);

    // valid traffic on its own connection all along
    let stop = false;
    let validOk = 0;
    let validBad = 0;
    const valid = (async () => {
      const c = await connectMllp('127.0.0.1', port);
      let i = 0;
      while (!stop) {
        const ack = readAck(await c.send(adtA04({ id: `VALID${i}`, mrn: `V${i++}` }), 30_000));
        if (ack.code === 'AA') validOk++;
        else validBad++;
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.close();
    })();

    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssKb(child.pid!));
    }, 250);
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        const c = await connectMllp('127.0.0.1', port, { maxFrameBytes: 1 << 20 });
        let inFlight = 0;
        const pendingAnswers: Array<Promise<void>> = [];
        for (;;) {
          const m = next();
          if (!m) break;
          c.writeRaw(frameMllp(m));
          inFlight++;
          pendingAnswers.push(
            c.nextAnswer(60_000).then((a) => {
              const code = readAck(a).code || '(none)';
              codes.set(code, (codes.get(code) ?? 0) + 1);
              answered++;
              inFlight--;
            }),
          );
          if (inFlight >= WINDOW) await Promise.race(pendingAnswers.splice(0, 1));
        }
        await Promise.all(pendingAnswers);
        await c.close();
      }),
    );
    clearInterval(sampler);
    stop = true;
    await valid;
    console.log(
      `fuzz: ${answered} answers to ${TOTAL} frames ${JSON.stringify(Object.fromEntries(codes))}; valid connection ${validOk} AA, ${validBad} other; RSS ${Math.round(baseRss / 1024)} → peak ${Math.round(peakRss / 1024)} MiB`,
    );
    expect(child.exitCode).toBeNull();
    expect(answered).toBe(TOTAL);
    expect([...codes.keys()].every((k) => ['AA', 'AE', 'AR'].includes(k))).toBe(true);
    expect(validOk).toBeGreaterThan(10);
    expect(validBad).toBe(0);
    // bounded by the window (4 connections × 32 frames, up to 2 MB each) and the per-connection byte limit, not by the count
    expect(peakRss).toBeLessThan(baseRss + 768 * 1024);
  });
});
