/**
 * The local admin API (Fastify), on 127.0.0.1 by default. `/health` and `/ready` are open (for
 * service managers and probes); everything else needs `Authorization: Bearer <token>`.
 * Responses carry ids, counts and codes — never record contents.
 *
 * Every response (a 401 and a 404 too) carries {@link GATEWAY_HEADER} with the gateway's id, so a
 * client (`eyewear-gateway status`) can tell this gateway from another program on the same port, and
 * from another gateway whose token is not the one in its data folder.
 */
import type { ReloadOutcome } from '../create-gateway.ts';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { IntakeResult } from '../../adapters/contracts.ts';
import type { Acknowledgement } from '../alerts.ts';
import { ErrorCodes, type ErrorCode } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { DeadLetterStore, RecordQueue } from '../outbox/outbox.ts';
import { tokenMatches } from './admin-token.ts';

export interface AdminServerOptions {
  host: string;
  port: number;
  token: string;
  logger: Logger;
  metrics: Metrics;
  /** The dead-letter routes' store (and the queue's stats, for the total). */
  outbox: DeadLetterStore & Pick<RecordQueue, 'stats'>;
  /** The whole status document (composed by the gateway). */
  status: () => Record<string, unknown>;
  ready: () => { ready: boolean; reasons: string[] };
  replay: (id: string) => Promise<IntakeResult | undefined>;
  /** A person acknowledges an alert that records a past event (a salvaged outbox); conditions still true clear themselves. */
  acknowledgeAlert?: (key: string) => Acknowledgement;
  /** One agent's report (`GET /agents/:id`: state, health, active findings, what it did); undefined for an agent not running here. */
  agentReport?: (id: string) => Record<string, unknown> | undefined;
  /** The gateway's id for {@link GATEWAY_HEADER} (default: `gateway.id` of the status document, read once). */
  gatewayId?: string;
  /** Reads the config file again and applies it (validate → plan → apply); absent when the gateway has no file to read. */
  reloadConfig?: () => Promise<ReloadOutcome>;
  /** A FHIR source's public JWKS (its client key's public half), served without a token for vendors that fetch it. */
  fhirJwks?: (sourceId: string) => string | undefined;
}

/** The response header naming the gateway that answers. */
export const GATEWAY_HEADER = 'x-ewml-gateway';

export interface AdminServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number } | undefined;
  /** The code of the last failed `start()` (EADDRINUSE, EACCES…), until one succeeds. */
  lastError(): string | undefined;
  /** For in-process tests (`inject`). */
  readonly app: FastifyInstance;
}

const OPEN_ROUTES = new Set(['/health', '/ready']);
/** Public keys only: what a vendor fetching the gateway's JWKS URL is given. */
const JWKS_ROUTE = /^\/fhir\/[A-Za-z0-9._-]+\/jwks\.json$/;

function problem(code: ErrorCode, message: string) {
  return { code, message, action: ErrorCodes[code].action };
}

