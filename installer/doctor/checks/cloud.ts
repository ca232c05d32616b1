/**
 * The cloud, step by step, for the configured sink: DNS, TCP, TLS (the server certificate as the
 * sink verifies it, and its expiry), then auth where it can be proved without sending a record:
 * MQTT by a CONNECT with the sink's credentials under a client id of its own (never the gateway's,
 * which would take over its session and cut it off), HTTPS from the running gateway's last
 * delivery (the ingest API has no call that checks a token without records). Each step runs only
 * when the one before passed; the rest are reported skipped, so the first failing step is the answer.
 * A broker that ties client ids to certificates (AWS IoT policies) may refuse doctor's own id where
 * the gateway's is accepted: so while the running gateway's sink is connected, that is the proof.
 */
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import mqtt from 'mqtt';
import { cloudEndpointOf, type CloudEndpoint } from '../cloud-endpoint.ts';
import { tcpAnswers } from '../port-owner.ts';
import { needsConfig, type CheckResult, type DoctorCheck, type DoctorContext, type GatewayProbe } from '../check.ts';

/** A server certificate closer to expiry than this is a warning. */
export const CERT_WARN_DAYS = 14;
const DAY_MS = 86_400_000;

/** MQTT v5 CONNACK reason codes a person can act on (MQTT 5.0 §3.2.2.2). */
const CONNACK: Record<number, string> = {
  128: 'unspecified error',
  133: 'client identifier not valid',
  134: 'bad user name or password',
  135: 'not authorized',
  136: 'server unavailable',
  137: 'server busy',
  138: 'banned',
  140: 'bad authentication method',
};

function tlsStep(ep: CloudEndpoint, address: string, now: number, signal: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = tlsConnect({
      host: address,
      port: ep.port,
      ...(isIP(ep.host) ? {} : { servername: ep.host }),
      ...(ep.ca ? { ca: ep.ca } : {}),
      ...(ep.cert ? { cert: ep.cert } : {}),
      ...(ep.key ? { key: ep.key } : {}),
      // verified below, so an untrusted or expired certificate is still described
      rejectUnauthorized: false,
      ...(ep.kind === 'mqtt' ? { ALPNProtocols: ['mqtt'] } : {}),
    });
    const done = (r: CheckResult) => {
      s.destroy();
      resolve(r);
    };
    const onAbort = () => done({ name: 'cloud tls', status: 'fail', evidence: 'no TLS handshake before the timeout' });
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      const ms = Math.round(performance.now() - t0);
      const cert = s.getPeerCertificate() as PeerCertificate;
      const validTo = cert.valid_to ? Date.parse(cert.valid_to) : Number.NaN;
      const daysLeft = Number.isNaN(validTo) ? null : Math.floor((validTo - now) / DAY_MS);
      const subject = cert.subject?.CN ?? '?';
      const issuer = cert.issuer?.CN ?? '?';
      const data = {
        protocol: s.getProtocol(),
        ms,
        subject,
        issuer,
        validTo: cert.valid_to ?? null,
        daysLeft,
        authorized: s.authorized,
        error: s.authorizationError ? String(s.authorizationError) : null,
      };
      const ev = `${s.getProtocol()} in ${ms} ms; server certificate CN=${subject} from CN=${issuer}, valid to ${cert.valid_to ?? '?'}${daysLeft !== null ? ` (${daysLeft} days left)` : ''}`;
      if (!s.authorized && ep.rejectUnauthorized)
        return done({
          name: 'cloud tls',
          status: 'fail',
          evidence: `${ev}: NOT trusted (${String(s.authorizationError)})`,
          todo: ep.identity
            ? `the broker's certificate is not signed by the CA the enrolment gave (identity/): check ${ep.kind}.url names the enrolled cloud's broker, and the clock`
            : `set ${ep.kind}.ca to the CA that signed the cloud's certificate (from the enrolment), or check the clock and the host name in ${ep.kind}.url`,
          data,
        });
      if (!s.authorized)
        return done({
          name: 'cloud tls',
          status: 'warn',
          evidence: `${ev}; not trusted (${String(s.authorizationError)}) and ${ep.kind}.rejectUnauthorized is false: anyone on the path can read the traffic`,
          todo: `set ${ep.kind}.ca and ${ep.kind}.rejectUnauthorized: true`,
          data,
        });
      if (!ep.rejectUnauthorized)
        return done({
          name: 'cloud tls',
          status: 'warn',
          evidence: `${ev}; ${ep.kind}.rejectUnauthorized is false (verification off)`,
          todo: `set ${ep.kind}.rejectUnauthorized: true`,
          data,
        });
      if (daysLeft !== null && daysLeft < CERT_WARN_DAYS)
        return done({
          name: 'cloud tls',
          status: 'warn',
          evidence: `${ev}: expires within ${CERT_WARN_DAYS} days`,
          todo: 'tell the cloud team: their server certificate is about to expire',
          data,
        });
      done({ name: 'cloud tls', status: 'pass', evidence: ev, data });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      done({
        name: 'cloud tls',
        status: 'fail',
        evidence: `TLS handshake with ${ep.host}:${ep.port} failed: ${e.code ?? e.message}`,
        todo: `check that ${ep.kind}.url names the TLS port (mqtts://…:8883, https://…) and that no proxy intercepts it; a client certificate the server refuses fails here too`,
        data: { code: e.code ?? null },
      });
    });
  });
}

