import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPartitionKeyer } from '../../../gateway/crypto/partition-keyer.ts';

describe('partition keys as keyed hashes', () => {
  const key = randomBytes(32);
  const keyOf = createPartitionKeyer(key);

  it('is the same for the same patient and holds none of the identifier', () => {
    const k = keyOf('patient:NORTHVIEW|MRN123456');
    expect(k).toBe(keyOf('patient:NORTHVIEW|MRN123456'));
    expect(k).toMatch(/^h:[A-Za-z0-9_-]{43}$/);
    expect(k).not.toContain('MRN123456');
    expect(k).not.toContain('NORTHVIEW');
    expect(keyOf('patient:NORTHVIEW|MRN123457')).not.toBe(k);
  });

  it('depends on the seal key, and leaves a key already hashed as it is', () => {
    expect(createPartitionKeyer(randomBytes(32))('patient:A|1')).not.toBe(keyOf('patient:A|1'));
    const once = keyOf('patient:A|1');
    expect(keyOf(once)).toBe(once);
  });
});
