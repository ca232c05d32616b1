/**
 * The MQTT v5 sink (mqtt.js). Persistent session (clean start off, session expiry), QoS 1.
 * Topics per ARCHITECTURE.md "Cloud contract":
 *   up   ewml/v1/{tenant}/{gateway}/up/records   one JWE per batch
 *   up   ewml/v1/{tenant}/{gateway}/up/status    retained; last will `offline`
 *   up   ewml/v1/{tenant}/{gateway}/up/health    retained; the agents' active findings (healthDocument)
 *   down ewml/v1/{tenant}/{gateway}/down/acks    {batchId, accepted[], rejected[]}
 * A batch counts as delivered only on its ack from the cloud on `down/acks` — a PUBACK only says
 * the broker has it. No ack within `ackTimeoutMs` is ambiguous: the relay resends, the cloud
 * dedupes by record id.
 *
 * Packet size: a broker closes the connection of a client that sends a packet over its Maximum
 * Packet Size (announced in CONNACK; `maxPacketBytes` for a broker that does not announce it), and
 * the client's session would resend the same publish forever. So a batch that would not fit is
 * published as several parts, each its own JWE with its own batch id (deterministic from its
 * records, as a whole batch's is) and each within the limit (mqtt-packet-plan.ts); `deliver`
 * resolves only when the cloud has acked every part. A record too large for any packet is refused
 * here (`rejected`, so the relay puts it in dead letters with the reason) rather than sent.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { CloudEnvelope } from '../crypto/cloud-envelope.ts';
import { deterministicId } from '../../adapters/canonical/record-id.ts';
import { GatewayError } from '../errors.ts';
import type { EventBus } from '../event-bus.ts';
import type { DeviceIdentityLink } from '../identity/renewal.ts';
import { planPackets, publishPacketBytes, type PublishShape } from './mqtt-packet-plan.ts';
import { envelopeJson, type BatchAck, type DeliveryResult, type RecordBatch, type Sink } from './sink.ts';

export interface MqttSinkOptions {
  url: string;
  tenantId: string;
  gatewayId: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  sessionExpirySeconds: number;
  keepaliveSeconds: number;
  ackTimeoutMs: number;
  /**
   * Largest MQTT packet to send, for a broker that enforces a limit without announcing it in
   * CONNACK; with both, the smaller wins. Unset: the broker's announced limit alone.
   */
  maxPacketBytes?: number;
  version: string;
  envelope: CloudEnvelope;
  clock: Clock;
  logger: Logger;
  bus: EventBus;
  /** Called with each message on `down/commands` (a JWS; verified by the command processor). */
  onCommand?: (jws: string) => void;
  /**
   * The enrolled device identity (gateway/identity/): its certificate, key and the broker's CA
   * replace `cert`/`key`/`ca`, it renews while the sink runs, and a renewed certificate is taken
   * by reconnecting.
   */
  identity?: DeviceIdentityLink;
}

/** A TLS alert or verification failure: the broker refused our certificate, or we refused the broker's. */
const TLS_REFUSAL = /^ERR_SSL_.*(ALERT|CERTIFICATE)|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/;
/** A TLS alert from the broker: it refused our certificate (the alert names why: revoked, expired, unknown CA). */
const BROKER_ALERT = /^ERR_SSL_.*ALERT/;

export function mqttTopics(tenantId: string, gatewayId: string) {
  const base = `ewml/v1/${tenantId}/${gatewayId}`;
  return {
    records: `${base}/up/records`,
    status: `${base}/up/status`,
    health: `${base}/up/health`,
    acks: `${base}/down/acks`,
    commands: `${base}/down/commands`,
  };
}

