/**
 * The `fhir[]` rules the schema's shape cannot say (config/rules.ts runs them). PHI travels these
 * connections and the token endpoint receives the gateway's signed assertions: every URL is https,
 * or http to this machine's loopback (a test bench), and carries no user or password.
 */
import type { GatewayConfig } from './schema.ts';

type Add = (path: string, expected: string, found: string, todo: string) => void;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function urlProblem(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return 'text that is not a URL';
  }
  if (u.username || u.password) return 'a URL with a user or password in it';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) return `a ${u.protocol}// URL to ${u.hostname}`;
  return undefined;
}

export function fhirRules(config: GatewayConfig, add: Add): void {
  config.fhir.forEach((f, i) => {
    const at = `fhir[${i}]`;
    const urls: Array<[string, string]> = [
      ['baseUrl', f.baseUrl],
      ['tokenUrl', f.tokenUrl],
      ['jwksUrl', f.jwksUrl],
    ];
    for (const [field, v] of urls) {
      if (!v) continue;
      const p = urlProblem(v);
      if (p)
        add(
          `${at}.${field}`,
          'an https:// URL (http:// only to 127.0.0.1 or localhost, on a test bench)',
          p,
          field === 'baseUrl'
            ? "use the vendor's R4 base URL, https://…; patient data never crosses the network in clear"
            : 'use an https:// URL without credentials in it',
        );
    }
    // Epic, Oracle Health and MEDITECH export by Group (adapters/fhir/vendor-profiles.ts bulkLevel); generic and athenahealth do not
    const level = f.bulk.level ?? (['epic', 'cerner', 'meditech'].includes(f.vendor) ? 'group' : 'system');
    if (level === 'group' && !f.bulk.groupId && f.bulk.mode !== 'never')
      add(
        `${at}.bulk.groupId`,
        `the Group to export (${f.bulk.level ? 'bulk.level is group' : `${f.vendor} exports by Group`})`,
        'nothing',
        'set bulk.groupId to the Group id the vendor gave for the practice (or bulk.mode: never to page through searches only)',
      );
  });
}
