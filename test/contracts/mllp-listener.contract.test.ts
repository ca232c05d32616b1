/** The MLLP listener against the SourceAdapter contract: real TCP on loopback. */
import { createServer } from 'node:net';
import { connectMllp } from '../../adapters/hl7v2/mllp-client.ts';
import { readAck } from '../../adapters/hl7v2/mllp-client.ts';
import { createMllpListener } from '../../adapters/hl7v2/mllp-listener.ts';
import { adtA04 } from '../support/hl7-fixtures.ts';
import { freePort } from '../support/net.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

const listener = (port: number) =>
  createMllpListener({ id: 'hl7v2-contract', host: '127.0.0.1', port, maxFrameBytes: 1 << 20, idleTimeoutMs: 30_000, maxConnections: 8 });

sourceAdapterContract({
  name: 'MLLP listener',
  whileStopped: 'refused',
  async make() {
    const port = await freePort();
    const adapter = listener(port);
    return {
      adapter,
      async feed(n) {
        const c = await connectMllp('127.0.0.1', port);
        try {
          const ack = readAck(await c.send(adtA04({ id: tagOf(n) }), 10_000));
          if (ack.code !== 'AA') throw new Error(`MLLP listener answered ${ack.code} for ${tagOf(n)}`);
        } finally {
          await c.close();
        }
      },
      cleanup: () => adapter.stop(),
    };
  },
  async failing() {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', () => resolve()));
    const adapter = listener(port);
    const free = () =>
      new Promise<void>((resolve) => {
        if (!blocker.listening) {
          resolve();
          return;
        }
        blocker.close(() => resolve());
      });
    return {
      adapter,
      fix: free,
      async cleanup() {
        await adapter.stop();
        await free();
      },
    };
  },
});
