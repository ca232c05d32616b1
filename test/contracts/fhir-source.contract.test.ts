/**
 * The FHIR source against the SourceAdapter contract, reading a real FHIR R4 server (the test
 * server, generic profile: `_lastUpdated` searches) with its poll waits on a manual clock. A fed
 * input is a Patient put on the server; the failing start is a server that cannot be reached until
 * the path to it is opened (a fault proxy refusing, then passing).
 */
import { rmSync } from 'node:fs';
import { createFhirSource } from '../../adapters/fhir/fhir-source.ts';
import { createManualClock, systemClock, type Clock } from '../../gateway/clock.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { gatewayFhirKeys } from '../support/fhir-gateway.ts';
import { startFhirServer } from '../support/fhir-server/index.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

const POLL_MS = 1000;
const CLIENT = 'ewml-contract';

function options(baseUrl: string, secrets: Awaited<ReturnType<typeof gatewayFhirKeys>>['secrets'], clock: Clock) {
  return createFhirSource({
    id: 'fhir-contract',
    vendor: 'generic',
    baseUrl,
    clientId: CLIENT,
    resources: ['Patient'],
    system: 'CONTRACT',
    tokenUrl: '',
    scope: '',
    keyAlg: 'RS384',
    jwksUrl: '',
    pollIntervalMs: POLL_MS,
    overlapSeconds: 0,
    dateWindowDays: 30,
    bulk: { mode: 'never', level: 'system', groupId: '', intervalMinutes: 1440, maxWaitMinutes: 60 },
    rateLimit: {},
    timeoutMs: 5000,
    secrets,
    clock,
  });
}

const patient = (n: number) => ({ resourceType: 'Patient', id: `c${n}`, identifier: [{ system: 'urn:contract', value: tagOf(n) }] });

sourceAdapterContract({
  name: 'FHIR source (generic R4)',
  whileStopped: 'queued',
  async make() {
    const keys = await gatewayFhirKeys('fhir-contract');
    const fhir = await startFhirServer({ vendor: 'generic', clients: [{ clientId: CLIENT, jwks: keys.jwks }] });
    const clock = createManualClock(Date.now());
    const adapter = options(fhir.baseUrl, keys.secrets, clock);
    return {
      adapter,
      clock,
      async feed(n) {
        // the server's clock moves on after each put: a search after it starts later than the put
        fhir.store.put(patient(n));
        fhir.store.advance(1000);
      },
      kick: () => clock.advance(POLL_MS),
      async cleanup() {
        await adapter.stop();
        await fhir.stop();
        rmSync(keys.dataDir, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    const keys = await gatewayFhirKeys('fhir-contract');
    const fhir = await startFhirServer({ vendor: 'generic', clients: [{ clientId: CLIENT, jwks: keys.jwks }] });
    const proxy = await startFaultProxy({ targetPort: Number(new URL(fhir.origin).port) });
    proxy.setMode('refuse');
    // the real clock: nothing here moves a manual one, and the start's own retries must run out
    const adapter = options(`http://127.0.0.1:${proxy.port}${new URL(fhir.baseUrl).pathname}`, keys.secrets, systemClock);
    return {
      adapter,
      async fix() {
        proxy.setMode('pass');
      },
      async cleanup() {
        await adapter.stop();
        await proxy.stop();
        await fhir.stop();
        rmSync(keys.dataDir, { recursive: true, force: true });
      },
    };
  },
});
