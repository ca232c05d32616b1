/**
 * What every SourceCodec must do (adapters/contracts.ts), run against each implementation by its
 * own test file:
 * - `parse` of input that is not well-formed throws a CodecError, never another error (the
 *   pipeline turns a CodecError into a rejection with a reason; anything else is an internal error);
 * - parse → map is deterministic: the same input gives the same records (ids and all), twice;
 * - `describe` is PHI-free: no value from the input's content appears in it (a synthetic message
 *   with recognisable values is the probe; ids meant for logs, like MSH-10, are not content);
 * - `dedupeKey` is stable: the same input gives the same key, and a different message another.
 */
import { describe, expect, it } from 'vitest';
import { CodecError, type MapContext, type SourceCodec } from '../../adapters/contracts.ts';
import { mutate, prng } from '../support/fuzz.ts';

export interface CodecSubject {
  name: string;
  codec: SourceCodec<unknown>;
  /** Well-formed inputs, each mapping to at least one record. */
  samples: string[];
  /** Values in the samples that are PHI (names, MRNs, birth dates, phones …): none may appear in describe(). */
  phi: string[];
  /** Inputs this format must refuse (besides the common garbage the suite tries). */
  garbage?: string[];
  /** Whether the format has resend keys (HL7: MSH-3|MSH-4|MSH-10); row formats have none. */
  dedupes: boolean;
}

const ctx: MapContext = { tenantId: 't-contract', practiceId: 'p-contract', gatewayId: 'gw-contract' };

const COMMON_GARBAGE = [
  '',
  ' ',
  'garbage',
  '{',
  '}',
  'null',
  '[]',
  '42',
  '"text"',
  '{"stream":1}',
  '\u0000\u0001\u0002',
  '\uFEFF',
  'MSH',
  '\r\r\r',
  'x'.repeat(10_000),
];

export function sourceCodecContract(s: CodecSubject): void {
  describe(`SourceCodec contract: ${s.name}`, () => {
    it('has a format', () => {
      expect(typeof s.codec.format).toBe('string');
      expect(s.codec.format.length).toBeGreaterThan(0);
    });

    it('parse of input that is not well-formed throws a CodecError, never another error', () => {
      const rnd = prng(13);
      const fuzzed = s.samples.flatMap((x) => Array.from({ length: 40 }, () => mutate(Buffer.from(x, 'utf8'), rnd).toString('latin1')));
      const cases = [...COMMON_GARBAGE, ...(s.garbage ?? [])];
      for (const g of cases) {
        let thrown: unknown;
        try {
          s.codec.parse(g);
        } catch (e) {
          thrown = e;
        }
        expect(thrown, `parse(${JSON.stringify(g.slice(0, 40))}) did not throw`).toBeInstanceOf(CodecError);
      }
      // a mutated sample may still be well-formed; what it must never do is throw something else
      let refused = 0;
      for (const g of fuzzed) {
        try {
          s.codec.parse(g);
        } catch (e) {
          expect(e, `parse of a mutated sample threw ${(e as Error).name}: ${(e as Error).message}`).toBeInstanceOf(CodecError);
          refused++;
        }
      }
      expect(refused).toBeLessThanOrEqual(fuzzed.length);
    });

    it('parse → map is deterministic: the same input gives the same records, twice', () => {
      for (const x of s.samples) {
        const a = s.codec.map(s.codec.parse(x), ctx);
        const b = s.codec.map(s.codec.parse(x), ctx);
        expect(a.records.length, 'a sample mapped to no record').toBeGreaterThan(0);
        expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      }
    });

    it('describe() carries no value from the input content', () => {
      expect(s.phi.length).toBeGreaterThan(0);
      for (const x of s.samples) {
        const d = JSON.stringify(s.codec.describe(s.codec.parse(x)));
        for (const v of s.phi) if (x.includes(v)) expect(d, `describe() shows "${v}"`).not.toContain(v);
      }
      expect(
        s.samples.some((x) => s.phi.some((v) => x.includes(v))),
        'no PHI probe value is in any sample',
      ).toBe(true);
    });

    it('dedupeKey is stable for one input, and differs between messages where the format has keys', () => {
      const keys = s.samples.map((x) => s.codec.dedupeKey(s.codec.parse(x)));
      expect(s.samples.map((x) => s.codec.dedupeKey(s.codec.parse(x)))).toEqual(keys);
      if (s.dedupes) {
        for (const k of keys) expect(typeof k).toBe('string');
        expect(new Set(keys).size).toBe(keys.length);
      } else {
        expect(keys.every((k) => k === undefined)).toBe(true);
      }
    });
  });
}
