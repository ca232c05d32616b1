import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCloudEnvelope, openCloudEnvelope } from '../../../gateway/crypto/cloud-envelope.ts';
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
    const jwe = await env.encrypt(plaintext, { bid: 'batch-1' });
    expect(jwe.split('.')).toHaveLength(5);
    const opened = await openCloudEnvelope(jwe, privateKey);
    expect(Buffer.from(opened.plaintext)).toEqual(plaintext);
    expect(opened.header).toMatchObject({ bid: 'batch-1', enc: 'A256GCM' });
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

describe('record sealer (at rest)', () => {
  it('round-trips with the record id bound as AAD, and rejects another id or a flipped bit', () => {
    const s = createRecordSealer(Buffer.alloc(32, 9));
    const sealed = s.seal('id-1', Buffer.from('plain'));
    expect(s.open('id-1', sealed).toString()).toBe('plain');
    expect(() => s.open('id-2', sealed)).toThrow(/authentication/);
    const bad = Buffer.from(sealed); bad[bad.length - 1] ^= 1;
    expect(() => s.open('id-1', bad)).toThrow();
  });

  it('creates its key file 0600 once and reads the same key back', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ewml-key-')), 'keys', 'seal.key');
    const k1 = loadOrCreateKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadOrCreateKey(file)).toEqual(k1);
  });
});
