/**
 * The clock against the cloud's: the `Date` header of an HTTPS answer (RFC 9110 §6.6.1, one-second
 * resolution), taken at the midpoint of the request. Warn past {@link CLOCK_WARN_MS}; fail past the
 * smallest tolerance of what this config verifies or signs with time limits: signed cloud commands
 * (iat/exp ± gateway/commands/command-verifier.ts SKEW_S), CDS Hooks JWTs (CLOCK_TOLERANCE_S),
 * SMART backend assertions (they expire ASSERTION_LIFETIME_S after the time we write into them).
 * MQTT carries no time, so with the MQTT sink the enrolment endpoint's answer (the enrolled cloud's
 * HTTPS URL, verified with the cloud CA the enrolment gave) is used, else the update manifest URL's.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ASSERTION_LIFETIME_S } from '../../../adapters/http/smart-backend.ts';
import type { GatewayConfig } from '../../../config/schema.ts';
import { CLOCK_TOLERANCE_S } from '../../../gateway/cds-hooks/token-verifier.ts';
import { SKEW_S } from '../../../gateway/commands/command-verifier.ts';
import { needsConfig, type DoctorCheck } from '../check.ts';
import { enrolledIdentity } from '../cloud-endpoint.ts';

export const CLOCK_WARN_MS = 5000;

/** The tolerances this config depends on, smallest first; signed commands' always (the cloud may enable them). */
export function clockTolerances(c: GatewayConfig): { what: string; seconds: number }[] {
  const t = [{ what: 'signed cloud commands (iat/exp)', seconds: SKEW_S }];
  if (c.cdsHooks.enabled) t.push({ what: 'CDS Hooks JWTs', seconds: CLOCK_TOLERANCE_S });
  if (c.fhir.length) t.push({ what: 'SMART backend assertions (their lifetime)', seconds: ASSERTION_LIFETIME_S });
  return t.sort((a, b) => a.seconds - b.seconds);
}

export interface ServerTime {
  offsetMs: number;
  /** Half the round trip plus the header's half-second resolution. */
  uncertaintyMs: number;
  status: number;
  date: string;
}

/** Asks `url` (HEAD) for its Date header; the offset is server minus this machine. */
export function serverTime(
  url: string,
  tls: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean },
  signal: AbortSignal,
): Promise<ServerTime> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = (secure ? httpsRequest : httpRequest)(u, { method: 'HEAD', signal, ...(secure ? tls : {}) }, (res) => {
      const t1 = Date.now();
      res.resume();
      const date = res.headers.date;
      const at = date ? Date.parse(date) : Number.NaN;
      if (!date || Number.isNaN(at)) return reject(new Error(`${u.host} answered HTTP ${res.statusCode} without a Date header`));
      resolve({
        offsetMs: Math.round(at + 500 - (t0 + t1) / 2),
        uncertaintyMs: Math.round((t1 - t0) / 2 + 500),
        status: res.statusCode ?? 0,
        date,
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export const clockCheck: DoctorCheck = {
  id: 'clock',
  timeoutMs: 8000,
  async run(ctx, signal) {
    const name = 'clock';
    if (!ctx.config) return [needsConfig(name, ctx)];
    const c = ctx.config;
    const enrolled = ctx.paths ? enrolledIdentity(ctx.paths.dataDir) : undefined;
    const source =
      c.relay.sink === 'https'
        ? {
            url: c.https.url,
            tls: {
              ...(c.https.ca ? { ca: c.https.ca } : {}),
              ...(c.https.cert ? { cert: c.https.cert } : {}),
              ...(c.https.key ? { key: c.https.key } : {}),
              rejectUnauthorized: c.https.rejectUnauthorized,
            },
          }
        : enrolled
          ? {
              url: enrolled.record.cloudUrl,
              tls: { ...(enrolled.cloudCaPem ? { ca: enrolled.cloudCaPem } : {}), rejectUnauthorized: true },
            }
          : c.updates.manifestUrl
            ? { url: c.updates.manifestUrl, tls: { rejectUnauthorized: true } }
            : undefined;
    if (!source)
      return [
        {
          name,
          status: 'skip',
          evidence:
            c.relay.sink === 'file'
              ? 'not enrolled (file sink): no cloud to compare the clock with'
              : 'the MQTT broker tells no time, the data folder is not enrolled (no enrolment URL) and no updates.manifestUrl is set: no cloud time to compare with',
          todo: 'check the clock is synchronised: timedatectl (Linux) or w32tm /query /status (Windows)',
        },
      ];
    let t: ServerTime;
    try {
      t = await serverTime(source.url, source.tls, signal);
    } catch (e) {
      return [
        {
          name,
          status: 'warn',
          evidence: `could not read the time of ${new URL(source.url).host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          todo: 'see the cloud checks; check the clock is synchronised: timedatectl or w32tm /query /status',
        },
      ];
    }
    const tol = clockTolerances(c);
    const limit = tol[0];
    const abs = Math.abs(t.offsetMs);
    const data = {
      offsetMs: t.offsetMs,
      uncertaintyMs: t.uncertaintyMs,
      against: source.url,
      serverDate: t.date,
      warnMs: CLOCK_WARN_MS,
      failMs: limit.seconds * 1000,
      tolerances: tol,
    };
    const ev = `this machine is ${abs} ms ${t.offsetMs > 0 ? 'behind' : 'ahead of'} ${new URL(source.url).host} (±${t.uncertaintyMs} ms, its Date header ${t.date})`;
    const sync =
      'synchronise the clock: timedatectl set-ntp true (Linux) or w32tm /resync (Windows), and check the NTP server is reachable';
    if (abs > limit.seconds * 1000)
      return [{ name, status: 'fail', evidence: `${ev}: more than the ${limit.seconds} s that ${limit.what} tolerate`, todo: sync, data }];
    if (abs > CLOCK_WARN_MS) return [{ name, status: 'warn', evidence: `${ev}: more than ${CLOCK_WARN_MS / 1000} s`, todo: sync, data }];
    return [{ name, status: 'pass', evidence: ev, data }];
  },
};
