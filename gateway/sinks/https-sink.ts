/**
 * The HTTPS sink: `POST {url}/v1/gateways/{gateway}/records` with the batch as a JWE
 * (`application/jose`) and `Idempotency-Key: <batchId>`. 2xx = acknowledged (the body may list
 * per-record rejections), 408/429/5xx = retry later (Retry-After honoured), 401/403/404/407 =
 * our credentials or URL are wrong (records stay queued: dead-lettering them would punish the
 * records for a config mistake), other 4xx = permanent,
 * network errors = unreachable, timeouts = ambiguous.
 *
 * `stop()` cuts the requests still waiting for the cloud's answer: each rejects as ambiguous (the
 * cloud may have the batch; the relay resends and the cloud drops copies by record id), so a stop
 * never waits out a slow cloud and never reports a batch delivered that was not answered. A send
 * after stop is refused until the next start.
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Clock } from '../clock.ts';
import type { CloudEnvelope } from '../crypto/cloud-envelope.ts';
import { GatewayError } from '../errors.ts';
import { envelopeJson, type BatchAck, type DeliveryResult, type RecordBatch, type Sink } from './sink.ts';

export interface HttpsSinkOptions {
  url: string;
  gatewayId: string;
  tenantId: string;
  token?: string;
  timeoutMs: number;
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  envelope: CloudEnvelope;
  clock: Clock;
}

export function createHttpsSink(opts: HttpsSinkOptions): Sink {
  const endpoint = new URL(`${opts.url.replace(/\/$/, '')}/v1/gateways/${encodeURIComponent(opts.gatewayId)}/records`);
  const secure = endpoint.protocol === 'https:';
  let lastOk = false;
  let lastError = '';
  let stopped = false;
  const inflight = new Set<ClientRequest>();

  function post(body: string, batchId: string): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {
        'content-type': 'application/jose',
        'idempotency-key': batchId,
        'content-length': String(Buffer.byteLength(body)),
      };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const req = (secure ? httpsRequest : httpRequest)(
        endpoint,
        {
          method: 'POST',
          headers,
          timeout: opts.timeoutMs,
          ...(secure ? { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new GatewayError('GW_SINK_TIMEOUT', `no answer from ${endpoint.host} within ${opts.timeoutMs} ms`)),
      );
      req.on('error', reject);
      inflight.add(req);
      req.on('close', () => inflight.delete(req));
      req.end(body);
    });
  }

  return {
    kind: 'https',
    async start() {
      stopped = false; /* connection per request; keep-alive via the global agent */
    },
    async stop() {
      stopped = true;
      const cut = [...inflight];
      inflight.clear();
      // each request's own 'error' handler rejects its deliver with this, before stop resolves
      for (const req of cut)
        req.destroy(
          new GatewayError(
            'GW_SINK_UNREACHABLE',
            `HTTPS sink stopped before ${endpoint.host} answered; the batch is resent (the cloud drops copies by record id)`,
            { retry: 'ambiguous' },
          ),
        );
    },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      if (stopped)
        throw new GatewayError('GW_SINK_UNREACHABLE', 'HTTPS sink stopped; the batch stays queued and is sent after the next start');
      const env = envelopeJson(batch, {
        gatewayId: opts.gatewayId,
        tenantId: opts.tenantId,
        sentAt: new Date(opts.clock.now()).toISOString(),
      });
      const jwe = await opts.envelope.encrypt(Buffer.from(env));
      if (stopped)
        throw new GatewayError('GW_SINK_UNREACHABLE', 'HTTPS sink stopped; the batch stays queued and is sent after the next start');
      let res;
      try {
        res = await post(jwe, batch.batchId);
      } catch (e) {
        lastOk = false;
        if (e instanceof GatewayError) {
          lastError = e.code;
          throw e;
        }
        lastError = (e as NodeJS.ErrnoException).code ?? 'network';
        throw new GatewayError('GW_SINK_UNREACHABLE', `cannot reach ${endpoint.host}: ${lastError}`, { cause: e });
      }
      if (res.status >= 200 && res.status < 300) {
        lastOk = true;
        let ack: BatchAck | undefined;
        try {
          ack = res.text ? (JSON.parse(res.text) as BatchAck) : undefined;
        } catch {
          ack = undefined;
        }
        return { rejected: Array.isArray(ack?.rejected) ? ack.rejected : [] };
      }
      lastOk = false;
      lastError = `HTTP ${res.status}`;
      if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 407) {
        throw new GatewayError('GW_SINK_AUTH', `cloud answered ${res.status}: check the token and URL; records stay queued`);
      }
      if (res.status === 408 || res.status === 429 || res.status >= 500) {
        const retryAfter = Number(res.headers['retry-after']);
        throw new GatewayError('GW_SINK_RETRY_LATER', `cloud answered ${res.status}`, {
          details: Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : undefined,
        });
      }
      throw new GatewayError('GW_SINK_REJECTED', `cloud rejected the batch with HTTP ${res.status}`);
    },
    health: () => ({ connected: lastOk, detail: lastError ? { lastError } : undefined }),
  };
}
