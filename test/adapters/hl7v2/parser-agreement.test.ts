/**
 * Our HL7 parser against a published one (@medplum/core's Hl7Message) on the public corpus: every
 * message both accept must agree segment by segment, field by field (raw field text).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7Message } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import { parseHl7, splitHl7Messages } from '../../../adapters/hl7v2/index.ts';
import { corpus as sharedCorpus } from '../../support/corpus.ts';

const corpus = sharedCorpus.path('hl7v2');
const present = sharedCorpus.present;
const files = (d: string): string[] =>
  readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });

describe.skipIf(!present)('HL7 parser agreement with @medplum/core on the corpus', () => {
  it('agrees on every field of every message both parse', () => {
    let both = 0;
    let onlyTheirs = 0;
    const diffs: string[] = [];
    for (const f of files(corpus)) {
      for (const m of splitHl7Messages(readFileSync(f).toString('utf8'))) {
        let ours;
        let theirs;
        try {
          ours = parseHl7(m);
        } catch {
          ours = undefined;
        }
        try {
          theirs = Hl7Message.parse(m);
        } catch {
          theirs = undefined;
        }
        if (!ours || !theirs) {
          if (theirs) onlyTheirs++;
          continue;
        }
        both++;
        expect(
          ours.segments.map((s) => s.name),
          f,
        ).toEqual(theirs.segments.map((s) => s.name));
        ours.segments.forEach((sa, i) => {
          const sb = theirs.segments[i];
          for (let k = sa.name === 'MSH' ? 3 : 1; k < Math.max(sa.fields.length, sb.fields.length + 1); k++) {
            const a = sa.fields[k] ?? '';
            const b = sb.getField(k)?.toString() ?? '';
            if (a !== b) diffs.push(`${f}: ${sa.name}-${k}`);
          }
        });
      }
    }
    console.log(
      `parser agreement: ${both} messages parsed by both, ${diffs.length} field differences; ${onlyTheirs} accepted only by @medplum/core (lines broken inside a field: we answer AR)`,
    );
    expect(both).toBeGreaterThan(150);
    expect(diffs).toEqual([]);
  });
});
