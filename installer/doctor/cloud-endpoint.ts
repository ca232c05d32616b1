/** Where the configured sink connects, with the TLS settings it uses (mqtt.* or https.*). */
import type { GatewayConfig } from '../../config/schema.ts';

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

/** The sink's endpoint, or undefined for the file sink (nothing leaves the machine). Throws on a URL that does not parse. */
export function cloudEndpointOf(c: GatewayConfig): CloudEndpoint | undefined {
  if (c.relay.sink === 'file') return undefined;
  const s = c.relay.sink === 'mqtt' ? c.mqtt : c.https;
  const u = new URL(s.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    kind: c.relay.sink,
    url: s.url,
    host,
    port: u.port ? Number(u.port) : (DEFAULT_PORT[u.protocol] ?? 443),
    tls: SECURE.has(u.protocol),
    ...(s.ca ? { ca: s.ca } : {}),
    ...(s.cert ? { cert: s.cert } : {}),
    ...(s.key ? { key: s.key } : {}),
    rejectUnauthorized: s.rejectUnauthorized,
  };
}
