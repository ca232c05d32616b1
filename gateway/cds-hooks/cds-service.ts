/**
 * The CDS Hooks 2.0 service (https://cds-hooks.hl7.org/2.0/): a Fastify HTTPS server on its own
 * port, off by default (`cdsHooks.enabled`).
 *
 * - `GET /cds-services` — discovery (discovery.ts); open, it names no patient.
 * - `POST /cds-services/{id}` — `{ cards: [...] }` for `patient-view` or `appointment-book`, after
 *   the EHR's JWT is verified (token-verifier.ts: 401 with a reason word, or 503 when the EHR's
 *   key set cannot be fetched). The answer comes from the local read model alone (read-model.ts):
 *   no network call, so it answers with the cloud away and within the EHR's time budget.
 * - `POST /cds-services/{id}/feedback` — card outcomes, counted.
 *
 * Nothing a request carries reaches the log: refusals are logged with their reason and the
 * issuer's configured name, answers with the service, the issuer and the number of cards (the
 * audit trail of what was shown to whom), never the patient id or the cards' text. Fastify's own
 * error messages (a JSON parse error quotes the body) are replaced by a code.
 *
 * Lifecycle: the read model is opened and closed by the gateway around its sources
 * (`openReadModel`/`closeReadModel`), so no record committed while sources run is missed; the
 * server is started and stopped by the gateway's services supervisor (`start`/`stop`), a port
 * that is taken being retried like the admin API's.
 */
import type { Server } from 'node:https';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { pemOf } from '../../config/cds-hooks-schema.ts';
import type { GatewayConfig } from '../../config/schema.ts';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import type { Clock } from '../clock.ts';
import type { PartitionKeyer } from '../crypto/partition-keyer.ts';
import type { RecordSealer } from '../crypto/record-sealer.ts';
import { ErrorCodes, GatewayError, type ErrorCode } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { cardsFor, type CardKind } from './cards.ts';
import { CDS_SERVICES, Hook, serviceById, type CdsServiceDefinition } from './discovery.ts';
import { createKeySets } from './jwks-keys.ts';
import { bookingOf, patientRefs } from './patient-match.ts';
import { createReadModel, type ReadModel, type ReadModelStats } from './read-model.ts';
import { createTokenVerifier, RefusalReason } from './token-verifier.ts';

export type CdsHooksConfig = GatewayConfig['cdsHooks'];
type IssuerConfig = CdsHooksConfig['issuers'][number];

export interface CdsHooksOptions {
  config: CdsHooksConfig;
  /** The practice's IANA zone (gateway.timezone, resolved): days until expiry are its calendar days. */
  timezone: string;
  dataDir: string;
  sealer: RecordSealer;
  partitionKeyer: PartitionKeyer;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export interface CdsHooksStatus {
  listening?: { host: string; port: number };
  lastError?: string;
  requests: Record<string, number>;
  cardsServed: Record<string, number>;
  refusals: Record<string, number>;
  feedback: Record<string, number>;
  readModel: ReadModelStats;
}

export interface CdsHooksService {
  /** The intake pipeline's `onCommitted`: records just committed feed the read model. */
  onCommitted(records: readonly CanonicalRecord[]): void;
  openReadModel(): void;
  closeReadModel(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number } | undefined;
  status(): CdsHooksStatus;
}

export const READ_MODEL_FILE = 'cds-read-model.db';
const MAX_BODY_BYTES = 2 * 1024 * 1024;

type Body = Record<string, unknown>;
const obj = (v: unknown): Body | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Body) : undefined);

/** A refusal's body: the catalogue code, a reason word (never request contents) and what to do. */
function problem(reply: FastifyReply, status: number, code: ErrorCode, reason: string) {
  return reply.code(status).send({ code, reason, action: ErrorCodes[code].action });
}