function mqttAuth(ep: CloudEndpoint, ctx: DoctorContext, signal: AbortSignal): Promise<CheckResult> {
  const c = ctx.config!;
  // a client id of its own: the gateway's (ewml-<tenant>-<gateway>) would take over its session
  const clientId = `ewml-${c.gateway.tenantId}-${c.gateway.id}-doctor-${randomBytes(3).toString('hex')}`;
  return new Promise((resolve) => {
    const t0 = performance.now();
    const client = mqtt.connect(ep.url, {
      protocolVersion: 5,
      clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...(c.mqtt.username !== undefined ? { username: c.mqtt.username } : {}),
      ...(c.mqtt.password !== undefined ? { password: c.mqtt.password } : {}),
      ...(ep.ca ? { ca: ep.ca } : {}),
      ...(ep.cert ? { cert: ep.cert } : {}),
      ...(ep.key ? { key: ep.key } : {}),
      rejectUnauthorized: ep.rejectUnauthorized,
    });
    let settled = false;
    const done = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      client.end(true);
      resolve(r);
    };
    const onAbort = () => done({ name: 'cloud auth', status: 'fail', evidence: 'no CONNACK before the timeout' });
    signal.addEventListener('abort', onAbort, { once: true });
    client.once('connect', () =>
      done({
        name: 'cloud auth',
        status: 'pass',
        evidence: `the broker accepted a CONNECT with the sink's credentials${c.mqtt.username ? ` (user ${c.mqtt.username})` : ''}${ep.identity ? ` and the device certificate (generation ${ep.identity})` : ep.cert ? ' and client certificate' : ''} in ${Math.round(performance.now() - t0)} ms (client id ${clientId}; nothing published)`,
        data: { clientId },
      }),
    );
    client.once('error', (e: Error & { code?: number | string }) => {
      const rc = typeof e.code === 'number' ? e.code : undefined;
      done({
        name: 'cloud auth',
        status: 'fail',
        evidence: `the broker refused the CONNECT: ${rc !== undefined ? `reason ${rc} (${CONNACK[rc] ?? 'see MQTT 5.0 §3.2.2.2'})` : (e.code ?? e.message)}`,
        todo:
          rc === 134 || rc === 135 || rc === 140
            ? 'check mqtt.username/mqtt.password or the client certificate (eyewear-gateway enrol gives them); the cloud team can say whether this gateway is revoked'
            : 'see what the broker says; the cloud team can check its log for this client id',
        data: { clientId, reasonCode: rc ?? null },
      });
    });
    client.once('close', () =>
      done({
        name: 'cloud auth',
        status: 'fail',
        evidence: 'the broker closed the connection before CONNACK',
        todo: 'check the credentials and that the URL is an MQTT v5 broker',
      }),
    );
  });
}

function httpsAuth(g: GatewayProbe): CheckResult {
  const name = 'cloud auth';
  if (g.state !== 'answering')
    return {
      name,
      status: 'skip',
      evidence:
        'the HTTPS ingest API has no call that checks the token without sending records, and the gateway is not answering to say how its last delivery went',
    };
  const sink = g.status.sink as { connected?: boolean; detail?: { lastError?: string } };
  const lastError = sink.detail?.lastError ?? (g.status.relay?.lastError as string | undefined);
  if (lastError === 'HTTP 401' || lastError === 'HTTP 403' || lastError === 'GW_SINK_AUTH')
    return {
      name,
      status: 'fail',
      evidence: `the running gateway's last delivery was refused: ${lastError}`,
      todo: 'check https.token and https.url (records stay queued until it is fixed)',
      data: { lastError },
    };
  if (sink.connected)
    return { name, status: 'pass', evidence: "the running gateway's last delivery was acknowledged", data: { connected: true } };
  return {
    name,
    status: 'skip',
    evidence: `no delivery acknowledged yet by this run of the gateway${lastError ? ` (last error ${lastError})` : ''}: the token is proved by the first batch`,
    data: { lastError: lastError ?? null },
  };
}

