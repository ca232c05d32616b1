import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, CompactEncrypt, decodeProtectedHeader, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { createCloudEnvelope, JWE_HEADER_PARAMETERS, jwkThumbprint, openCloudEnvelope } from '../../../gateway/crypto/cloud-envelope.ts';
import { createRecordSealer, loadOrCreateKey } from '../../../gateway/crypto/record-sealer.ts';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('cloud envelope (JWE)', () => {
  it.each([
    ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ])('encrypts to a %s key so that jose (an independent implementation) decrypts it', async (_name, make) => {
    const { publicKey, privateKey } = make();
    const env = createCloudEnvelope(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const plaintext = Buffer.from(JSON.stringify({ records: [{ id: 'x', data: 'é'.repeat(1000) }] }));
    const jwe = await env.encrypt(plaintext);
    expect(jwe.split('.')).toHaveLength(5);
    const opened = await openCloudEnvelope(jwe, privateKey);
    expect(Buffer.from(opened.plaintext)).toEqual(plaintext);
    const kid = await calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
    expect(env.kid).toBe(kid);
    const ec = publicKey.asymmetricKeyType === 'ec';
    expect(opened.header).toEqual({
      alg: ec ? 'ECDH-ES+A256KW' : 'RSA-OAEP-256',
      enc: 'A256GCM',
      cty: 'application/json',
      kid,
      ...(ec ? { epk: opened.header.epk } : {}),
    });
    expect(Object.keys(opened.header).every((k) => (JWE_HEADER_PARAMETERS as readonly string[]).includes(k))).toBe(true);
  });

  it('keeps the batch id out of the header: registered parameters only', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const env = createCloudEnvelope(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const jwe = await env.encrypt(Buffer.from('{"batchId":"batch-1"}'));
    expect(Object.keys(decodeProtectedHeader(jwe)).sort()).toEqual(['alg', 'cty', 'enc', 'epk', 'kid']);
    expect(Buffer.from((await openCloudEnvelope(jwe, privateKey)).plaintext).toString()).toBe('{"batchId":"batch-1"}');
  });

  it('opens as strictly as the cloud must: a private header parameter or a kid naming another key is refused', async () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const body = Buffer.from('{}');
    const withBid = await new CompactEncrypt(body)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', bid: 'batch-1' })
      .encrypt(a.publicKey);
    await expect(openCloudEnvelope(withBid, a.privateKey)).rejects.toThrow(
      'JWE header parameter(s) bid are not registered: a strict JOSE library refuses them (docs/CLOUD-CONTRACT.md)',
    );
    const otherKid = await new CompactEncrypt(body)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: jwkThumbprint(b.publicKey) })
      .encrypt(a.publicKey);
    await expect(openCloudEnvelope(otherKid, a.privateKey)).rejects.toThrow('JWE kid names another key than the one it was opened with');
  });

  it("names the key by its RFC 7638 thumbprint (the RFC's own example key)", () => {
    // RFC 7638 §3.1: this RSA key's SHA-256 thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    const key = { kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: '2011-04-29' };
    expect(jwkThumbprint(createPublicKey({ key, format: 'jwk' }))).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('fails to open with another key, and every JWE differs (fresh key agreement and IV)', async () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const env = createCloudEnvelope(a.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const j1 = await env.encrypt(Buffer.from('same'));
    const j2 = await env.encrypt(Buffer.from('same'));
    expect(j1).not.toBe(j2);
    await expect(openCloudEnvelope(j1, b.privateKey)).rejects.toThrow();
  });
});

/**
 * Python's joserfc decrypts in its strict mode by default: a header parameter outside its registry
 * (the registered ones, and epk/apu/apv for ECDH-ES) is refused. The cloud passes the algorithms
 * explicitly: joserfc's default list leaves out RSA-OAEP-256.
 */
const JOSERFC = `
import json, sys
from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey
out = []
for line in sys.stdin:
    case = json.loads(line)
    key = (ECKey if case["kty"] == "EC" else RSAKey).import_key(case["pem"])
    try:
        r = jwe.decrypt_compact(case["jwe"], key, algorithms=["ECDH-ES+A256KW", "RSA-OAEP-256", "A256GCM"])
        out.append({"ok": True, "plaintext": r.plaintext.decode("utf-8")})
    except Exception as e:
        out.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
print(json.dumps(out))
`;
const joserfc = spawnSync('python3', ['-c', 'import joserfc'], { encoding: 'utf8' }).status === 0;
if (!joserfc) console.warn('skipped: the strict-JOSE check needs python3 with joserfc (pip install joserfc) and found none');

function openWithJoserfc(cases: Array<{ jwe: string; privateKey: KeyObject }>): Array<{ ok: boolean; plaintext?: string; error?: string }> {
  const input = cases
    .map((c) =>
      JSON.stringify({
        jwe: c.jwe,
        kty: c.privateKey.asymmetricKeyType === 'ec' ? 'EC' : 'RSA',
        pem: c.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      }),
    )
    .join('\n');
  const r = spawnSync('python3', ['-c', JOSERFC], { input, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Array<{ ok: boolean; plaintext?: string; error?: string }>;
}

describe.skipIf(!joserfc)('cloud envelope against a strict JOSE library (joserfc)', () => {
  it("opens the gateway's JWE for EC and RSA keys, and refuses one with a private header parameter such as bid", async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
    const body = Buffer.from(JSON.stringify({ batchId: 'batch-1', records: [] }));
    const withBid = await new CompactEncrypt(body)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'application/json', bid: 'batch-1' })
      .encrypt(ec.publicKey);
    const results = openWithJoserfc([
      { jwe: await createCloudEnvelope(pem(ec.publicKey)).encrypt(body), privateKey: ec.privateKey },
      { jwe: await createCloudEnvelope(pem(rsa.publicKey)).encrypt(body), privateKey: rsa.privateKey },
      { jwe: withBid, privateKey: ec.privateKey },
    ]);
    expect(results.slice(0, 2)).toEqual([
      { ok: true, plaintext: body.toString() },
      { ok: true, plaintext: body.toString() },
    ]);
    expect(results[2].ok).toBe(false);
    expect(results[2].error).toContain('bid');
  });
});

describe('record sealer (at rest)', () => {
  it('round-trips with the record id bound as AAD, and rejects another id or a flipped bit', () => {
    const s = createRecordSealer(Buffer.alloc(32, 9));
    const sealed = s.seal('id-1', Buffer.from('plain'));
    expect(s.open('id-1', sealed).toString()).toBe('plain');
    expect(() => s.open('id-2', sealed)).toThrow(/authentication/);
    const bad = Buffer.from(sealed);
    bad[bad.length - 1] ^= 1;
    expect(() => s.open('id-1', bad)).toThrow();
  });

  it('creates its key file 0600 once and reads the same key back', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ewml-key-')), 'keys', 'seal.key');
    const k1 = loadOrCreateKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateKey(file)).toEqual(k1);
  });
});
