import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../gateway/logger.ts';

describe('logger', () => {
  it('censors PHI-named fields wherever a caller puts them, keeping ids and counts', async () => {
    const lines: string[] = [];
    const dest = new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } });
    const log = createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] }).child({ component: 'test' });
    log.info({ recordId: 'r-1', count: 3, name: { family: 'Synthetic' }, patient: { birthDate: '1980-01-01', phones: ['555-0100'], nested: { given: ['Pat'] } }, data: { sphere: -2.25 } }, 'mapped');
    log.flush();
    await new Promise((r) => setTimeout(r, 50));
    const text = lines.join('');
    for (const phi of ['Synthetic', '1980-01-01', '555-0100', '"Pat"', '-2.25']) expect(text).not.toContain(phi);
    expect(JSON.parse(text)).toMatchObject({ recordId: 'r-1', count: 3, component: 'test', msg: 'mapped', name: '[redacted]', data: '[redacted]' });
  });
});
