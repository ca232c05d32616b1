/**
 * The public JWKS a technician registers with a vendor holds the public members of the key and
 * nothing else, whatever else the stored private JWK carries. Real sealed secret stores in temp
 * folders, as the gateway keeps them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { loadOrCreateClientKey, readPublicJwks, type ClientKeyAlg } from '../../../adapters/http/client-keys.ts';
import { openSealKey } from '../../../gateway/crypto/key-custody.ts';
import { createRecordSealer } from '../../../gateway/crypto/record-sealer.ts';
import { createSecretStore } from '../../../gateway/crypto/secret-store.ts';

function store() {
  const dir = mkdtempSync(join(tmpdir(), 'ewml-client-keys-'));
  const custody = openSealKey({ keyFile: join(dir, 'keys', 'seal.key'), outboxFiles: [] });
  return createSecretStore(dir, 'ehr', createRecordSealer(custody.key));
}

const members = (jwk: JWK) => Object.keys(jwk).sort();

/** A private JWK as another tool may have written it: WebCrypto's export members, a note, and a private extension. */
async function foreignPrivateJwk(alg: ClientKeyAlg): Promise<JWK & Record<string, unknown>> {
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS384' ? { modulusLength: 2048 } : {}) });
  return { ...(await exportJWK(pair.privateKey)), ext: true, key_ops: ['sign'], x_passphrase_hint: 'practice safe', kid: 'k1' };
}

describe('the public JWKS', () => {
  it('lists kty, n, e, kid, alg and use for an RS384 key, made here', async () => {
    const s = store();
    const key = await loadOrCreateClientKey(s, 'RS384');
    expect(key.created).toBe(true);
    expect(key.jwks.keys).toHaveLength(1);
    expect(members(key.jwks.keys[0])).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(key.jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS384', use: 'sig', kid: key.kid, e: 'AQAB' });
    expect(readPublicJwks(s)).toEqual(key.jwks);
  });

  it('lists kty, crv, x, y, kid, alg and use for an ES384 key, made here', async () => {
    const s = store();
    const key = await loadOrCreateClientKey(s, 'ES384');
    expect(members(key.jwks.keys[0])).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key.jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig', kid: key.kid });
  });

  for (const [alg, expected] of [
    ['RS384', ['alg', 'e', 'kid', 'kty', 'n', 'use']],
    ['ES384', ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']],
  ] as const) {
    it(`leaves out every member it does not know of a stored ${alg} key (ext, key_ops, a private extension), in the JWKS and its file`, async () => {
      const s = store();
      const jwk = await foreignPrivateJwk(alg);
      expect(s.createSecret(`client-key-${alg.toLowerCase()}.jwk`, Buffer.from(JSON.stringify(jwk)))).toBe(true);
      const key = await loadOrCreateClientKey(s, alg);
      expect(key.created).toBe(false);
      expect(key.kid).toBe('k1');
      expect(members(key.jwks.keys[0])).toEqual([...expected]);
      expect(members(readPublicJwks(s)!.keys[0])).toEqual([...expected]);
      expect(s.readPublic('jwks.json')).not.toMatch(/passphrase|key_ops|"ext"|"d"/);
    });
  }
});