const bump = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
const asObject = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
const labelled = (m: Map<string, number>, label: string) => [...m].map(([k, value]) => ({ labels: { [label]: k }, value }));

export function createCdsHooksService(o: CdsHooksOptions): CdsHooksService {
  const { config: c } = o;
  const log = o.logger;
  const readModel: ReadModel = createReadModel({
    file: join(o.dataDir, READ_MODEL_FILE),
    sealer: o.sealer,
    keyer: o.partitionKeyer,
    clock: o.clock,
    logger: log,
    maxPatients: c.maxPatients,
  });
  const keySets = createKeySets({ urls: c.issuers.map((i) => i.jku), clock: o.clock, logger: log });
  const verifier = createTokenVerifier<IssuerConfig>({ issuers: c.issuers, keys: keySets, clock: o.clock });
  const base = c.publicUrl.replace(/\/+$/, '');
  const requests = new Map<string, number>();
  const cards = new Map<string, number>();
  const refusals = new Map<string, number>();
  const feedback = new Map<string, number>();
  o.metrics.observedCounter('ewml_cds_requests_total', 'CDS Hooks calls answered with cards, by hook.', () => labelled(requests, 'hook'));
  o.metrics.observedCounter('ewml_cds_cards_total', 'CDS Hooks cards served, by kind.', () => labelled(cards, 'kind'));
  o.metrics.observedCounter('ewml_cds_refusals_total', 'CDS Hooks calls refused, by reason.', () => labelled(refusals, 'reason'));

  let app: FastifyInstance<Server> | undefined;
  let bound: { host: string; port: number } | undefined;
  let lastError: string | undefined;

  /** The token, or the refusal already sent. */
  async function authorize(
    authorization: string | undefined,
    audiences: string[],
    svc: CdsServiceDefinition,
    reply: FastifyReply,
  ): Promise<IssuerConfig | undefined> {
    const v = await verifier.verify(authorization, audiences);
    if (v.ok) return v.issuer;
    bump(refusals, v.reason);
    const unavailable = v.reason === RefusalReason.keysUnavailable;
    const code: ErrorCode = unavailable ? 'GW_CDS_KEYS_UNAVAILABLE' : 'GW_CDS_TOKEN_REFUSED';
    // audited: the reason word and the service, never the token (its claims name the EHR user)
    log.warn({ code, reason: v.reason, service: svc.id }, 'CDS Hooks request refused');
    if (!unavailable) reply.header('www-authenticate', 'Bearer');
    await problem(reply, unavailable ? 503 : 401, code, v.reason);
    return undefined;
  }

  function buildApp(tls: { cert: string; key: string }): FastifyInstance<Server> {
    const a = Fastify({
      https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' },
      logger: false,
      bodyLimit: MAX_BODY_BYTES,
      // a slow sender cannot hold a connection open for long
      requestTimeout: 15_000,
      connectionTimeout: 15_000,
    });
    a.setErrorHandler((err, _req, reply) => {
      const code = (err as { statusCode?: unknown }).statusCode;
      const status = typeof code === 'number' && code >= 400 && code < 500 ? code : 500;
      // the message can quote the request body (a JSON parse error): only Fastify's code goes out and into the log
      if (status === 500) log.error({ err }, 'CDS Hooks request failed');
      return problem(
        reply,
        status,
        status === 500 ? 'GW_CDS_UNAVAILABLE' : 'GW_CDS_BAD_REQUEST',
        status === 500 ? 'internal error' : 'bad request',
      );
    });
    a.setNotFoundHandler((_req, reply) => problem(reply, 404, 'GW_NOT_FOUND', 'no such CDS service'));

    a.get('/cds-services', async () => ({ services: CDS_SERVICES }));

    a.post<{ Params: { id: string } }>('/cds-services/:id', async (req, reply) => {
      const svc = serviceById(req.params.id);
      if (!svc) return problem(reply, 404, 'GW_NOT_FOUND', 'no such CDS service');
      const issuer = await authorize(req.headers.authorization, [`${base}/cds-services/${svc.id}`], svc, reply);
      if (!issuer) return reply;
      const body = obj(req.body);
      const context = obj(body?.context);
      const patientId = context?.patientId;
      if (!body || body.hook !== svc.hook || !context || typeof patientId !== 'string' || patientId === '')
        return problem(reply, 400, 'GW_CDS_BAD_REQUEST', `expected a ${svc.hook} request with context.patientId`);
      const refs = patientRefs(patientId, body.prefetch, issuer);
      const summary = readModel.lookup(refs);
      const found = cardsFor(
        summary,
        {
          hook: svc.hook,
          nowMs: o.clock.now(),
          ...(svc.hook === Hook.appointmentBook ? { booking: bookingOf(context) } : {}),
        },
        { ...c, timezone: o.timezone },
      );
      bump(requests, svc.hook);
      for (const f of found) bump(cards, f.kind satisfies CardKind);
      log.info({ service: svc.id, issuer: issuer.iss, cards: found.length, known: summary !== undefined }, 'CDS Hooks request answered');
      return { cards: found.map((f) => f.card) };
    });

    a.post<{ Params: { id: string } }>('/cds-services/:id/feedback', async (req, reply) => {
      const svc = serviceById(req.params.id);
      if (!svc) return problem(reply, 404, 'GW_NOT_FOUND', 'no such CDS service');
      const url = `${base}/cds-services/${svc.id}`;
      const issuer = await authorize(req.headers.authorization, [url, `${url}/feedback`], svc, reply);
      if (!issuer) return reply;
      const list = obj(req.body)?.feedback;
      if (!Array.isArray(list)) return problem(reply, 400, 'GW_CDS_BAD_REQUEST', 'expected { feedback: [...] }');
      for (const f of list.slice(0, 100)) {
        const outcome = obj(f)?.outcome;
        bump(feedback, outcome === 'accepted' || outcome === 'overridden' ? outcome : 'other');
      }
      return {};
    });
    return a;
  }

  return {
    onCommitted: (records) => readModel.ingest(records),
    openReadModel() {
      try {
        readModel.open();
      } catch (e) {
        // the service still answers (no cards) and the gateway runs on; the records stay in the outbox
        log.error({ err: e, code: 'GW_OUTBOX_IO' }, 'CDS read model could not be opened; CDS cards are empty until it can');
      }
    },
    closeReadModel: () => readModel.close(),
    address: () => bound,
    async start() {
      if (app) return;
      let tls: { cert: string; key: string };
      try {
        tls = { cert: pemOf(c.tls.cert), key: pemOf(c.tls.key) };
      } catch (e) {
        lastError = 'GW_CONFIG_INVALID';
        throw new GatewayError('GW_CONFIG_INVALID', 'cdsHooks.tls.cert or cdsHooks.tls.key cannot be read', { cause: e });
      }
      const a = buildApp(tls);
      try {
        await a.listen({ host: c.host, port: c.port });
      } catch (err) {
        lastError = (err as NodeJS.ErrnoException).code ?? 'unknown';
        await a.close().catch(() => undefined);
        throw err;
      }
      app = a;
      lastError = undefined;
      const addr = a.server.address();
      bound = addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : undefined;
      keySets.start();
      log.info({ host: bound?.host, port: bound?.port, issuers: c.issuers.length }, 'CDS Hooks service listening');
    },
    async stop() {
      keySets.stop();
      const a = app;
      app = undefined;
      bound = undefined;
      if (a) await a.close();
    },
    status() {
      return {
        ...(bound ? { listening: bound } : {}),
        ...(lastError ? { lastError } : {}),
        requests: asObject(requests),
        cardsServed: asObject(cards),
        refusals: asObject(refusals),
        feedback: asObject(feedback),
        readModel: readModel.stats(),
      };
    },
  };
}
