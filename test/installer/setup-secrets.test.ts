/** setup's last check that no secret reaches the YAML (installer/setup/write-config.ts `secretIn`). */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { secretIn } from '../../installer/setup/write-config.ts';

const doc = parse(`
databases:
  - id: pms
    database: pms
    port: 5432
    user: postgres
    password: \${file:/var/lib/eyewear-gateway/credentials/pms.password}
`);

describe('secretIn', () => {
  it('a password that is also the database name, the user or a port is not a leak (a substring test refused these)', () => {
    expect([secretIn(doc, 'password', 'pms'), secretIn(doc, 'password', 'postgres'), secretIn(doc, 'password', '5432')]).toEqual([
      false,
      false,
      false,
    ]);
  });

  it('the secret as its own field is a leak, and a long secret anywhere is one', () => {
    const leaked = parse('databases:\n  - id: pms\n    password: pms\n    note: correct-horse-battery\n');
    expect(secretIn(leaked, 'password', 'pms')).toBe(true);
    expect(secretIn(leaked, 'password', 'correct-horse-battery')).toBe(true);
    expect(secretIn(leaked, 'password', '')).toBe(false);
  });
});