interface Waiter {
  resolve: (r: DeliveryResult) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

/** Length of the batch ids of split parts (deterministicId's text); the planner sizes for the longer of it and the batch's own. */
const PART_ID_LENGTH = 36;
const CONTENT_TYPE = 'application/jose';

/** The dead letter's reason for a record no packet can carry: what happened and what to do. */
function oversizeReason(limit: number, packetBytes: number): string {
  return `larger than the broker's maximum packet size ${limit} bytes (this record alone needs a ${packetBytes}-byte packet); raise the broker's limit (or mqtt.maxPacketBytes), then replay this dead letter`;
}

/** One publish: its batch id and the batch's records it carries (indexes, in order). */
interface Part {
  bid: string;
  indexes: number[];
}

/** A finding the agents hold active, as `up/health` carries it (PHI-free: codes, subjects, counts). */
export interface HealthTopicFinding {
  agent: string;
  code: string;
  severity: 'info' | 'warning' | 'error';
  summary: string;
  subject?: string;
  /** When first seen (ISO 8601). */
  since: string;
}

/**
 * `up/health`: the findings active now, as one retained document, so the fleet view holds each
 * gateway's current state (published whenever a finding is raised, changes severity or clears, and
 * again on every connect). An empty list is the all-clear.
 */
export interface HealthDocument {
  type: 'health';
  gatewayId: string;
  version: string;
  at: string;
  findings: HealthTopicFinding[];
}

export function createMqttSink(opts: MqttSinkOptions): Sink {
  const topics = mqttTopics(opts.tenantId, opts.gatewayId);
  // the agents' active findings, heard from the moment the sink exists (agents start after it),
  // kept whether or not the broker is there and published whole on each change and each connect
  const findings = new Map<string, HealthTopicFinding>();
  const findingKey = (agent: string, code: string, subject?: string) => JSON.stringify([agent, code, subject ?? null]);
  const healthDocument = (): string =>
    JSON.stringify({
      type: 'health',
      gatewayId: opts.gatewayId,
      version: opts.version,
      at: new Date(opts.clock.now()).toISOString(),
      findings: [...findings.values()],
    } satisfies HealthDocument);
  const publishHealth = () => {
    const c = client;
    if (c?.connected) c.publish(topics.health, healthDocument(), { qos: 1, retain: true });
  };
  const listenForFindings = () => {
    const offFinding = opts.bus.on('agent.finding', (e) => {
      const k = findingKey(e.agent, e.code, e.subject);
      const since = findings.get(k)?.since ?? new Date(opts.clock.now()).toISOString();
      const { agent, code, severity, summary, subject } = e;
      findings.set(k, { agent, code, severity, summary, ...(subject !== undefined ? { subject } : {}), since });
      publishHealth();
    });
    const offCleared = opts.bus.on('agent.finding.cleared', (e) => {
      if (findings.delete(findingKey(e.agent, e.code, e.subject))) publishHealth();
    });
    return () => {
      offFinding();
      offCleared();
    };
  };
  /** Dropped at stop (a stopped sink holds no listener), taken again at the next start. */
  let offFindings: (() => void) | undefined = listenForFindings();
  const waiters = new Map<string, Waiter>();
  let client: MqttClient | undefined;
  let lastError = '';
  let offOutcome: (() => void) | undefined;
  let offIdentity: (() => void) | undefined;
  const counts = { published: 0, acks: 0, unknownAcks: 0, splitBatches: 0, oversized: 0 };
  /** Maximum Packet Size from the last CONNACK (undefined: the broker announced none). */
  let brokerMaxPacket: number | undefined;
  /** Length of the JWE of an empty plaintext, by batch-id length (constant for one key). */
  let jweOverheadBytes: number | undefined;
  const status = (state: string) =>
    JSON.stringify({ state, gatewayId: opts.gatewayId, version: opts.version, at: new Date(opts.clock.now()).toISOString() });

  function onAck(payload: Buffer): void {
    let ack: BatchAck;
    try {
      ack = JSON.parse(payload.toString('utf8')) as BatchAck;
    } catch {
      opts.logger.warn('unparseable ack on down/acks ignored');
      return;
    }
    const w = typeof ack.batchId === 'string' ? waiters.get(ack.batchId) : undefined;
    if (!w) {
      counts.unknownAcks++;
      return;
    }
    counts.acks++;
    waiters.delete(ack.batchId);
    clearTimeout(w.timer);
    w.resolve({ rejected: Array.isArray(ack.rejected) ? ack.rejected : [] });
  }

  /** The packet limit in force: the broker's and the configured one, the smaller; undefined when neither is set. */
  function packetLimit(): number | undefined {
    const limits = [brokerMaxPacket, opts.maxPacketBytes].filter((n): n is number => typeof n === 'number' && n > 0);
    return limits.length ? Math.min(...limits) : undefined;
  }

  const shapeFor = (bid: string): PublishShape => ({ topic: topics.records, contentType: CONTENT_TYPE, userProperties: { bid } });

  /** The JWE's length around its ciphertext: fixed for a key (the header holds no batch id). */
  async function jweOverhead(): Promise<number> {
    jweOverheadBytes ??= (await opts.envelope.encrypt(Buffer.alloc(0))).length;
    return jweOverheadBytes;
  }

  /** Waits for the cloud's ack of one published batch id (or times out: ambiguous). */
  function awaitAck(bid: string): { acked: Promise<DeliveryResult>; waiter: () => Waiter | undefined } {
    const prior = waiters.get(bid);
    if (prior) {
      clearTimeout(prior.timer);
      prior.reject(new GatewayError('GW_SINK_TIMEOUT', 'superseded by a resend'));
    }
    let mine: Waiter | undefined;
    const acked = new Promise<DeliveryResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (waiters.get(bid) === mine) waiters.delete(bid);
        reject(
          new GatewayError(
            'GW_SINK_TIMEOUT',
            `no ack for batch within ${opts.ackTimeoutMs} ms: it will be resent (the cloud drops copies by record id)`,
          ),
        );
      }, opts.ackTimeoutMs);
      mine = { resolve, reject, timer };
      waiters.set(bid, mine);
    });
    return { acked, waiter: () => mine };
  }

  function publish(c: MqttClient, bid: string, jwe: string): void {
    c.publish(topics.records, jwe, { qos: 1, properties: { contentType: CONTENT_TYPE, userProperties: { bid } } }, (err) => {
      if (!err) {
        counts.published++;
        return;
      }
      const w = waiters.get(bid);
      if (w) {
        waiters.delete(bid);
        clearTimeout(w.timer);
        w.reject(new GatewayError('GW_SINK_UNREACHABLE', 'publish failed; the batch stays queued and is resent', { cause: err }));
      }
    });
  }

  /**
   * The publishes for a batch under a packet limit: its parts (one, under the batch's own id, when
   * it fits) and the records refused for being too large for any packet.
   */
  async function splitForLimit(
    batch: RecordBatch,
    meta: { gatewayId: string; tenantId: string; sentAt: string },
    limit: number,
  ): Promise<{ parts: Part[]; refused: DeliveryResult['rejected'] }> {
    const bidLength = Math.max(batch.batchId.length, PART_ID_LENGTH);
    const sizingId = 'x'.repeat(bidLength);
    const plan = planPackets({
      recordBytes: batch.json.map((j) => Buffer.byteLength(j)),
      emptyEnvelopeBytes: Buffer.byteLength(envelopeJson({ batchId: sizingId, ids: [], json: [] }, meta)),
      jweOverhead: await jweOverhead(),
      shape: shapeFor(sizingId),
      maxPacketBytes: limit,
    });
    if (plan.emptyPacketBytes > limit) {
      // not the records' fault: a limit this small is a broker or config mistake; keep them queued
      throw new GatewayError(
        'GW_SINK_UNREACHABLE',
        `the MQTT maximum packet size (${limit} bytes) is smaller than a batch with no record (${plan.emptyPacketBytes} bytes): raise the broker's limit or mqtt.maxPacketBytes; records stay queued`,
      );
    }
    const refused = plan.oversized.map((o) => ({
      id: batch.ids[o.index],
      reason: oversizeReason(limit, o.packetBytes),
    }));
    const whole = plan.parts.length === 1 && plan.parts[0].indexes.length === batch.json.length;
    const parts = plan.parts.map((p) => ({
      bid: whole ? batch.batchId : deterministicId('batch', ...p.indexes.map((k) => batch.ids[k])),
      indexes: p.indexes,
    }));
    return { parts, refused };
  }

  return {
    kind: 'mqtt',
    async start() {
      if (client) return;
      const id = opts.identity?.tls();
      const c = mqtt.connect({
        ...brokerAddress(opts.url),
        protocolVersion: 5,
        clientId: `ewml-${opts.tenantId}-${opts.gatewayId}`,
        clean: false,
        properties: { sessionExpiryInterval: opts.sessionExpirySeconds },
        keepalive: opts.keepaliveSeconds,
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
        username: opts.username,
        password: opts.password,
        ca: id?.ca ?? opts.ca,
        cert: id?.cert ?? opts.cert,
        key: id?.key ?? opts.key,
        rejectUnauthorized: opts.rejectUnauthorized,
        will: {
          topic: topics.status,
          payload: Buffer.from(JSON.stringify({ state: 'offline', gatewayId: opts.gatewayId })),
          qos: 1,
          retain: true,
        },
      });
      client = c;
      offFindings ??= listenForFindings();
      if (opts.identity) {
        const identity = opts.identity;
        // a renewed (or fallen-back) certificate: the next connection attempt uses it (mqtt.js
        // builds each TLS socket from these options), so end this one and let it reconnect
        offIdentity = identity.onChange(() => {
          Object.assign(c.options, identity.tls());
          c.stream?.destroy();
        });
        identity.start();
      }
      c.on('connect', (connack) => {
        opts.identity?.connected();
        const announced = connack.properties?.maximumPacketSize;
        brokerMaxPacket = typeof announced === 'number' && announced > 0 ? announced : undefined;
        // mqtt.js leaves Nagle on; with small acks and PUBACKs that costs ~40 ms per round trip
        // (a TCP or TLS socket has setNoDelay; a WebSocket stream does not)
        const stream: object = c.stream;
        if ('setNoDelay' in stream && typeof stream.setNoDelay === 'function') stream.setNoDelay(true);
        lastError = '';
        opts.bus.emit('sink.connected', { sink: 'mqtt' });
        opts.logger.info({ sessionPresent: connack.sessionPresent }, 'MQTT connected');
        c.subscribe(opts.onCommand ? [topics.acks, topics.commands] : [topics.acks], { qos: 1 }, (err) => {
          if (err) opts.logger.error({ err }, 'subscribe to down/ topics failed');
        });
        c.publish(topics.status, status('online'), { qos: 1, retain: true });
        publishHealth();
      });
      c.on('message', (topic, payload) => {
        if (topic === topics.acks) onAck(payload);
        else if (topic === topics.commands) opts.onCommand?.(payload.toString('utf8'));
      });
      // command outcomes go on up/status, not retained (the retained message stays the online state)
      const offCommand = opts.bus.on('command.outcome', (e) => {
        if (c.connected)
          c.publish(topics.status, JSON.stringify({ type: 'command-outcome', ...e, at: new Date(opts.clock.now()).toISOString() }), {
            qos: 1,
          });
      });
      // what the updater decided (a check, a switch-over, a rollback): the cloud's fleet view
      const offUpdate = opts.bus.on('update.outcome', (e) => {
        if (c.connected)
          c.publish(topics.status, JSON.stringify({ type: 'update-outcome', ...e, at: new Date(opts.clock.now()).toISOString() }), {
            qos: 1,
          });
      });
      offOutcome = () => {
        offCommand();
        offUpdate();
      };
      c.on('close', () => {
        if (!lastError) lastError = 'disconnected';
        opts.bus.emit('sink.disconnected', { sink: 'mqtt', reason: lastError });
      });
      c.on('error', (err) => {
        lastError = (err as NodeJS.ErrnoException).code ?? err.name;
        opts.logger.warn({ code: lastError }, 'MQTT error');
        if (BROKER_ALERT.test(lastError)) opts.identity?.refused(lastError);
      });
    },
    async stop() {
      const c = client;
      if (!c) return;
      client = undefined;
      offOutcome?.();
      offFindings?.();
      offFindings = undefined;
      offIdentity?.();
      await opts.identity?.stop();
      for (const [id, w] of waiters) {
        clearTimeout(w.timer);
        w.reject(new GatewayError('GW_SINK_UNREACHABLE', 'sink stopped'));
        waiters.delete(id);
      }
      if (c.connected)
        await new Promise<void>((resolve) =>
          c.publish(topics.status, JSON.stringify({ state: 'offline', gatewayId: opts.gatewayId }), { qos: 1, retain: true }, () =>
            resolve(),
          ),
        );
      await c.endAsync();
    },
    async deliver(batch: RecordBatch): Promise<DeliveryResult> {
      const c = client;
      if (!c || !c.connected)
        throw new GatewayError('GW_SINK_UNREACHABLE', `MQTT broker not connected${lastError ? ` (${lastError})` : ''}`);
      const meta = { gatewayId: opts.gatewayId, tenantId: opts.tenantId, sentAt: new Date(opts.clock.now()).toISOString() };
      const limit = packetLimit();
      const all = batch.json.map((_, k) => k);
      const { parts, refused } =
        limit === undefined ? { parts: [{ bid: batch.batchId, indexes: all }], refused: [] } : await splitForLimit(batch, meta, limit);
      if (parts.length > 1) {
        counts.splitBatches++;
        opts.logger.debug({ batchId: batch.batchId, parts: parts.length, limit }, "batch split to fit the broker's maximum packet size");
      }
      // seal each part; one whose real size is over the limit (the plan is exact, so only a key or
      // header change could do it) is halved again, and a lone record over it is refused
      const sealed: Array<{ bid: string; jwe: string }> = [];
      const queue = [...parts];
      while (queue.length) {
        const p = queue.shift()!;
        const env = envelopeJson({ batchId: p.bid, ids: [], json: p.indexes.map((k) => batch.json[k]) }, meta);
        const jwe = await opts.envelope.encrypt(Buffer.from(env));
        const bytes = limit === undefined ? 0 : publishPacketBytes(shapeFor(p.bid), jwe.length);
        if (limit !== undefined && bytes > limit) {
          if (p.indexes.length === 1) {
            refused.push({ id: batch.ids[p.indexes[0]], reason: oversizeReason(limit, bytes) });
            continue;
          }
          const half = Math.ceil(p.indexes.length / 2);
          const halves = [p.indexes.slice(0, half), p.indexes.slice(half)].map((ix) => ({
            bid: deterministicId('batch', ...ix.map((k) => batch.ids[k])),
            indexes: ix,
          }));
          queue.unshift(...halves);
          continue;
        }
        sealed.push({ bid: p.bid, jwe });
      }
      if (refused.length) {
        counts.oversized += refused.length;
        opts.logger.warn(
          { batchId: batch.batchId, records: refused.length, limit },
          "records larger than the broker's maximum packet size refused; they go to dead letters",
        );
      }
      // a stop while the parts were sealed: its waiters are gone, so no ack would ever be awaited here
      if (client !== c)
        throw new GatewayError('GW_SINK_UNREACHABLE', 'MQTT sink stopped while the batch was sealed; it stays queued and is resent');
      const pending = sealed.map((p) => ({ ...p, ...awaitAck(p.bid) }));
      for (const p of pending) publish(c, p.bid, p.jwe);
      try {
        const results = await Promise.all(pending.map((p) => p.acked));
        return { rejected: [...refused, ...results.flatMap((r) => r.rejected)] };
      } catch (err) {
        // one part failed: the whole batch is resent, so stop waiting for the others' acks
        for (const p of pending) {
          const w = p.waiter();
          if (w && waiters.get(p.bid) === w) {
            waiters.delete(p.bid);
            clearTimeout(w.timer);
          }
        }
        throw err;
      }
    },
    health: () => {
      const limit = packetLimit();
      return {
        connected: client?.connected ?? false,
        detail: {
          ...counts,
          awaitingAck: waiters.size,
          ...(limit !== undefined ? { maxPacketBytes: limit } : {}),
          ...(lastError ? { lastError } : {}),
          ...(lastError && TLS_REFUSAL.test(lastError) ? { lastErrorAction: tlsAction(lastError, opts.identity !== undefined) } : {}),
          ...(opts.identity ? identityDetail(opts.identity) : {}),
        },
      };
    },
  };
}

