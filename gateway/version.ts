/** The gateway's version: injected at build time for the single executable, else read from package.json. */
import { readFileSync } from 'node:fs';

declare const __GATEWAY_VERSION__: string | undefined;

export function gatewayVersion(): string {
  if (typeof __GATEWAY_VERSION__ === 'string') return __GATEWAY_VERSION__;
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0-unknown';
  }
}