export function createAdminServer(o: AdminServerOptions): AdminServer {
  let bound: { host: string; port: number } | undefined;
  let started = false;
  let lastError: string | undefined;
  let gatewayId = o.gatewayId;
  const idOf = (): string => {
    if (gatewayId === undefined) gatewayId = String((o.status().gateway as { id?: unknown } | undefined)?.id ?? '');
    return gatewayId;
  };

  /** A Fastify instance cannot listen again once closed: a start after a stop builds a new one. */
  function buildApp(): FastifyInstance {
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

    app.addHook('onRequest', async (_req, reply) => {
      reply.header(GATEWAY_HEADER, idOf());
    });
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0];
      if (OPEN_ROUTES.has(path) || JWKS_ROUTE.test(path)) return;
      const h = req.headers.authorization ?? '';
      const given = h.startsWith('Bearer ') ? h.slice(7).trim() : '';
      if (!given || !tokenMatches(given, o.token)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send(problem('GW_ADMIN_UNAUTHORIZED', 'missing or wrong bearer token'));
      }
    });

    app.get('/health', async () => ({ status: 'ok' }));
    app.get('/ready', async (_req, reply) => {
      const r = o.ready();
      return reply.code(r.ready ? 200 : 503).send(r);
    });
    app.get('/status', async () => o.status());
    app.get<{ Params: { id: string } }>('/agents/:id', async (req, reply) => {
      const r = o.agentReport?.(req.params.id);
      if (!r) return reply.code(404).send(problem('GW_NOT_FOUND', `no agent ${req.params.id} configured on this gateway`));
      return r;
    });
    app.get<{ Params: { id: string } }>('/fhir/:id/jwks.json', async (req, reply) => {
      const jwks = o.fhirJwks?.(req.params.id);
      if (!jwks) return reply.code(404).send(problem('GW_NOT_FOUND', `no FHIR source ${req.params.id} with a client key yet`));
      return reply.type('application/json').header('cache-control', 'max-age=300').send(jwks);
    });
    app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(o.metrics.render()));

    app.get<{ Querystring: { limit?: string; offset?: string } }>('/dead-letters', async (req) => {
      const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 1000);
      const offset = Math.max(Number(req.query.offset ?? 0) || 0, 0);
      return { items: o.outbox.listDeadLetters({ limit, offset }), total: o.outbox.stats().deadLetters, limit, offset };
    });
    app.get<{ Params: { id: string } }>('/dead-letters/:id', async (req, reply) => {
      const d = o.outbox.getDeadLetter(req.params.id);
      if (!d) return reply.code(404).send(problem('GW_NOT_FOUND', `no dead letter ${req.params.id}`));
      const { sealed, ...meta } = d;
      return { ...meta, bytes: sealed.byteLength };
    });
    app.post<{ Params: { id: string } }>('/dead-letters/:id/replay', async (req, reply) => {
      const result = await o.replay(req.params.id);
      if (!result) return reply.code(404).send(problem('GW_NOT_FOUND', `no dead letter ${req.params.id}`));
      const ok = result.status !== 'rejected';
      return reply.code(ok ? 200 : 409).send({ id: req.params.id, result, removed: !o.outbox.getDeadLetter(req.params.id) });
    });
    app.delete<{ Params: { id: string } }>('/dead-letters/:id', async (req, reply) => {
      const removed = await o.outbox.removeDeadLetter(req.params.id);
      if (!removed) return reply.code(404).send(problem('GW_NOT_FOUND', `no dead letter ${req.params.id}`));
      o.logger.info({ deadLetterId: req.params.id }, 'dead letter discarded by an operator');
      return { id: req.params.id, discarded: true };
    });

    // validate → plan → apply: a config that does not validate changes nothing (422, every problem);
    // the answer says what was applied live, which sources were started again, and what waits for a restart
    app.post('/config/reload', async (_req, reply) => {
      if (!o.reloadConfig) return reply.code(409).send(problem('GW_RELOAD_UNAVAILABLE', 'this gateway was not started from a config file'));
      const r = await o.reloadConfig();
      if (!r.ok) {
        if (r.code === 'GW_RELOAD_UNAVAILABLE')
          return reply.code(409).send(problem(r.code, 'this gateway was not started from a config file'));
        return reply.code(422).send({ ...problem(r.code, 'the config file does not validate; nothing was changed'), problems: r.problems });
      }
      o.logger.info({ changes: r.plan.changes.length }, 'config reloaded by an operator');
      return {
        applied: r.plan.apply,
        changes: r.plan.changes,
        restartRequired: r.waitingForRestart.length > 0,
        waitingForRestart: r.waitingForRestart,
      };
    });

    app.post<{ Params: { key: string } }>('/alerts/:key/clear', async (req, reply) => {
      const r = o.acknowledgeAlert?.(req.params.key) ?? 'not-active';
      if (r === 'not-active') return reply.code(404).send(problem('GW_NOT_FOUND', `no active alert ${req.params.key}`));
      if (r === 'not-acknowledgeable')
        return reply.code(409).send({
          key: req.params.key,
          cleared: false,
          message: `alert ${req.params.key} describes a condition that is still true; it clears itself once the condition ends`,
        });
      return { key: req.params.key, cleared: true };
    });
    return app;
  }
  let app = buildApp();
  let closed = false;

  return {
    get app() {
      return app;
    },
    address: () => bound,
    lastError: () => lastError,
    async start() {
      if (started) return;
      if (closed) {
        app = buildApp();
        closed = false;
      }
      try {
        await app.listen({ host: o.host, port: o.port });
      } catch (err) {
        lastError = (err as NodeJS.ErrnoException).code ?? 'unknown';
        throw err;
      }
      lastError = undefined;
      started = true;
      const a = app.server.address();
      bound = a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
      o.logger.info({ host: bound?.host, port: bound?.port }, 'admin API listening');
    },
    async stop() {
      if (!started) return;
      started = false;
      closed = true;
      bound = undefined;
      await app.close();
    },
  };
}
