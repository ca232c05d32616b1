/**
 * The `apis[]` rules the schema's shape cannot say (config/rules.ts runs them): each entry with
 * its profile folded in must be complete — every entity with its path, rows, key, paging and
 * records, every `{variable}` given, the auth flow's credentials there (adapters/api/resolve.ts
 * is the same check the source makes) — and every URL is https, or http to this machine's
 * loopback, with no user or password in it: patient data and the gateway's credentials travel it.
 */
import { resolveApiSource } from '../adapters/api/resolve.ts';
import { urlProblem } from './fhir-rules.ts';
import type { GatewayConfig } from './schema.ts';

type Add = (path: string, expected: string, found: string, todo: string) => void;

export function apiRules(config: GatewayConfig, add: Add): void {
  config.apis.forEach((c, i) => {
    const at = `apis[${i}]`;
    const { source, problems } = resolveApiSource(c);
    for (const p of problems) add(`${at}.${p.path}`, p.expected, p.found, p.todo);
    const urls: Array<[string, string | undefined]> = [
      ['baseUrl', source?.baseUrl ?? c.baseUrl],
      ['auth.tokenUrl', source?.auth.tokenUrl ?? c.auth.tokenUrl],
    ];
    for (const [field, v] of urls) {
      if (!v) continue;
      const p = urlProblem(v);
      if (p)
        add(
          `${at}.${field}`,
          'an https:// URL (http:// only to 127.0.0.1 or localhost, on a test bench)',
          p,
          'use an https:// URL without credentials in it: patient data never crosses the network in clear',
        );
    }
  });
}
