/**
 * FHIR write-back from signed cloud commands. A whole gateway (real mosquitto, the MQTT reference
 * cloud, the test FHIR server with the gateway's keys registered) takes `fhir.write` commands on
 * `down/commands` and reports on `up/status`: a create sent twice, or whose answer is lost, leaves
 * one resource on the server (If-None-Exist); an update with the current version is done, one
 * whose answer is lost is done unchanged, a stale one fails GW_FHIR_WRITE_CONFLICT and overwrites
 * nothing (If-Match); types not enabled, sources without write-back, unsafe commands and replays
 * are refused before anything is sent; a token without write scopes fails on the server's 403.
 * Then, without the gateway: the scopes asked for, a redirect never followed with the body and
 * token, a server that does not declare conditional create, and an unreachable server retried.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign } from 'jose';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkFhirWrite,
  createFhirWriteBack,
  FhirWriteRefused,
  writeBackScope,
  type FhirWriteBack,
} from '../../../adapters/fhir/write-back.ts';
import { createHttpClient } from '../../../adapters/http/http-client.ts';
import { systemClock } from '../../../gateway/clock.ts';
import { createCommandProcessor } from '../../../gateway/commands/command-processor.ts';
import { createCommandVerifier } from '../../../gateway/commands/command-verifier.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createEventBus } from '../../../gateway/event-bus.ts';
import { createMemoryOutbox } from '../../../gateway/outbox/memory-outbox.ts';
import { makeCloudKeys } from '../../support/cloud-keys.ts';
import { gatewayFhirKeys, type GatewayFhirKeys } from '../../support/fhir-gateway.ts';
import { startFhirServer, type FhirServer } from '../../support/fhir-server/index.ts';
import { startHarness, type Harness } from '../../support/gateway-harness.ts';
import { startMosquitto, type Broker } from '../../support/mosquitto.ts';
import { waitFor } from '../../support/net.ts';
import { startMqttReferenceCloud, type MqttReferenceCloud } from '../../reference-cloud/reference-cloud.ts';

const cloudKeys = makeCloudKeys();
const commandKeys = generateKeyPairSync('ed25519');
const GW = 'gw-fhirwb';
const TENANT = 't-fhirwb';
const APPT_SYSTEM = 'https://ewml.example/appointment';
const now = () => Math.floor(Date.now() / 1000);

interface Outcome {
  commandId: string;
  status: string;
  detail: string;
  result?: Record<string, string>;
  code?: string;
}

async function sign(payload: Record<string, unknown>, key: KeyObject = commandKeys.privateKey): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify({ type: 'fhir.write', gatewayId: GW, iat: now(), exp: now() + 600, ...payload })))
    .setProtectedHeader({ alg: 'EdDSA' })
    .sign(key);
}

const appointment = (value: string, over: Record<string, unknown> = {}) => ({
  resourceType: 'Appointment',
  identifier: [{ system: APPT_SYSTEM, value }],
  status: 'booked',
  start: '2026-12-02T14:30:00Z',
  end: '2026-12-02T14:50:00Z',
  participant: [{ actor: { reference: 'Patient/example' }, status: 'accepted' }],
  ...over,
});
const byIdentifier = (value: string) => `identifier=${encodeURIComponent(`${APPT_SYSTEM}|${value}`)}`;

describe('fhir.write commands in a whole gateway', () => {
  let broker: Broker;
  let cloud: MqttReferenceCloud;
  let fhir: FhirServer;
  let keys: GatewayFhirKeys;
  let h: Harness;
  let watcher: MqttClient;
  const outcomes: Outcome[] = [];
  const of = (id: string) => outcomes.filter((o) => o.commandId === id);
  const last = (id: string) => of(id).at(-1);
  const publish = (jws: string) => cloud.client.publishAsync(`ewml/v1/${TENANT}/${GW}/down/commands`, jws, { qos: 1 });
  const finished = (id: string) => waitFor(() => ['done', 'failed', 'refused'].includes(last(id)?.status ?? ''), 20_000, `${id} finished`);
  const writes = () => fhir.requests.filter((r) => r.method === 'POST' || r.method === 'PUT').filter((r) => !r.path.endsWith('/token'));
  const appointments = (value: string) =>
    fhir.store
      .live('Appointment')
      .filter((v) => (v.resource?.identifier as { value?: string }[] | undefined)?.some((i) => i.value === value));

  beforeAll(async () => {
    keys = await gatewayFhirKeys('ehr', 'ES384');
    const off = await gatewayFhirKeys('ehr-off', 'ES384', keys.dataDir);
    const readOnly = await gatewayFhirKeys('ehr-ro', 'ES384', keys.dataDir);
    fhir = await startFhirServer({
      vendor: 'generic',
      clients: [
        { clientId: 'ewml-gateway', jwks: { keys: [...keys.jwks.keys, ...off.jwks.keys] } },
        // registered for reading only: its token never carries a write scope
        { clientId: 'ewml-readonly', jwks: readOnly.jwks, scopes: ['system/Appointment.rs'] },
      ],
    });
    broker = await startMosquitto();
    cloud = await startMqttReferenceCloud({ url: broker.url, privateKey: cloudKeys.privateKey });
    const source = (id: string, over: Record<string, unknown>) => ({
      id,
      vendor: 'generic',
      baseUrl: fhir.baseUrl,
      clientId: 'ewml-gateway',
      resources: ['Appointment'],
      keyAlg: 'ES384',
      pollIntervalMs: 3_600_000,
      ...over,
    });
    h = await startHarness(
      {
        gateway: { id: GW, tenantId: TENANT },
        hl7: { enabled: false },
        relay: { sink: 'mqtt' },
        mqtt: { url: broker.url },
        cloud: {
          publicKey: cloudKeys.publicPem,
          commandPublicKey: commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        },
        fhir: [
          source('ehr', { writeBack: { enabled: true, resources: ['Appointment', 'VisionPrescription'] } }),
          source('ehr-off', {}),
          source('ehr-ro', { clientId: 'ewml-readonly', writeBack: { enabled: true, resources: ['Appointment'] } }),
        ] as never,
      },
      { dataDir: keys.dataDir, logLevel: 'info' },
    );
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    watcher.on('message', (_t, p) => {
      const m = JSON.parse(p.toString()) as Outcome & { type?: string };
      if (m.type === 'command-outcome') outcomes.push(m);
    });
    await watcher.subscribeAsync(`ewml/v1/${TENANT}/${GW}/up/status`, { qos: 1 });
    await waitFor(() => h.gw.parts.sink.health().connected, 10_000, 'gateway connected');
    // each source's first read is over (the next is an hour away): from here on the server sees only the writes
    await waitFor(
      () => ['ehr', 'ehr-off', 'ehr-ro'].every((id) => h.gw.parts.adapters.find((a) => a.id === id)?.health().detail?.lastCycleAt),
      20_000,
      'first reads',
    );
  }, 60_000);

  afterAll(async () => {
    await watcher?.endAsync();
    await h?.stop();
    await cloud?.stop();
    await broker?.stop();
    await fhir?.stop();
    rmSync(keys.dataDir, { recursive: true, force: true });
  });

  it('creates an Appointment with If-None-Exist; the same create again (a new command id) finds it: one Appointment on the server', async () => {
    const create = {
      source: 'ehr',
      resourceType: 'Appointment',
      operation: 'create',
      resource: appointment('A-100'),
      conditional: byIdentifier('A-100'),
    };
    await publish(await sign({ id: 'fw-1', ...create }));
    await finished('fw-1');
    const [stored] = appointments('A-100');
    expect(of('fw-1').map((o) => o.status)).toEqual(['accepted', 'done']);
    expect(of('fw-1')[0].detail).toBe('fhir create of Appointment on ehr');
    expect(last('fw-1')).toMatchObject({
      detail: `Appointment/${stored.id} version 1 created`,
      result: { outcome: 'created', resource: `Appointment/${stored.id}`, versionId: '1' },
    });
    await publish(await sign({ id: 'fw-2', ...create }));
    await finished('fw-2');
    expect(last('fw-2')).toMatchObject({
      status: 'done',
      result: { outcome: 'existed', resource: `Appointment/${stored.id}`, versionId: '1' },
    });
    expect(appointments('A-100')).toHaveLength(1);
    expect(
      writes()
        .filter((r) => r.path.endsWith('/Appointment'))
        .map((r) => r.status),
    ).toEqual([201, 200]);
  });

  it('creates a VisionPrescription the same way', async () => {
    const rx = {
      resourceType: 'VisionPrescription',
      identifier: [{ system: 'https://ewml.example/rx', value: 'RX-7' }],
      status: 'active',
      created: '2026-12-02',
      patient: { reference: 'Patient/example' },
      dateWritten: '2026-12-02',
      prescriber: { reference: 'Practitioner/example' },
      lensSpecification: [
        {
          product: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/ex-visionprescriptionproduct', code: 'lens' }] },
          eye: 'right',
          sphere: -2.25,
        },
      ],
    };
    await publish(
      await sign({
        id: 'fw-rx',
        source: 'ehr',
        resourceType: 'VisionPrescription',
        operation: 'create',
        resource: rx,
        conditional: 'identifier=https://ewml.example/rx|RX-7',
      }),
    );
    await finished('fw-rx');
    const live = fhir.store.live('VisionPrescription');
    expect(live).toHaveLength(1);
    expect(last('fw-rx')).toMatchObject({
      status: 'done',
      result: { outcome: 'created', resource: `VisionPrescription/${live[0].id}`, versionId: '1' },
    });
  });

  it('a create whose answer is lost is sent again and finds what the first attempt made: one Appointment, done', async () => {
    fhir.dropConnectionAt(fhir.apiRequests() + 1);
    await publish(
      await sign({
        id: 'fw-lost',
        source: 'ehr',
        resourceType: 'Appointment',
        operation: 'create',
        resource: appointment('A-200'),
        conditional: byIdentifier('A-200'),
      }),
    );
    await finished('fw-lost');
    const [stored] = appointments('A-200');
    expect(of('fw-lost').map((o) => o.status)).toEqual(['accepted', 'done']);
    expect(last('fw-lost')?.result).toEqual({ outcome: 'existed', resource: `Appointment/${stored.id}`, versionId: '1' });
    expect(appointments('A-200')).toHaveLength(1);
    const posts = fhir.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Appointment')).slice(-2);
    expect(posts.map((r) => [r.status, r.dropped === true])).toEqual([
      [201, true],
      [200, false],
    ]);
  });

  it('updates with If-Match: the current version is done; a stale one fails GW_FHIR_WRITE_CONFLICT and overwrites nothing', async () => {
    const [v1] = appointments('A-100');
    const id = String(v1.id);
    const update = (cmdId: string, ifMatch: string, status: string) =>
      sign({
        id: cmdId,
        source: 'ehr',
        resourceType: 'Appointment',
        operation: 'update',
        resource: appointment('A-100', { id, status }),
        ifMatch,
      });
    await publish(await update('fw-u1', '1', 'arrived'));
    await finished('fw-u1');
    expect(last('fw-u1')).toMatchObject({
      status: 'done',
      detail: `Appointment/${id} version 2 updated`,
      result: { outcome: 'updated', resource: `Appointment/${id}`, versionId: '2' },
    });
    await publish(await update('fw-u2', '1', 'cancelled'));
    await finished('fw-u2');
    expect(of('fw-u2').map((o) => o.status)).toEqual(['accepted', 'failed']);
    expect(last('fw-u2')).toMatchObject({
      code: 'GW_FHIR_WRITE_CONFLICT',
      detail: `GW_FHIR_WRITE_CONFLICT: Appointment/${id} changed on the server since version 1 (now version 2); not overwritten`,
    });
    expect(fhir.store.get('Appointment', id)).toMatchObject({ status: 'arrived', meta: { versionId: '2' } });
    expect(fhir.store.history('Appointment').filter((v) => v.id === id)).toHaveLength(2);
  });

  it('an update whose answer is lost meets 412 on its retry, reads its own write back, and is done unchanged', async () => {
    const id = String(appointments('A-100')[0].id);
    fhir.dropConnectionAt(fhir.apiRequests() + 1);
    await publish(
      await sign({
        id: 'fw-u3',
        source: 'ehr',
        resourceType: 'Appointment',
        operation: 'update',
        resource: appointment('A-100', { id, status: 'fulfilled' }),
        ifMatch: '2',
      }),
    );
    await finished('fw-u3');
    expect(of('fw-u3').map((o) => o.status)).toEqual(['accepted', 'done']);
    expect(last('fw-u3')?.result).toEqual({ outcome: 'unchanged', resource: `Appointment/${id}`, versionId: '3' });
    expect(fhir.store.get('Appointment', id)).toMatchObject({ status: 'fulfilled', meta: { versionId: '3' } });
    expect(fhir.store.history('Appointment').filter((v) => v.id === id)).toHaveLength(3);
    const puts = fhir.requests.filter((r) => r.method === 'PUT').slice(-2);
    expect(puts.map((r) => [r.status, r.dropped === true])).toEqual([
      [200, true],
      [412, false],
    ]);
  });

  it('an update of a resource the server does not hold fails GW_FHIR_WRITE_CONFLICT: nothing is created', async () => {
    await publish(
      await sign({
        id: 'fw-u4',
        source: 'ehr',
        resourceType: 'Appointment',
        operation: 'update',
        resource: appointment('A-300', { id: 'nowhere' }),
        ifMatch: '1',
      }),
    );
    await finished('fw-u4');
    expect(last('fw-u4')).toMatchObject({
      status: 'failed',
      code: 'GW_FHIR_WRITE_CONFLICT',
      detail: 'GW_FHIR_WRITE_CONFLICT: Appointment/nowhere is not on the server (deleted since version 1, or never there); not written',
    });
    expect(fhir.store.current('Appointment', 'nowhere')).toBeUndefined();
  });

  it('refuses, before sending anything, a type not enabled, a source without write-back, unsafe creates and updates, and a replay', async () => {
    const before = writes().length;
    const id = String(appointments('A-100')[0].id);
    const cases: [string, Record<string, unknown>, string][] = [
      [
        'fw-r1',
        {
          source: 'ehr',
          resourceType: 'DocumentReference',
          operation: 'create',
          resource: { resourceType: 'DocumentReference' },
          conditional: 'identifier=a|b',
        },
        'DocumentReference is not written back to ehr (fhir[].writeBack.resources: Appointment, VisionPrescription)',
      ],
      [
        'fw-r2',
        {
          source: 'ehr-off',
          resourceType: 'Appointment',
          operation: 'create',
          resource: appointment('A-9'),
          conditional: byIdentifier('A-9'),
        },
        'write-back is not enabled for FHIR source "ehr-off" (fhir[].writeBack.enabled)',
      ],
      [
        'fw-r3',
        { source: 'ehr', resourceType: 'Appointment', operation: 'create', resource: appointment('A-9') },
        'a create needs `conditional` (the If-None-Exist search, e.g. identifier=system|value) so a retry never duplicates it',
      ],
      [
        'fw-r4',
        {
          source: 'ehr',
          resourceType: 'Appointment',
          operation: 'create',
          resource: appointment('A-9'),
          conditional: byIdentifier('A-10'),
        },
        '`conditional` must name an identifier=system|value that the resource carries (resource.identifier), so a retry finds what the first attempt created',
      ],
      [
        'fw-r5',
        { source: 'ehr', resourceType: 'Appointment', operation: 'update', resource: appointment('A-100', { id }) },
        'an update needs `ifMatch`, the versionId it was based on, so it never overwrites a change made since',
      ],
      [
        'fw-r6',
        {
          source: 'ehr',
          resourceType: 'Appointment',
          operation: 'create',
          resource: { ...appointment('A-9'), resourceType: 'Patient' },
          conditional: byIdentifier('A-9'),
        },
        'resource.resourceType is Patient, not Appointment',
      ],
      [
        'fw-r7',
        { source: 'ehr', resourceType: 'Appointment', operation: 'delete', resource: appointment('A-9') },
        '`operation` must be create or update',
      ],
    ];
    for (const [cmdId, body, why] of cases) {
      await publish(await sign({ id: cmdId, ...body }));
      await finished(cmdId);
      expect(of(cmdId), cmdId).toEqual([expect.objectContaining({ status: 'refused', detail: why })]);
    }
    // the first create's command, sent again as it was: refused by its id
    const first = await sign({
      id: 'fw-1',
      source: 'ehr',
      resourceType: 'Appointment',
      operation: 'create',
      resource: appointment('A-100'),
      conditional: byIdentifier('A-100'),
    });
    await publish(first);
    await waitFor(() => of('fw-1').some((o) => o.status === 'refused'), 10_000, 'replay refused');
    expect(of('fw-1').at(-1)).toMatchObject({ status: 'refused', detail: 'replayed command id' });
    expect(writes()).toHaveLength(before);
    expect(appointments('A-9')).toHaveLength(0);
  });

  it('a source whose token carries no write scope: the server refuses (403) and the command fails GW_API_AUTH_FAILED', async () => {
    await publish(
      await sign({
        id: 'fw-ro',
        source: 'ehr-ro',
        resourceType: 'Appointment',
        operation: 'create',
        resource: appointment('A-400'),
        conditional: byIdentifier('A-400'),
      }),
    );
    await finished('fw-ro');
    expect(of('fw-ro').map((o) => o.status)).toEqual(['accepted', 'failed']);
    expect(last('fw-ro')).toMatchObject({
      code: 'GW_API_AUTH_FAILED',
      detail: 'GW_API_AUTH_FAILED: create of Appointment on ehr-ro (403; outcome error:forbidden)',
    });
    expect(appointments('A-400')).toHaveLength(0);
  });
});

/** A CapabilityStatement naming what a write needs of Appointment. */
const capabilities = (over: Record<string, unknown> = {}) => ({
  resourceType: 'CapabilityStatement',
  fhirVersion: '4.0.1',
  rest: [
    {
      mode: 'server',
      resource: [
        {
          type: 'Appointment',
          interaction: [{ code: 'create' }, { code: 'update' }],
          conditionalCreate: true,
          versioning: 'versioned',
          ...over,
        },
      ],
    },
  ],
});
const entry = (over: Record<string, unknown> = {}) =>
  ({
    id: 'x',
    vendor: 'generic',
    baseUrl: 'http://127.0.0.1:9/fhir',
    clientId: 'c',
    resources: ['Patient', 'Appointment'],
    scope: '',
    writeBack: { enabled: true, resources: ['Appointment'] },
    ...over,
  }) as never;