/** What to do about a TLS refusal, in the sink's status. */
function tlsAction(code: string, enrolled: boolean): string {
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) && !code.startsWith('ERR_SSL_'))
    return "the broker's certificate is not trusted: check mqtt.url and the broker CA (the one enrolment stored, or mqtt.ca)";
  return enrolled
    ? "the broker refused this gateway's device certificate: check `eyewear-gateway doctor`; if it is expired or revoked, re-enrol (eyewear-gateway enrol CODE --cloud URL --force)"
    : 'the broker refused the connection for want of a valid client certificate: enrol this gateway (eyewear-gateway enrol CODE --cloud URL)';
}

/** The identity's status as flat sink-health fields (status-report.ts lifts them to `identity`). */
function identityDetail(identity: DeviceIdentityLink): Record<string, string> {
  const s = identity.status();
  const out: Record<string, string> = {
    identityState: s.state,
    identityGatewayId: s.gatewayId,
    identityTenantId: s.tenantId,
    identitySerial: s.serial,
    identityNotAfter: s.notAfter,
    identityRenewAt: s.renewAt,
  };
  if (s.code) out.identityCode = s.code;
  if (s.problem) out.identityProblem = s.problem;
  if (s.action) out.identityAction = s.action;
  if (s.lastRenewalError) out.identityLastRenewalError = s.lastRenewalError;
  return out;
}

/**
 * The broker URL as mqtt.js options, parsed with the WHATWG URL API: given the URL as a string,
 * mqtt.js parses it with the legacy url.parse(), which in the single executable prints Node's
 * DEP0169 deprecation warning on every start (a technician reads it as a fault).
 */
export function brokerAddress(url: string): { protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss'; hostname: string; port: number; path?: string } {
  const u = new URL(url);
  const protocol = u.protocol.replace(/:$/, '');
  if (protocol !== 'mqtt' && protocol !== 'mqtts' && protocol !== 'ws' && protocol !== 'wss')
    throw new Error(`mqtt.url ${JSON.stringify(url)}: the scheme must be mqtt, mqtts, ws or wss`);
  const hostname = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    protocol,
    hostname,
    port: u.port ? Number(u.port) : { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 }[protocol],
    ...((protocol === 'ws' || protocol === 'wss') && u.pathname ? { path: `${u.pathname}${u.search}` } : {}),
  };
}
