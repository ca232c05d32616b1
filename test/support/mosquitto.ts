/**
 * Starts a real mosquitto on 127.0.0.1 (a free port) for one test file. `max_queued_messages 0`
 * (unlimited) because the default of 1000 silently drops QoS 1 messages queued for a slow or
 * offline persistent subscriber — the cloud's broker needs the same setting (README "Cloud").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureService } from './services.ts';
import { freePort, waitForPort } from './net.ts';

export interface Broker {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface MosquittoOptions {
  /** `crlFile`: a PEM CRL's path (readable by the mosquitto user), re-read at each (re)start: client certificates it lists are refused. */
  tls?: { ca: string; cert: string; key: string; requireClientCert?: boolean; crlFile?: string };
  /**
   * mosquitto's `max_packet_size`: announced to MQTT v5 clients in CONNACK (Maximum Packet Size),
   * and any client that sends a larger packet is disconnected — as a managed broker with a
   * packet limit does (AWS IoT Core: 128 KB).
   */
  maxPacketSize?: number;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Broker> {
  const bin = ensureService('mosquitto');
  const dir = mkdtempSync(join(tmpdir(), 'ewml-mosq-'));
  // started as root, mosquitto drops to its own user: it must be able to read (and persist) here
  chmodSync(dir, 0o777);
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'autosave_interval 1',
    'max_queued_messages 0',
    'max_inflight_messages 0',
    'max_queued_bytes 0',
    'log_dest none',
    'set_tcp_nodelay true',
  ];
  if (opts.maxPacketSize !== undefined) lines.push(`max_packet_size ${opts.maxPacketSize}`);
  if (opts.tls) {
    for (const [f, text] of [
      ['ca.pem', opts.tls.ca],
      ['cert.pem', opts.tls.cert],
      ['key.pem', opts.tls.key],
    ] as const)
      writeFileSync(join(dir, f), text, { mode: 0o644 });
    lines.push(`cafile ${dir}/ca.pem`, `certfile ${dir}/cert.pem`, `keyfile ${dir}/key.pem`);
    if (opts.tls.requireClientCert) lines.push('require_certificate true');
    if (opts.tls.crlFile) lines.push(`crlfile ${opts.tls.crlFile}`);
  }
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    kill: async () => {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null)
        await new Promise<void>((r) => {
          c.once('exit', () => r());
          c.kill('SIGKILL');
        });
    },
  };
}
