/** Baseline: a bare MLLP server that answers every frame with a fixed ACK and does no work. */
import { createServer } from 'node:net';
import { createMllpFramer, frameMllp } from '../../../adapters/hl7v2/mllp-framer.ts';

const port = Number(process.argv[2]);
const ack = frameMllp('MSH|^~\\&|GW|GW|PMS|CLINIC|20260101||ACK^A04^ACK|1|P|2.5.1\rMSA|AA|1\r');
createServer({ noDelay: true }, (s) => {
  const f = createMllpFramer(10 * 1024 * 1024, { frame: () => s.write(ack), oversize: () => s.destroy() });
  s.on('data', (c: Buffer) => f.push(c));
  s.on('error', () => {});
}).listen(port, '127.0.0.1', () => process.send?.('ready'));
