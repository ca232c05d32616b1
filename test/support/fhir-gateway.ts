/**
 * The gateway's side of a FHIR test: a data folder whose seal key and FHIR client key exist before
 * the gateway starts, so the test FHIR server (test/support/fhir-server/) can be started with the
 * gateway's public JWKS registered — as a technician registers it with the vendor after
 * `eyewear-gateway fhir jwks`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { loadOrCreateClientKey, type ClientKeyAlg } from '../../adapters/http/client-keys.ts';
import type { SecretStore } from '../../adapters/contracts.ts';
import { openSealKey } from '../../gateway/crypto/key-custody.ts';
import { createRecordSealer } from '../../gateway/crypto/record-sealer.ts';
import { createSecretStore } from '../../gateway/crypto/secret-store.ts';

export interface GatewayFhirKeys {
  dataDir: string;
  secrets: SecretStore;
  jwks: JSONWebKeySet;
  kid: string;
}

/** Makes (or opens) `<dataDir>/keys/seal.key` and the source's client key; the paths are the gateway's defaults. */
export async function gatewayFhirKeys(sourceId: string, alg: ClientKeyAlg = 'RS384', dataDir?: string): Promise<GatewayFhirKeys> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'ewml-fhir-gw-'));
  const custody = openSealKey({ keyFile: join(dir, 'keys', 'seal.key'), outboxFiles: [] });
  const secrets = createSecretStore(dir, sourceId, createRecordSealer(custody.key));
  const key = await loadOrCreateClientKey(secrets, alg);
  return { dataDir: dir, secrets, jwks: key.jwks as JSONWebKeySet, kid: key.kid };
}
