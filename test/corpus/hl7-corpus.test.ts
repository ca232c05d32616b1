/**
 * Every HL7 v2 message of the public corpus (../shared/corpus/hl7v2) through a real MLLP listener:
 * no crash, every frame answered, each answer AA (mapped or ignored) or AE/AR with a reason.
 * Prints a count per message type and answer.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHl7, readAck, splitHl7Messages } from '../../adapters/hl7v2/index.ts';
import { corpus as sharedCorpus } from '../support/corpus.ts';
import { startHarness, type Harness } from '../support/gateway-harness.ts';

const corpus = sharedCorpus.path('hl7v2');
const present = sharedCorpus.present;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => { const p = join(dir, n); return statSync(p).isDirectory() ? files(p) : [p]; });
}

/** Appends `-n` to MSH-10 (in the message's own field separator); leaves unparseable headers alone. */
function uniqueControlId(m: string, n: number): string {
  if (!m.startsWith('MSH') || m.length < 8) return m;
  const f = m[3];
  const end = m.search(/[\r\n]/);
  const line = end === -1 ? m : m.slice(0, end);
  const parts = line.split(f);
  if (parts.length < 10 || !parts[9]) return m;
  parts[9] = `${parts[9]}-${n}`;
  return parts.join(f) + (end === -1 ? '' : m.slice(end));
}

describe.skipIf(!present)('HL7 corpus through the MLLP listener', () => {
  let h: Harness;
  // original mode: one answer per message, whatever MSH-15/16 say (enhanced mode has its own tests)
  beforeAll(async () => { h = await startHarness({ hl7: { acknowledgements: 'original' } }, { logLevel: 'warn' }); });
  afterAll(async () => { await h.stop(); });

  it('answers every message, with AA, AE or AR and a reason', { timeout: 120_000 }, async () => {
    const c = await h.client();
    const counts = new Map<string, number>();
    let total = 0;
    for (const f of files(corpus)) {
      const raw = readFileSync(f);
      // bytes as on the wire: a file's messages one per frame, in the file's own encoding; a UTF-8
      // byte-order mark stays in front of the first frame, as a sender would send it
      const bom = raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;
      let first = true;
      for (const original of splitHl7Messages(raw.subarray(bom ? 3 : 0).toString('latin1'))) {
        total++;
        const prefix = bom && first ? '\u00ef\u00bb\u00bf' : '';
        first = false;
        // the corpus reuses control ids (MSG00001) across unrelated files from the "same" sender:
        // give each a unique one, or they would (rightly) be answered AR as reused ids
        const m = uniqueControlId(original, total);
        const ack = readAck(await c.send(Buffer.from(prefix + m, 'latin1'), 10_000));
        expect(['AA', 'AE', 'AR']).toContain(ack.code);
        if (ack.code !== 'AA') { expect(ack.err, `${f}: ${ack.code} without ERR`).toBeTruthy(); if (process.env.CORPUS_VERBOSE) console.log(f.replace(corpus, ''), ack.code, ack.err); }
        let type = '?';
        try { type = parseHl7(m).header.messageCode; } catch { /* not well-formed: counted under '?' */ }
        const key = `${type || '?'} ${ack.code}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    const s = h.gw.status() as { counts: Record<string, number> };
    console.log(`HL7 corpus: ${total} messages from ${files(corpus).length} files\n` + [...counts].sort().map(([k, v]) => `  ${k}: ${v}`).join('\n') + `\n  gateway counts: ${JSON.stringify(s.counts)}`);
    expect(total).toBeGreaterThan(150);
    expect(s.counts.accepted + s.counts.duplicate + s.counts.ignored + s.counts.rejected).toBe(total);
  });
});