export const cloudCheck: DoctorCheck = {
  id: 'cloud',
  timeoutMs: 15_000,
  async run(ctx, signal) {
    if (!ctx.config) return [needsConfig('cloud', ctx)];
    const c = ctx.config;
    let ep: CloudEndpoint | undefined;
    try {
      ep = cloudEndpointOf(c, ctx.paths!.dataDir);
    } catch (e) {
      return [
        {
          name: 'cloud',
          status: 'fail',
          evidence: `${c.relay.sink}.url does not parse: ${(e as Error).message}`,
          todo: `fix ${c.relay.sink}.url`,
        },
      ];
    }
    if (!ep)
      return [
        {
          name: 'cloud',
          status: 'skip',
          evidence: `not enrolled: records go to ${ctx.paths!.fileSinkDir} (relay.sink: file)`,
          todo: 'enrol with the cloud to send records there: eyewear-gateway enrol CODE',
        },
      ];
    const results: CheckResult[] = [];
    const skipRest = (from: string[]) => {
      for (const n of from) results.push({ name: `cloud ${n}`, status: 'skip', evidence: 'not tried: an earlier step failed' });
      return results;
    };
    // DNS
    let address = ep.host;
    if (isIP(ep.host))
      results.push({
        name: 'cloud dns',
        status: 'pass',
        evidence: `${ep.host} is an address: no lookup needed`,
        data: { addresses: [ep.host] },
      });
    else {
      const t0 = performance.now();
      try {
        const all = await lookup(ep.host, { all: true });
        address = all[0].address;
        results.push({
          name: 'cloud dns',
          status: 'pass',
          evidence: `${ep.host} → ${all.map((a) => a.address).join(', ')} in ${Math.round(performance.now() - t0)} ms`,
          data: { addresses: all.map((a) => a.address) },
        });
      } catch (e) {
        results.push({
          name: 'cloud dns',
          status: 'fail',
          evidence: `${ep.host} does not resolve: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          todo: `check ${ep.kind}.url's host name and this machine's DNS server (resolvectl status / ipconfig /all)`,
        });
        return skipRest(['tcp', 'tls', 'auth']);
      }
    }
    // TCP
    const tcp = await tcpAnswers(address, ep.port, 5000);
    if (!tcp.ok) {
      results.push({
        name: 'cloud tcp',
        status: 'fail',
        evidence: `${address}:${ep.port} (${ep.host}): ${tcp.code}${tcp.code === 'ECONNREFUSED' ? ' — nothing listens there' : tcp.code === 'ETIMEDOUT' ? ' — no answer (a firewall dropping it?)' : ''}`,
        todo: `ask the practice's IT to allow outgoing TCP to ${ep.host}:${ep.port}; check the port in ${ep.kind}.url`,
        data: { address, port: ep.port, code: tcp.code },
      });
      return skipRest(['tls', 'auth']);
    }
    results.push({
      name: 'cloud tcp',
      status: 'pass',
      evidence: `${address}:${ep.port} accepted a connection in ${tcp.ms} ms`,
      data: { address, port: ep.port, ms: tcp.ms },
    });
    // TLS
    if (!ep.tls)
      results.push({
        name: 'cloud tls',
        status: 'warn',
        evidence: `${ep.url} is not TLS: records and credentials cross the network in clear text`,
        todo: `use ${ep.kind === 'mqtt' ? 'mqtts://' : 'https://'} (plain is for a test bench only)`,
      });
    else {
      const t = await tlsStep(ep, address, ctx.now(), signal);
      results.push(t);
      if (t.status === 'fail') return skipRest(['auth']);
    }
    // auth: a connected running gateway is the proof (its own CONNECT was accepted); else doctor's own CONNECT
    const g = await ctx.gateway();
    const sink = g.state === 'answering' ? (g.status.sink as { kind?: string; connected?: boolean } | undefined) : undefined;
    if (ep.kind === 'mqtt' && sink?.kind === 'mqtt' && sink.connected)
      results.push({
        name: 'cloud auth',
        status: 'pass',
        evidence: "the running gateway's MQTT sink is connected: the broker accepted its credentials (no second connection made)",
        data: { from: 'status' },
      });
    else results.push(ep.kind === 'mqtt' ? await mqttAuth(ep, ctx, signal) : httpsAuth(g));
    return results;
  },
};
