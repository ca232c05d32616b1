/**
 * Where the configured sink connects, with the TLS material it uses: `mqtt.*`/`https.*`, or — for
 * the MQTT sink of an enrolled data folder whose config names no client certificate — the device
 * identity's certificate, key and broker CA, as gateway/sinks/index.ts gives the sink.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { readIdentity, type DeviceIdentity } from '../../gateway/identity/identity-store.ts';

export interface CloudEndpoint {
  kind: 'mqtt' | 'https';
  url: string;
  host: string;
  port: number;
  tls: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  /** The TLS material is the enrolled device identity's (its generation). */
  identity?: string;
}

const DEFAULT_PORT: Record<string, number> = {
  'mqtts:': 8883,
  'ssl:': 8883,
  'tls:': 8883,
  'mqtt:': 1883,
  'tcp:': 1883,
  'wss:': 443,
  'ws:': 80,
  'https:': 443,
  'http:': 80,
};
const SECURE = new Set(['mqtts:', 'ssl:', 'tls:', 'wss:', 'https:']);

/** The enrolled identity of a data folder, or undefined (absent, damaged or unreadable: the device certificate check says which). */
export function enrolledIdentity(dataDir: string): DeviceIdentity | undefined {
  try {
    const r = readIdentity(dataDir);
    return r.state === 'present' ? r.identity : undefined;
  } catch {
    return undefined;
  }
}

/** The sink's endpoint, or undefined for the file sink (nothing leaves the machine). Throws on a URL that does not parse. */
export function cloudEndpointOf(c: GatewayConfig, dataDir: string): CloudEndpoint | undefined {
  if (c.relay.sink === 'file') return undefined;
  const s = c.relay.sink === 'mqtt' ? c.mqtt : c.https;
  const u = new URL(s.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const id = c.relay.sink === 'mqtt' && !c.mqtt.cert ? enrolledIdentity(dataDir) : undefined;
  const ca = id?.brokerCaPem ?? s.ca;
  const cert = id?.certPem ?? s.cert;
  const key = id?.keyPem ?? s.key;
  return {
    kind: c.relay.sink,
    url: s.url,
    host,
    port: u.port ? Number(u.port) : (DEFAULT_PORT[u.protocol] ?? 443),
    tls: SECURE.has(u.protocol),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: s.rejectUnauthorized,
    ...(id ? { identity: id.generation } : {}),
  };
}
