import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../gateway/logger.ts';
import { GatewayError } from '../../gateway/errors.ts';

function capture() {
  const lines: string[] = [];
  const dest = new Writable({
    write(c, _e, cb) {
      lines.push(String(c));
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'] }).child({
    component: 'test',
  });
  return {
    log,
    async text() {
      log.flush();
      await new Promise((r) => setTimeout(r, 50));
      return lines.join('');
    },
    async objects() {
      return (await this.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>);
    },
  };
}

/** Synthetic PHI as an error message might carry it (a database quoting a row, a parser quoting a field). */
const PHI = ['Synthetica Testperson', '1980-01-01', 'MRN-778812', '-2.25'];
const phiText = (tag: string) => `${tag}: row (family, birth_date, mrn)=(Synthetica Testperson, 1980-01-01, MRN-778812) sphere -2.25`;

describe('logger', () => {
  it('censors PHI-named fields wherever a caller puts them, keeping ids and counts', async () => {
    const c = capture();
    c.log.info(
      {
        recordId: 'r-1',
        count: 3,
        name: { family: 'Synthetic' },
        patient: { birthDate: '1980-01-01', phones: ['555-0100'], nested: { given: ['Pat'] } },
        data: { sphere: -2.25 },
      },
      'mapped',
    );
    const text = await c.text();
    for (const phi of ['Synthetic', '1980-01-01', '555-0100', '"Pat"', '-2.25']) expect(text).not.toContain(phi);
    expect(JSON.parse(text)).toMatchObject({
      recordId: 'r-1',
      count: 3,
      component: 'test',
      msg: 'mapped',
      name: '[redacted]',
      data: '[redacted]',
    });
  });

  it("logs an error's class, code and stack frames but not its message text, in the message or the stack", async () => {
    const c = capture();
    const e = Object.assign(new Error(phiText('duplicate key')), { code: '23505', detail: phiText('detail') });
    c.log.error({ err: e, batchId: 'b-1' }, 'commit failed');
    const text = await c.text();
    for (const phi of PHI) expect(text).not.toContain(phi);
    const [line] = await c.objects();
    expect(line).toMatchObject({ msg: 'commit failed', batchId: 'b-1', err: { type: 'Error', code: '23505', message: '[redacted]' } });
    expect(line.err.detail).toBeUndefined();
    const stack = (line.err.stack as string).split('\n');
    expect(stack[0]).toBe('Error: [redacted]');
    // the frames are kept: this test file is on them, the message text is on none
    expect(stack.length).toBeGreaterThan(1);
    expect(stack.slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(stack.some((l) => l.includes('logger.test.ts'))).toBe(true);
  });

  it("follows a cause chain and an AggregateError's errors, redacting each message and stack", async () => {
    const c = capture();
    const inner = Object.assign(new TypeError(phiText('inner')), { code: 'ERR_INVALID_ARG_TYPE' });
    const middle = new Error(phiText('middle'), { cause: inner });
    const outer = new GatewayError('GW_OUTBOX_IO', phiText('outer'), { cause: middle });
    const agg = new AggregateError(
      [new RangeError(phiText('first')), new Error('second\n' + phiText('multi-line')), outer],
      phiText('aggregate'),
    );
    c.log.error({ err: outer }, 'outbox commit failed');
    c.log.warn({ err: agg }, 'several failed');
    c.log.error({ cause: middle, code: 'GW_SOURCE_UNREACHABLE' }, 'poll failed');
    c.log.error(new Error(phiText('alone')));
    const text = await c.text();
    for (const phi of PHI) expect(text).not.toContain(phi);
    for (const tag of ['inner', 'middle', 'outer', 'first', 'second', 'multi-line', 'aggregate', 'alone'])
      expect(text).not.toContain(`${tag}:`);
    const [a, b, d, e] = await c.objects();
    expect(a.err).toMatchObject({
      type: 'GatewayError',
      code: 'GW_OUTBOX_IO',
      retry: 'transient',
      message: '[redacted]',
      cause: { type: 'Error', message: '[redacted]', cause: { type: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: '[redacted]' } },
    });
    expect(a.err.stack.split('\n')[0]).toBe('GatewayError: [redacted]');
    expect(a.err.cause.cause.stack.split('\n')[0]).toBe('TypeError: [redacted]');
    expect(b.err).toMatchObject({ type: 'AggregateError', message: '[redacted]' });
    expect(b.err.errors.map((x: { type: string }) => x.type)).toEqual(['RangeError', 'Error', 'GatewayError']);
    expect(
      b.err.errors[1].stack
        .split('\n')
        .slice(1)
        .every((l: string) => /^\s+at /.test(l)),
    ).toBe(true);
    expect(b.err.errors[2].cause.cause.type).toBe('TypeError');
    expect(d).toMatchObject({
      code: 'GW_SOURCE_UNREACHABLE',
      cause: { type: 'Error', message: '[redacted]', cause: { type: 'TypeError' } },
    });
    expect(e).toMatchObject({ msg: 'Error (message not logged)', err: { type: 'Error', message: '[redacted]' } });
  });

  it('keeps a circular cause chain from looping', async () => {
    const c = capture();
    const x = new Error(phiText('x'));
    const y = new Error(phiText('y'), { cause: x });
    (x as { cause?: unknown }).cause = y;
    c.log.error({ err: y }, 'loop');
    const [line] = await c.objects();
    expect(line.err.cause.cause).toBe('[circular or too deep]');
    for (const phi of PHI) expect(JSON.stringify(line)).not.toContain(phi);
  });
});
