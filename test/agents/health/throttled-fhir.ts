/**
 * The throttling scenario's world, shared by its test and the health bench: the test FHIR server
 * (300 synthetic Patients) with the gateway's client key registered, and a health rig whose FHIR
 * source reads it. The server throttles only once `throttle.every` is set (the source's start waits
 * on the manual clock, which nothing moves during it): every `every`-th request is a 429 with
 * Retry-After 1 s; `every: 0` ends it.
 */
import { gatewayFhirKeys } from '../../support/fhir-gateway.ts';
import { startFhirServer, syntheticPatients, type FhirServer } from '../../support/fhir-server/index.ts';
import { startHealthRig, type HealthRig } from './health-gateway.ts';

export interface ThrottledFhir {
  rig: HealthRig;
  fhir: FhirServer;
  /** Read by the server at each request. */
  throttle: { every: number; retryAfterSeconds: number };
  stop(): Promise<void>;
}

export async function startThrottledFhir(): Promise<ThrottledFhir> {
  const throttle = { every: 0, retryAfterSeconds: 1 };
  const gk = await gatewayFhirKeys('ehr', 'ES384');
  const fhir = await startFhirServer({
    vendor: 'generic',
    synthetic: [syntheticPatients(300, { seed: 5 })],
    clients: [{ clientId: 'ewml-gateway', jwks: gk.jwks }],
    faults: { throttle },
  });
  const rig = await startHealthRig(
    {
      hl7: { enabled: false },
      fhir: [
        {
          id: 'ehr',
          vendor: 'generic',
          baseUrl: fhir.baseUrl,
          clientId: 'ewml-gateway',
          keyAlg: 'ES384',
          resources: ['Patient'],
          pollIntervalMs: 60_000,
          pageSize: 10,
          overlapSeconds: 0,
        },
      ],
    },
    { dataDir: gk.dataDir },
  );
  return {
    rig,
    fhir,
    throttle,
    async stop() {
      await rig.stop();
      await fhir.stop();
    },
  };
}
