/**
 * The API source against the SourceAdapter contract, reading the DrChrono simulator's patients
 * (refresh-token auth, `since`, next links) with its poll waits on a manual clock. A fed input is
 * a patient put on the simulator, whose clock then moves on, so a read after it starts later than
 * the put. The failing start is a token endpoint that cannot be reached until the path to it is
 * opened (a fault proxy refusing, then passing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiSource } from '../../adapters/api/api-source.ts';
import type { ApiSourceConfig } from '../../adapters/api/api-types.ts';
import { resolveApiSource } from '../../adapters/api/resolve.ts';
import { validateConfig } from '../../config/load.ts';
import { createManualClock, systemClock, type Clock } from '../../gateway/clock.ts';
import { openSealKey } from '../../gateway/crypto/key-custody.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import { createSecretStore } from '../../gateway/crypto/secret-store.ts';
import { drchronoPatient, startDrchronoSim, type DrchronoSim } from '../support/api-sim/index.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { sourceAdapterContract, tagOf } from './source-adapter-contract.ts';

const POLL_MS = 1000;
const ID = 'api-contract';

function source(sim: DrchronoSim, origin: string, clock: Clock) {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-api-contract-'));
  const custody = openSealKey({ keyFile: join(dir, 'keys', 'seal.key'), outboxFiles: [] });
  const v = validateConfig({
    apis: [
      {
        id: ID,
        profile: 'drchrono',
        baseUrl: origin,
        auth: { tokenUrl: `${origin}/o/token/`, clientId: sim.clientId, clientSecret: sim.clientSecret, refreshToken: sim.refreshToken() },
        entities: [{ name: 'patients' }],
        pollIntervalMs: POLL_MS,
        overlapSeconds: 0,
        timeoutMs: 5000,
      },
    ],
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const adapter = createApiSource({
    source: resolveApiSource(v.config.apis[0] as ApiSourceConfig).source!,
    secrets: createSecretStore(dir, ID, createRecordSealer(custody.key)),
    timezone: 'UTC',
    clock,
    backoffInitialMs: 20,
  });
  return { adapter, dir };
}

const patient = (n: number) => drchronoPatient(n, { last_name: tagOf(n) });

sourceAdapterContract({
  name: 'API source (DrChrono profile)',
  whileStopped: 'queued',
  async make() {
    const sim = await startDrchronoSim({ timezone: 'UTC' });
    const clock = createManualClock(Date.now());
    const { adapter, dir } = source(sim, sim.origin, clock);
    return {
      adapter,
      clock,
      async feed(n) {
        sim.put('patients', patient(n));
        sim.clock.advance(2000);
      },
      kick: () => clock.advance(POLL_MS),
      async cleanup() {
        await adapter.stop();
        await sim.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async failing() {
    const sim = await startDrchronoSim({ timezone: 'UTC' });
    const proxy = await startFaultProxy({ targetPort: Number(new URL(sim.origin).port) });
    proxy.setMode('refuse');
    // the real clock: nothing here moves a manual one, and the start's own retries must run out
    const { adapter, dir } = source(sim, `http://127.0.0.1:${proxy.port}`, systemClock);
    return {
      adapter,
      async fix() {
        proxy.setMode('pass');
      },
      async cleanup() {
        await adapter.stop();
        await proxy.stop();
        await sim.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
