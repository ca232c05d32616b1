/**
 * A TCP fault proxy for tests: listens on 127.0.0.1 (a free port) and forwards every connection to
 * a target on 127.0.0.1, so a test can break the path between a client (the gateway's MQTT sink)
 * and a real server (mosquitto) the way networks and managed brokers do — without mocking either
 * side. Modes:
 *   pass   bytes flow both ways (the default)
 *   stall  connections stay open but no byte moves in either direction (a hung broker or a
 *          black-holed route: the client only notices through its own timeouts); bytes read
 *          meanwhile are held and delivered, in order, when the proxy passes again
 *   refuse new connections are closed at once (the broker is unreachable)
 * `cutAll()` destroys every open connection now (a reset in the middle of whatever was in flight).
 * Loopback only: it never listens on or connects to anything else.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'stall' | 'refuse';

export interface FaultProxy {
  /** The port clients connect to. */
  port: number;
  url(scheme: string): string;
  setMode(mode: FaultMode): void;
  mode(): FaultMode;
  /** Destroys every open connection (both sides); returns how many pairs were cut. */
  cutAll(): number;
  /** Connections accepted and cuts made so far. */
  stats(): { accepted: number; cuts: number; open: number };
  stop(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
  held: { up: Buffer[]; down: Buffer[] };
}

export async function startFaultProxy(o: { targetPort: number }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  const pairs = new Set<Pair>();
  const counts = { accepted: 0, cuts: 0 };

  const flush = (p: Pair) => {
    for (const b of p.held.up.splice(0)) p.server.write(b);
    for (const b of p.held.down.splice(0)) p.client.write(b);
  };

  const server: Server = createServer((client) => {
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    counts.accepted++;
    client.setNoDelay(true);
    const upstream = connect({ host: '127.0.0.1', port: o.targetPort });
    upstream.setNoDelay(true);
    const p: Pair = { client, server: upstream, held: { up: [], down: [] } };
    pairs.add(p);
    const close = () => {
      if (!pairs.delete(p)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (b: Buffer) => {
      if (mode === 'stall') p.held.up.push(b);
      else upstream.write(b);
    });
    upstream.on('data', (b: Buffer) => {
      if (mode === 'stall') p.held.down.push(b);
      else client.write(b);
    });
    for (const s of [client, upstream]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;

  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    setMode(m) {
      mode = m;
      if (m === 'pass') for (const p of pairs) flush(p);
    },
    mode: () => mode,
    cutAll() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        pairs.delete(p);
        p.client.destroy();
        p.server.destroy();
      }
      counts.cuts += n;
      return n;
    },
    stats: () => ({ ...counts, open: pairs.size }),
    async stop() {
      for (const p of [...pairs]) {
        pairs.delete(p);
        p.client.destroy();
        p.server.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
