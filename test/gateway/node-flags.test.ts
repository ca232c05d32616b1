/**
 * The heap settings reach every gateway process: `npm start` and `npm run gateway` pass the same
 * flags the single executable has built in (gateway/node-flags.ts), and the outbox writer thread
 * runs with its own bounds.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { systemClock } from '../../gateway/clock.ts';
import { createSqliteOutbox } from '../../gateway/outbox/sqlite-outbox.ts';
import { WRITER_RESOURCE_LIMITS } from '../../gateway/outbox/writer-channel.ts';

const root = new URL('../../', import.meta.url).pathname;

describe('heap settings', () => {
  it('npm start and npm run gateway run node with exactly the flags the executable is built with', () => {
    const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const flagsOf = (script: string) => script.split(' ').filter((w) => w.startsWith('--'));
    expect(flagsOf(scripts.start)).toEqual([...GATEWAY_NODE_FLAGS]);
    expect(flagsOf(scripts.gateway)).toEqual([...GATEWAY_NODE_FLAGS]);
    expect(scripts.start).toBe(`node ${GATEWAY_NODE_FLAGS.join(' ')} bin/eyewear-gateway.js start`);
  });

  it('the outbox writer thread runs with its resource limits', async () => {
    let thread: Worker | undefined;
    const box = createSqliteOutbox({
      file: join(mkdtempSync(join(tmpdir(), 'ewml-limits-')), 'outbox.db'),
      maxBytes: 1 << 20,
      clock: systemClock,
      writer: 'thread',
      onWriterThread: (w) => {
        thread = w;
      },
    });
    await box.open();
    try {
      expect(thread?.resourceLimits).toMatchObject(WRITER_RESOURCE_LIMITS);
    } finally {
      await box.close();
    }
  });
});
