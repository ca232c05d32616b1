import { describe, expect, it } from 'vitest';
import { admitDeadLetters, admitEntry, admitPage, type AdmissionTotals, type ResendLog } from '../../../gateway/outbox/admission.ts';

/** A resend log over a map that records which calls admission made. */
function log(held: Record<string, string> = {}) {
  const calls: string[] = [];
  const map = new Map(Object.entries(held));
  const l: ResendLog = {
    lookup: (k) => {
      calls.push(`lookup ${k}`);
      return map.get(k);
    },
    claim: (k, h) => {
      calls.push(`claim ${k}`);
      const p = map.get(k);
      if (p === undefined) map.set(k, h);
      return p;
    },
  };
  return { l, calls, map };
}

const at = (bytes: number, deadBytes = 0): AdmissionTotals => ({ bytes, deadBytes, maxBytes: 1000, maxDeadLetterBytes: 250 });

describe('outbox admission', () => {
  it('answers a resend from the resend log before the cap, and only looks (claims nothing) when the entry does not fit', () => {
    const { l, calls, map } = log({ k1: 'h1' });
    expect(admitEntry({ bytes: 100, dedupe: { key: 'k1', hash: 'h1' } }, at(950), l)).toBe('duplicate');
    expect(admitEntry({ bytes: 100, dedupe: { key: 'k1', hash: 'h2' } }, at(950), l)).toBe('conflict');
    expect(admitEntry({ bytes: 100, dedupe: { key: 'k2', hash: 'h' } }, at(950), l)).toBe('full');
    expect(calls).toEqual(['lookup k1', 'lookup k1', 'lookup k2']);
    // refused as full: not remembered, so the resend is taken once there is room
    expect(map.has('k2')).toBe(false);
    expect(admitEntry({ bytes: 100, dedupe: { key: 'k2', hash: 'h' } }, at(900), l)).toBe('accepted');
    expect(map.get('k2')).toBe('h');
    expect(calls.at(-1)).toBe('claim k2');
  });

  it('takes an entry that reaches the cap exactly, and refuses one byte more', () => {
    const { l } = log();
    expect(admitEntry({ bytes: 100 }, at(900), l)).toBe('accepted');
    expect(admitEntry({ bytes: 101 }, at(900), l)).toBe('full');
  });

  it('refuses a page whose dead letters break their share even with room under the cap, and one past the cap', () => {
    expect(admitPage({ bytes: 300, deadBytes: 300 }, at(0))).toBe('full');
    expect(admitPage({ bytes: 300, deadBytes: 200 }, at(0, 0))).toBe('accepted');
    expect(admitPage({ bytes: 300, deadBytes: 200 }, at(0, 100))).toBe('full');
    expect(admitPage({ bytes: 300, deadBytes: 0 }, at(800))).toBe('full');
  });

  it('counts the bytes a settled row frees when its refused records become dead letters', () => {
    expect(admitDeadLetters(200, at(950), 0)).toBe(false);
    expect(admitDeadLetters(200, at(950), 200)).toBe(true);
    expect(admitDeadLetters(200, at(950, 100), 200)).toBe(false);
  });
});