const listen = async (handler: Parameters<typeof createServer>[1]) => {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { server: s, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
};
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));
const bearer = { header: async () => 'Bearer secret-token', invalidate: () => undefined };

describe('fhir write-back without the gateway', () => {
  it('asks for the write scopes of the types written back beside the read scopes, in the vendor style', () => {
    expect(writeBackScope(entry())).toBe('system/Patient.rs system/Appointment.rs system/Appointment.cru');
    expect(writeBackScope(entry({ vendor: 'cerner', writeBack: { enabled: true, resources: ['DocumentReference'] } }))).toBe(
      'system/Patient.read system/Appointment.read system/DocumentReference.read system/DocumentReference.write',
    );
    expect(writeBackScope(entry({ scope: 'system/Patient.rs system/Appointment.cru' }))).toBe('system/Patient.rs system/Appointment.cru');
  });

  it("refuses a write the vendor does not take from backend apps, with the vendor's reason", () => {
    const epic = entry({ vendor: 'epic', writeBack: { enabled: true, resources: ['Appointment', 'DocumentReference'] } });
    expect(checkFhirWrite({ resourceType: 'Appointment', operation: 'create', resource: {} }, epic)).toBe(
      "Epic does not take create of Appointment: Epic takes DocumentReference.Create from backend apps; Appointment is booked through Epic's own scheduling operations, and Epic has no VisionPrescription API.",
    );
    expect(
      checkFhirWrite(
        { resourceType: 'DocumentReference', operation: 'update', resource: { resourceType: 'DocumentReference', id: 'd1' }, ifMatch: '1' },
        epic,
      ),
    ).toBe(
      "Epic does not take update of DocumentReference: Epic takes DocumentReference.Create from backend apps; Appointment is booked through Epic's own scheduling operations, and Epic has no VisionPrescription API.",
    );
  });

  it('does not follow a redirect: the body and the token never reach another origin', async () => {
    let elsewhere = 0;
    const other = await listen((_req, res) => {
      elsewhere++;
      res.writeHead(201).end('{}');
    });
    const fhirSide = await listen((_req, res) => {
      res.writeHead(307, { location: `${other.url}/fhir/Appointment` }).end();
    });
    try {
      const wb = createFhirWriteBack({
        config: entry({ baseUrl: `${fhirSide.url}/fhir` }),
        clock: systemClock,
        secrets: undefined as never,
        connect: async () => ({
          http: createHttpClient({ clock: systemClock, auth: bearer, maxAttempts: 1 }),
          capabilities: capabilities(),
        }),
      });
      const req = wb.check({
        resourceType: 'Appointment',
        operation: 'create',
        resource: appointment('R-1'),
        conditional: byIdentifier('R-1'),
      });
      if (typeof req === 'string') throw new Error(req);
      const e = await wb.write(req).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FhirWriteRefused);
      expect((e as FhirWriteRefused).code).toBe('GW_API_REFUSED');
      expect((e as Error).message).toBe('GW_API_REFUSED: create of Appointment on x (307)');
      expect(elsewhere).toBe(0);
    } finally {
      await close(fhirSide.server);
      await close(other.server);
    }
  });

  describe('through the command processor', () => {
    const outcomes: Outcome[] = [];
    const of = (id: string) => outcomes.filter((o) => o.commandId === id);

    async function processorWith(wb: FhirWriteBack) {
      const bus = createEventBus(() => undefined);
      bus.on('command.outcome', (e) => outcomes.push(e));
      const outbox = createMemoryOutbox({ maxBytes: 10_000_000, clock: systemClock });
      await outbox.open();
      return createCommandProcessor({
        verifier: createCommandVerifier({
          publicKeyPem: commandKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
          gatewayId: GW,
          now: () => Date.now(),
        }),
        direct: {
          outbox,
          sealer: createRecordSealer(randomBytes(32)),
          writeBackFor: () => undefined,
          fileWriterFor: () => undefined,
          fhirWriteBackFor: (id) => (id === 'x' ? wb : undefined),
          attempts: 2,
          retryDelayMs: 10,
        },
        bus,
        logger: pino({ level: 'silent' }),
        now: () => Date.now(),
      });
    }
    const create = (id: string) =>
      sign({
        id,
        source: 'x',
        resourceType: 'Appointment',
        operation: 'create',
        resource: appointment('P-1'),
        conditional: byIdentifier('P-1'),
      });

    it('fails, without sending, a create on a server that does not declare conditional create', async () => {
      let requests = 0;
      const srv = await listen((_req, res) => {
        requests++;
        res.writeHead(500).end();
      });
      try {
        const processor = await processorWith(
          createFhirWriteBack({
            config: entry({ baseUrl: srv.url }),
            clock: systemClock,
            secrets: undefined as never,
            connect: async () => ({
              http: createHttpClient({ clock: systemClock, auth: bearer, maxAttempts: 1 }),
              capabilities: capabilities({ conditionalCreate: false }),
            }),
          }),
        );
        expect((await processor.handle(await create('p-1'))).status).toBe('accepted');
        await waitFor(() => of('p-1').length === 2, 5000, 'failed');
        expect(of('p-1')[1]).toEqual({
          commandId: 'p-1',
          status: 'failed',
          code: 'GW_API_REFUSED',
          detail:
            'GW_API_REFUSED: the server does not declare conditional create (If-None-Exist) on Appointment: a retry could duplicate it',
        });
        expect(requests).toBe(0);
      } finally {
        await close(srv.server);
      }
    });

    it('retries a server that cannot be reached, then fails GW_SOURCE_UNREACHABLE', async () => {
      const srv = await listen(() => undefined);
      const url = srv.url;
      await close(srv.server); // a port nobody listens on now
      let connects = 0;
      const processor = await processorWith(
        createFhirWriteBack({
          config: entry({ baseUrl: url }),
          clock: systemClock,
          secrets: undefined as never,
          connect: async () => {
            connects++;
            return { http: createHttpClient({ clock: systemClock, auth: bearer, maxAttempts: 1 }), capabilities: capabilities() };
          },
        }),
      );
      expect((await processor.handle(await create('p-2'))).status).toBe('accepted');
      await waitFor(() => of('p-2').length === 2, 5000, 'failed');
      expect(of('p-2')[1]).toEqual({
        commandId: 'p-2',
        status: 'failed',
        code: 'GW_SOURCE_UNREACHABLE',
        detail: 'fhir create of Appointment on x failed after 2 attempt(s): GW_SOURCE_UNREACHABLE: create of Appointment on x',
      });
      // one connection, kept across the attempts
      expect(connects).toBe(1);
    });
  });
});
