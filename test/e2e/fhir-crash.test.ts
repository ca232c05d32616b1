/**
 * Rule 1 for a FHIR source: a child gateway is killed with SIGKILL while it imports a Bulk export's
 * NDJSON files, and (another gateway) while it pages through a search. After the last restart the
 * reference cloud holds every patient the server has — none missing, whatever page or file line
 * the kills cut through — because each page's records and the cursor after it (the file and line,
 * or the next link) commit together.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CanonicalRecord } from '../../adapters/canonical/types.ts';
import { newStore, startHttpReferenceCloud, type HttpReferenceCloud, type ReceivedStore } from '../reference-cloud/reference-cloud.ts';
import { childGateway } from '../support/child-gateway.ts';
import { makeCloudKeys } from '../support/cloud-keys.ts';
import { gatewayFhirKeys } from '../support/fhir-gateway.ts';
import { startFhirServer, syntheticPatients, type FhirServer } from '../support/fhir-server/index.ts';
import { freePort, waitFor } from '../support/net.ts';

const PATIENTS = 30_000;
const KILLS = 3;

/** The FHIR ids of the patients the cloud received (a full record per patient is not needed). */
class PatientLedger extends Map<string, CanonicalRecord> {
  readonly ids = new Set<string>();
  override set(id: string, rec: CanonicalRecord): this {
    super.set(id, { id } as CanonicalRecord);
    if (rec.type === 'patient') this.ids.add(rec.source.sourceId);
    return this;
  }
}

async function setup(name: string, bulkMode: 'always' | 'never', fhir: () => FhirServer, cloudUrl: () => string) {
  const dir = mkdtempSync(join(tmpdir(), `ewml-fhircrash-${name}-`));
  const keys = await gatewayFhirKeys('ehr', 'ES384', join(dir, 'data'));
  const adminPort = await freePort();
  const config = join(dir, 'gateway.yaml');
  const write = (pub: string) =>
    writeFileSync(
      config,
      [
        'gateway:',
        `  dataDir: ${dir}/data`,
        '  timezone: UTC',
        'log:',
        '  level: warn',
        'hl7:',
        '  enabled: false',
        'admin:',
        `  port: ${adminPort}`,
        'relay:',
        '  sink: https',
        '  batchSize: 500',
        '  backoffInitialMs: 50',
        '  backoffMaxMs: 500',
        '  idlePollMs: 100',
        'https:',
        `  url: ${cloudUrl()}`,
        'cloud:',
        `  publicKey: \${file:${pub}}`,
        'fhir:',
        '  - id: ehr',
        '    vendor: generic',
        `    baseUrl: ${fhir().baseUrl}`,
        '    clientId: ewml-crash',
        '    keyAlg: ES384',
        '    resources: [Patient]',
        '    pageSize: 50',
        '    pollIntervalMs: 1000',
        `    bulk: { mode: ${bulkMode} }`,
        '',
      ].join('\n'),
    );
  return { dir, keys, adminPort, config, write };
}

describe('crash safety of a FHIR source', () => {
  const cloudKeys = makeCloudKeys();
  const bulkLedger = new PatientLedger();
  const pageLedger = new PatientLedger();
  let bulkCloud: HttpReferenceCloud;
  let pageCloud: HttpReferenceCloud;
  let bulkFhir: FhirServer;
  let pageFhir: FhirServer;
  let bulkSide: Awaited<ReturnType<typeof setup>>;
  let pageSide: Awaited<ReturnType<typeof setup>>;
  const jitter = (min: number, span: number) => new Promise((r) => setTimeout(r, min + Math.floor(Math.random() * span)));

  beforeAll(async () => {
    const store = (l: PatientLedger): ReceivedStore => ({ ...newStore(), records: l, order: { push: () => 0 } as unknown as string[] });
    bulkCloud = await startHttpReferenceCloud({ privateKey: cloudKeys.privateKey, store: store(bulkLedger) });
    pageCloud = await startHttpReferenceCloud({ privateKey: cloudKeys.privateKey, store: store(pageLedger) });
    bulkSide = await setup(
      'bulk',
      'always',
      () => bulkFhir,
      () => bulkCloud.url,
    );
    pageSide = await setup(
      'page',
      'never',
      () => pageFhir,
      () => pageCloud.url,
    );
    bulkFhir = await startFhirServer({
      vendor: 'generic',
      synthetic: [syntheticPatients(PATIENTS, { seed: 7 })],
      clients: [{ clientId: 'ewml-crash', jwks: bulkSide.keys.jwks }],
      bulk: { pollsBeforeReady: 1, retryAfterSeconds: 1, maxResourcesPerFile: 2500 },
    });
    pageFhir = await startFhirServer({
      vendor: 'generic',
      synthetic: [syntheticPatients(PATIENTS, { seed: 8 })],
      clients: [{ clientId: 'ewml-crash', jwks: pageSide.keys.jwks }],
    });
    for (const side of [bulkSide, pageSide]) {
      const pub = join(side.dir, 'pub.pem');
      writeFileSync(pub, cloudKeys.publicPem);
      side.write(pub);
    }
  }, 60_000);

  const bulkGw = childGateway(
    () => bulkSide.config,
    () => bulkSide.adminPort,
  );
  const pageGw = childGateway(
    () => pageSide.config,
    () => pageSide.adminPort,
  );

  afterAll(async () => {
    await bulkGw.kill();
    await pageGw.kill();
    await bulkCloud?.stop();
    await pageCloud?.stop();
    await bulkFhir?.stop();
    await pageFhir?.stop();
  });

  it(`has every one of ${PATIENTS.toLocaleString('en')} patients after ${KILLS} kills inside a Bulk export's files`, {
    timeout: 300_000,
  }, async () => {
    for (let k = 0; k < KILLS; k++) {
      await bulkGw.start();
      // the first kill lands while the export is still being polled or its first file read
      await jitter(k === 0 ? 1200 : 150, 400);
      await bulkGw.kill();
      console.log(`bulk kill ${k + 1}: cloud has ${bulkLedger.ids.size} patients`);
    }
    expect(bulkLedger.ids.size).toBeLessThan(PATIENTS); // the kills fell inside the import
    await bulkGw.start();
    await waitFor(() => bulkLedger.ids.size >= PATIENTS, 240_000, 'every patient of the export');
    await bulkGw.kill();
    expect(bulkLedger.ids.size).toBe(PATIENTS);
    // one export job for the whole run: a restart resumes the job in the cursor, it does not start another
    expect(bulkFhir.requests.filter((r) => r.path.endsWith('/$export'))).toHaveLength(1);
  });

  it(`has every one of ${PATIENTS.toLocaleString('en')} patients after ${KILLS} kills while paging through a search`, {
    timeout: 300_000,
  }, async () => {
    for (let k = 0; k < KILLS; k++) {
      await pageGw.start();
      await jitter(150, 400);
      await pageGw.kill();
      console.log(`paging kill ${k + 1}: cloud has ${pageLedger.ids.size} patients`);
    }
    expect(pageLedger.ids.size).toBeLessThan(PATIENTS);
    await pageGw.start();
    await waitFor(() => pageLedger.ids.size >= PATIENTS, 240_000, 'every patient of the search');
    await pageGw.kill();
    expect(pageLedger.ids.size).toBe(PATIENTS);
    // restarts went on from the stored next link: far fewer page requests than a run from the start after each kill
    const pages = pageFhir.requests.filter((r) => r.path.endsWith('/Patient') || r.query._getpages !== undefined).length;
    expect(pages).toBeLessThan((PATIENTS / 50) * 2);
  });
});
