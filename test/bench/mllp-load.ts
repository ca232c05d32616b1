/** An MLLP load generator: N connections, each sending one message and waiting for its ACK (as PMS senders do). */
import { connectMllp } from '../../adapters/hl7v2/mllp-client.ts';

export interface LoadResult {
  messages: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  errors: number;
}

export async function runLoad(o: {
  port: number;
  connections: number;
  durationMs: number;
  warmupMs: number;
  message: (conn: number, i: number) => string;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  let counted = 0;
  const clients = await Promise.all(Array.from({ length: o.connections }, () => connectMllp('127.0.0.1', o.port)));
  const loops = clients.map(async (c, ci) => {
    let i = 0;
    while (!stop) {
      const t0 = performance.now();
      try {
        const ack = await c.send(o.message(ci, i++), 10_000);
        if (!ack.includes('MSA|AA')) errors++;
      } catch {
        errors++;
        break;
      }
      if (measuring) {
        latencies.push(performance.now() - t0);
        counted++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, o.warmupMs));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, o.durationMs));
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { messages: counted, seconds, rate: counted / seconds, p50: q(0.5), p99: q(0.99), errors };
}
