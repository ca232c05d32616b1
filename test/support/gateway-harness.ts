/** Builds a real gateway (real sockets, SQLite in a temp folder) on free ports for a test. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { validateConfig } from '../../config/load.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import { createLogger } from '../../gateway/logger.ts';
import { createGateway, type Gateway } from '../../gateway/create-gateway.ts';
import type { MllpListener } from '../../adapters/hl7v2/mllp-listener.ts';
import { connectMllp, type MllpClient } from '../../adapters/hl7v2/mllp-client.ts';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface Harness {
  gw: Gateway;
  config: GatewayConfig;
  dataDir: string;
  mllpPort: number;
  adminPort: number;
  /** Every log line written so far. */
  logs: string[];
  client(): Promise<MllpClient>;
  stop(): Promise<void>;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over))
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) ? merge((out[k] as Record<string, unknown>) ?? {}, v as Record<string, unknown>) : v;
  return out;
}

export async function startHarness(
  overrides: DeepPartial<GatewayConfig> = {},
  opts: { dataDir?: string; logLevel?: string; onOutboxWriterThread?: (w: Worker) => void } = {},
): Promise<Harness> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'ewml-gw-'));
  const raw = merge(
    {
      gateway: { dataDir, timezone: 'UTC' },
      hl7: { port: 0 },
      admin: { port: 0 },
      relay: { idlePollMs: 50, backoffInitialMs: 20, backoffMaxMs: 200 },
    },
    overrides as Record<string, unknown>,
  );
  const v = validateConfig(raw);
  if (!v.ok) throw new Error(`bad test config: ${JSON.stringify(v.problems)}`);
  const logs: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger({
    level: opts.logLevel ?? 'debug',
    destination: dest as unknown as Parameters<typeof createLogger>[0]['destination'],
  });
  const gw = await createGateway({ config: v.config, logger, onOutboxWriterThread: opts.onOutboxWriterThread });
  await gw.start();
  const mllp = gw.parts.adapters.find((a) => a.id === 'hl7v2') as MllpListener | undefined;
  const mllpPort = mllp?.address()?.port ?? 0;
  const adminPort = gw.parts.admin?.address()?.port ?? 0;
  const clients: MllpClient[] = [];
  return {
    gw,
    config: v.config,
    dataDir,
    mllpPort,
    adminPort,
    logs,
    async client() {
      const c = await connectMllp('127.0.0.1', mllpPort);
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      await gw.stop();
    },
  };
}
