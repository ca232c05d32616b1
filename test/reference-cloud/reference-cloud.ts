/**
 * The reference cloud receiver: what the eyewear-ML cloud does with a gateway's batches, small
 * enough to read. It decrypts each JWE with the cloud's private key as strictly as
 * docs/CLOUD-CONTRACT.md asks (registered header parameters only), validates every record against
 * the canonical JSON Schema, drops duplicates by record id, acknowledges, and keeps what it got.
 * Used by the end-to-end tests and the demo (`npm run demo`).
 */
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { createRecordValidator } from '../../adapters/canonical/validator.ts';
import { openCloudEnvelope } from '../../gateway/crypto/cloud-envelope.ts';
import type { BatchAck, BatchEnvelope } from '../../gateway/sinks/sink.ts';
import type { EnrolmentCloud } from './enrolment.ts';

export interface ReceivedStore {
  /** First copy of each record, by id. */
  records: Map<string, CanonicalRecord>;
  /** Record ids in the order first received. */
  order: string[];
  duplicates: number;
  batches: number;
  /** Records that failed the schema (rejected in the ack). */
  invalid: Array<{ id: string; problems: string[] }>;
  /** Idempotency keys seen on HTTPS. */
  idempotencyKeys: string[];
}

export interface ReceiverControls {
  /** Receive but never ack (MQTT) — the gateway must time out and resend. */
  dropAcks: boolean;
  /** Record ids to reject permanently in the ack. */
  rejectIds: Set<string>;
  /** Record types to reject permanently in the ack (a record the test cannot know the id of in advance). */
  rejectTypes: Set<string>;
  /** HTTPS: statuses to answer for the next requests, in order (then 200). */
  failNext: number[];
  /** MQTT: publish each ack this many ms after the batch arrived (past the gateway's ack timeout: it resends). 0: at once. */
  ackDelayMs: number;
  /** MQTT: publish each ack this many times (a broker or cloud that delivers an ack twice). 1: once. */
  ackCopies: number;
}

/** Controls as a fresh receiver starts: every batch acked once, at once, nothing refused. */
export function defaultControls(): ReceiverControls {
  return { dropAcks: false, rejectIds: new Set(), rejectTypes: new Set(), failNext: [], ackDelayMs: 0, ackCopies: 1 };
}

export function newStore(): ReceivedStore {
  return { records: new Map(), order: [], duplicates: 0, batches: 0, invalid: [], idempotencyKeys: [] };
}

/** Decrypt, validate, dedupe; returns the ack. */
export async function receiveBatch(
  jwe: string,
  privateKey: KeyObject,
  store: ReceivedStore,
  controls: ReceiverControls,
): Promise<BatchAck> {
  const validator = cachedValidator();
  const { plaintext } = await openCloudEnvelope(jwe, privateKey);
  const env = JSON.parse(Buffer.from(plaintext).toString('utf8')) as BatchEnvelope;
  store.batches++;
  const accepted: string[] = [];
  const rejected: Array<{ id: string; reason: string }> = [];
  for (const rec of env.records) {
    const problems = validator.validate(rec);
    if (problems.length || controls.rejectIds.has(rec.id) || controls.rejectTypes.has(rec.type)) {
      const reason = problems.length ? `schema: ${problems.map((p) => `${p.path} ${p.problem}`).join('; ')}` : 'rejected by test control';
      store.invalid.push({ id: rec.id, problems: problems.map((p) => `${p.path} ${p.problem}`) });
      rejected.push({ id: rec.id, reason });
      continue;
    }
    if (store.records.has(rec.id)) store.duplicates++;
    else {
      store.records.set(rec.id, rec);
      store.order.push(rec.id);
    }
    accepted.push(rec.id);
  }
  return { batchId: env.batchId, accepted, rejected };
}

let validatorSingleton: ReturnType<typeof createRecordValidator> | undefined;
function cachedValidator() {
  return (validatorSingleton ??= createRecordValidator());
}

export interface MqttReferenceCloud {
  store: ReceivedStore;
  controls: ReceiverControls;
  stop(): Promise<void>;
  client: MqttClient;
}

export async function startMqttReferenceCloud(o: {
  url: string;
  privateKey: KeyObject;
  clientId?: string;
  ca?: string;
  cert?: string;
  key?: string;
}): Promise<MqttReferenceCloud> {
  const store = newStore();
  const controls = defaultControls();
  const client = await mqtt.connectAsync(o.url, {
    protocolVersion: 5,
    clientId: o.clientId ?? `ewml-cloud-${process.pid}-${Date.now()}`,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 500,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
  });
  const noDelay = () => (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  noDelay();
  client.on('connect', noDelay);
  await client.subscribeAsync('ewml/v1/+/+/up/records', { qos: 1 });
  client.on('message', (topic, payload) => {
    const m = /^ewml\/v1\/([^/]+)\/([^/]+)\/up\/records$/.exec(topic);
    if (!m) return;
    void receiveBatch(payload.toString('utf8'), o.privateKey, store, controls).then(
      (ack) => {
        if (controls.dropAcks) return;
        const send = () => {
          for (let k = 0; k < controls.ackCopies; k++) client.publish(`ewml/v1/${m[1]}/${m[2]}/down/acks`, JSON.stringify(ack), { qos: 1 });
        };
        if (controls.ackDelayMs > 0) setTimeout(send, controls.ackDelayMs);
        else send();
      },
      () => {
        store.invalid.push({ id: '(batch)', problems: ['could not decrypt or parse'] });
      },
    );
  });
  return { store, controls, client, stop: () => client.endAsync() };
}

export interface HttpReferenceCloud {
  store: ReceivedStore;
  controls: ReceiverControls;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startHttpReferenceCloud(o: {
  privateKey: KeyObject;
  tls?: { cert: string; key: string };
  port?: number;
  token?: string;
  store?: ReceivedStore;
  /** The enrolment routes (enrolment.ts), served beside the records route; needs `tls`. */
  enrolment?: EnrolmentCloud;
}): Promise<HttpReferenceCloud> {
  const store = o.store ?? newStore();
  const controls = defaultControls();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const enrolled = o.enrolment?.handle(req, Buffer.concat(chunks));
      if (enrolled) return void enrolled.then((a) => send(a.status, a.body));
      if (req.method !== 'POST' || !/^\/v1\/gateways\/[^/]+\/records$/.test(req.url ?? '')) return send(404, { error: 'not found' });
      if (o.token && req.headers.authorization !== `Bearer ${o.token}`) return send(401, { error: 'unauthorized' });
      const fail = controls.failNext.shift();
      if (fail !== undefined) return send(fail, { error: `test control ${fail}` });
      store.idempotencyKeys.push(String(req.headers['idempotency-key'] ?? ''));
      receiveBatch(Buffer.concat(chunks).toString('utf8'), o.privateKey, store, controls).then(
        (ack) => send(200, ack),
        () => send(400, { error: 'cannot decrypt' }),
      );
    });
  };
  const server: Server = o.tls
    ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key, ...o.enrolment?.tlsOptions }, handler)
    : createHttpServer(handler);
  await new Promise<void>((r) => server.listen(o.port ?? 0, '127.0.0.1', () => r()));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    store,
    controls,
    port,
    url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
